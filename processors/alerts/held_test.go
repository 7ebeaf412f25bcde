package alerts

import (
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHeldEventsAgainstAModel drives a URL's held events through random
// holds (in and out of checked_at order, equal times, re-deliveries of a
// held event, the same event_id checked again later), applies (dropFirst)
// and store round trips, and checks after every step that the held events
// are a plain list's: checked_at order with equal times in arrival order,
// an event_id held once, the oldest the one flush applies next.
func TestHeldEventsAgainstAModel(t *testing.T) {
	const url = "https://shop.example/"
	rng := mrand.New(mrand.NewPCG(1, 2))
	st := &state{URL: url}
	type ev struct {
		id string
		at time.Time
	}
	var model []ev
	var ids []string // every id held so far, for re-deliveries
	next := 0
	for step := range 5000 {
		switch op := rng.IntN(10); {
		case op < 6:
			// A new event, mostly newer than those held.
			at := t0.Add(time.Duration(step) * time.Second)
			if rng.IntN(3) == 0 {
				at = t0.Add(time.Duration(rng.IntN(step+1)) * time.Second)
			}
			id := fmt.Sprintf("%s#%d", url, next)
			next++
			r := check(url, 0, rng.IntN(2) == 0)
			r.EventID, r.CheckedAt = id, at
			st.hold(&pending{Result: r, Topic: "status_request_succeeded", Offset: int64(step), HeldAt: t0})
			ids = append(ids, id)
			i := len(model)
			for i > 0 && model[i-1].at.After(at) {
				i--
			}
			model = slices.Insert(model, i, ev{id, at})
		case op < 8 && len(ids) > 0:
			// A re-delivery, or another check of the same slot: nothing
			// new while its event_id is held.
			id := ids[rng.IntN(len(ids))]
			r := check(url, 0, true)
			r.EventID, r.CheckedAt = id, t0.Add(time.Duration(rng.IntN(step+1))*time.Second)
			st.hold(&pending{Result: r, Topic: "status_request_succeeded", Offset: int64(step), HeldAt: t0})
			if !slices.ContainsFunc(model, func(e ev) bool { return e.id == id }) {
				i := len(model)
				for i > 0 && model[i-1].at.After(r.CheckedAt) {
					i--
				}
				model = slices.Insert(model, i, ev{id, r.CheckedAt})
			}
		case op < 9 && st.holding() > 0:
			if got := st.oldestHeld(); got.Result.EventID != model[0].id || !got.Result.CheckedAt.Equal(model[0].at) {
				t.Fatalf("step %d: oldest held %s at %s, want %s at %s", step, got.Result.EventID, got.Result.CheckedAt, model[0].id, model[0].at)
			}
			st.held.dropFirst()
			model = model[1:]
		default:
			// Written to the table and read back: the index starts over.
			st, _ = readBack(t, st)
		}
		if st.holding() != len(model) {
			t.Fatalf("step %d: %d held, want %d", step, st.holding(), len(model))
		}
		if len(model) > 0 {
			if got := st.oldestHeld(); got.Result.EventID != model[0].id {
				t.Fatalf("step %d: oldest held %s, want %s", step, got.Result.EventID, model[0].id)
			}
		}
	}
	var got []ev
	st.held.list.each(func(item []byte) bool {
		at, id := heldKey(item)
		got = append(got, ev{string(id), at})
		return true
	})
	if !slices.EqualFunc(got, model, func(a, b ev) bool { return a.id == b.id && a.at.Equal(b.at) }) {
		t.Fatalf("held events differ from the model:\n got %v\nwant %v", got, model)
	}
}
