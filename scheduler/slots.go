package scheduler

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// Phase is the offset of a site's slots within its interval, derived from a
// SHA-256 hash of the URL so that it is uniform (URLs that differ in one
// character land far apart) and identical in every process. Changing this
// function would move every site's slots once, so it does not change.
func Phase(url string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	sum := sha256.Sum256([]byte(url))
	return time.Duration(binary.BigEndian.Uint64(sum[:8]) % uint64(interval))
}

// SlotStart returns the start of the slot of the given site that contains
// t: the latest k*interval + phase (nanoseconds since the Unix epoch) that
// is not after t. The result is in UTC.
func SlotStart(url string, interval time.Duration, t time.Time) time.Time {
	return slotStart(int64(interval), int64(Phase(url, interval)), t)
}

func slotStart(interval, phase int64, t time.Time) time.Time {
	if interval <= 0 {
		return t.UTC()
	}
	rel := t.UnixNano() - phase
	k := rel / interval
	if rel%interval < 0 {
		k-- // floor division for instants before the epoch
	}
	return time.Unix(0, k*interval+phase).UTC()
}

// RequestID is the id of the request for one site, slot and region: the
// first 16 bytes of SHA-256 over the URL and the slot start, in hex, and,
// for a region other than codecs.DefaultRegion, the region too. Every
// emitter instance of a region computes the same id for the same slot,
// which makes the id (and the result's event_id derived from it) a natural
// idempotency key; two regions' checks of one slot are two ids. The
// default region's ids are those of the builds before regions, so stored
// rows keep theirs.
//
// The computation lives in codecs (SlotEventID), so that a consumer can
// tell an id that is its slot's (IsSlotEventID) without this package.
func RequestID(url string, scheduledAt time.Time, region string) string {
	return codecs.SlotEventID(url, scheduledAt, region)
}
