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
	// keys index list's items, in the same order, once built (indexed).
	keys    []heldKeyOf
	indexed bool
	// oldest is the first item decoded, nil until it is asked for: flush
	// asks at every event whether it may go yet.
	oldest *pending
}

// heldKeyOf is what holding needs of a held event.
type heldKeyOf struct {
	at time.Time
	// id is a hash of the event_id; a match is confirmed on the item.
	id uint64
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
	h.keys = slices.Grow(h.keys[:0], h.list.n)
	h.list.each(func(item []byte) bool {
		at, id := heldKey(item)
		h.keys = append(h.keys, heldKeyOf{at: at, id: maphash.Bytes(idSeed, id)})
		return true
	})
	h.indexed = true
}

// has reports whether an event with this event_id is held.
func (h *heldEvents) has(eventID string) bool {
	h.index()
	sum := hashID(eventID)
	for i, k := range h.keys {
		if k.id == sum && h.idAt(i) == eventID {
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
	at := e.Result.CheckedAt
	key := heldKeyOf{at: at, id: hashID(e.Result.EventID)}
	if h.list.n == 0 || !at.Before(h.keys[len(h.keys)-1].at) {
		// The common case: newer than every held event.
		h.list.add(item)
		h.keys = append(h.keys, key)
		return
	}
	pos, _ := slices.BinarySearchFunc(h.keys, at, func(k heldKeyOf, t time.Time) int {
		if k.at.After(t) {
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
	h.keys = slices.Insert(h.keys, pos, key)
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
		h.keys = h.keys[1:]
		if len(h.keys) == 0 {
			h.keys = nil
		}
	}
	h.oldest = nil
}
