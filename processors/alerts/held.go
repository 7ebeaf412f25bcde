package alerts

import (
	"fmt"
	"hash/maphash"
	"slices"
	"time"
)

// heldEvents are a URL's held-back events, in checked_at order, in their
// stored form (an itemList), with an index of them kept in memory beside
// it.
//
// Holding an event looks at every held one: its checked_at for the order,
// its event_id for a re-delivery. Decoding each stored item for that at
// every event made holding cost O(held) per event, and in a backlog's
// first quietFor, when each URL holds up to maxPending events, that was a
// sixth of cmd/processor's CPU (bench/processor -perf). The index is built
// once per state in memory (a state stays decoded while it is written
// behind) and kept up to date by every change of the list; it is never
// stored.
type heldEvents struct {
	list itemList
	// ats and ids index list's items, in the same order, once built
	// (indexed): each one's checked_at, and a hash of its event_id (a
	// match is confirmed on the item). Apart, so that looking for a
	// re-delivery scans eight bytes an item.
	ats     []time.Time
	ids     []uint64
	indexed bool
	// oldest is the first item decoded, nil until it is asked for: flush
	// asks at every event whether it may go yet.
	oldest *pending
}

// idSeed seeds the event_id hashes of the index (in memory only).
var idSeed = maphash.MakeSeed()

func hashID(id string) uint64 { return maphash.String(idSeed, id) }

func (h *heldEvents) len() int { return h.list.n }

// index builds the index from the stored items, if not yet built.
func (h *heldEvents) index() {
	if h.indexed {
		return
	}
	h.ats, h.ids = slices.Grow(h.ats[:0], h.list.n), slices.Grow(h.ids[:0], h.list.n)
	h.list.each(func(item []byte) bool {
		at, id := heldKey(item)
		h.ats, h.ids = append(h.ats, at), append(h.ids, maphash.Bytes(idSeed, id))
		return true
	})
	h.indexed = true
}

// has reports whether an event with this event_id is held.
func (h *heldEvents) has(eventID string) bool {
	h.index()
	sum := hashID(eventID)
	for i, id := range h.ids {
		if id == sum && h.idAt(i) == eventID {
			return true
		}
	}
	return false
}

// idAt returns the event_id of the i-th item.
func (h *heldEvents) idAt(i int) string {
	var id []byte
	j := 0
	h.list.each(func(item []byte) bool {
		if j == i {
			_, id = heldKey(item)
			return false
		}
		j++
		return true
	})
	return string(id)
}

// add holds e, encoded as item, after every held event checked at or
// before it (equal times keep arrival order).
func (h *heldEvents) add(e *pending, item []byte) {
	h.index()
	at, id := e.Result.CheckedAt, hashID(e.Result.EventID)
	if h.list.n == 0 || !at.Before(h.ats[len(h.ats)-1]) {
		// The common case: newer than every held event.
		h.list.add(item)
		h.ats, h.ids = append(h.ats, at), append(h.ids, id)
		return
	}
	pos, _ := slices.BinarySearchFunc(h.ats, at, func(k, t time.Time) int {
		if k.After(t) {
			return 1
		}
		return -1 // at or before t: e goes after it
	})
	var l itemList
	i := 0
	h.list.each(func(it []byte) bool {
		if i == pos {
			l.add(item)
		}
		l.add(it)
		i++
		return true
	})
	h.list = l
	h.ats, h.ids = slices.Insert(h.ats, pos, at), slices.Insert(h.ids, pos, id)
	if pos == 0 {
		h.oldest = nil
	}
}

// first returns the oldest held event; there must be one.
func (h *heldEvents) first(url string) *pending {
	if h.oldest == nil {
		e, err := decodeHeld(h.list.first(), url)
		if err != nil {
			// Items are checked when the state is decoded.
			panic(fmt.Sprintf("alerts state: held event: %v", err))
		}
		h.oldest = e
	}
	return h.oldest
}

// dropFirst removes the oldest held event.
func (h *heldEvents) dropFirst() {
	h.list.dropFirst()
	if h.indexed {
		h.ats, h.ids = h.ats[1:], h.ids[1:]
		if len(h.ats) == 0 {
			h.ats, h.ids = nil, nil
		}
	}
	h.oldest = nil
}
