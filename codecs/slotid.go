package codecs

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// SlotEventID is the event_id of one region's check of one site's slot
// (scheduler.RequestID, whose home this is): the first 16 bytes of
// SHA-256 over the URL and the slot start (Unix nanoseconds, decimal),
// in hex, and, for a region other than DefaultRegion, the region too.
func SlotEventID(url string, scheduledAt time.Time, region string) string {
	var out [32]byte
	slotEventID(&out, url, scheduledAt, region)
	return string(out[:])
}

// IsSlotEventID reports whether id is SlotEventID(url, scheduledAt,
// region), without allocating: a consumer that finds it so may identify
// the event by its slot (two integers) instead of keeping the id.
func IsSlotEventID(id, url string, scheduledAt time.Time, region string) bool {
	if len(id) != 32 {
		return false
	}
	var out [32]byte
	slotEventID(&out, url, scheduledAt, region)
	return string(out[:]) == id
}

func slotEventID(out *[32]byte, url string, scheduledAt time.Time, region string) {
	// One buffer on the stack and Sum256: the scheduler computes an id per
	// site and slot, tens of thousands a second, and each allocation shows.
	var buf [256]byte
	b := append(buf[:0], url...)
	b = append(b, 0)
	b = strconv.AppendInt(b, scheduledAt.UnixNano(), 10)
	if region != DefaultRegion && region != "" {
		b = append(b, 0)
		b = append(b, region...)
	}
	sum := sha256.Sum256(b)
	hex.Encode(out[:], sum[:16])
}
