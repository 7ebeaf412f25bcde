package alerts

import (
	"testing"
	"time"
)

// caughtUp says every partition is claimed and, but for the topics in
// behind, processed to its end.
type caughtUp struct{ behind map[string]bool }

func (c caughtUp) Behind(topic string, _ int32, _ int64) (bool, bool) { return c.behind[topic], true }

// A processor catching up on a backlog of one topic while the other has
// been quiet for quietFor applies an event it has just read, without
// holding it quietFor: the event had landed before the quiet time began.
// An event that landed later, or a quiet time that was not quiet, still
// waits.
func TestBacklogPassesOnceTheOtherTopicWasQuiet(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	o := newOrder(caughtUp{}, func() time.Time { return now }, "succeeded", "failed")
	checked := t0.Add(-time.Hour) // a backlog's event
	snap := func(after time.Duration, succeeded, failed int64) {
		now = t0.Add(after)
		o.refreshedAt(0, now, map[string]int64{"succeeded": succeeded, "failed": failed})
	}
	snap(0, 1000, 0)
	if o.ready("succeeded", 0, 10, checked, t0) {
		t.Fatal("an event passed before the other topic was known to be quiet")
	}
	for s := 1; s <= 5; s++ {
		snap(time.Duration(s)*time.Second+500*time.Millisecond, 1000, 0)
	}
	justRead := now.Add(-100 * time.Millisecond)
	if !o.ready("succeeded", 0, 10, checked, justRead) {
		t.Error("a backlog event waits although the other topic was quiet for quietFor since it landed")
	}
	if o.ready("succeeded", 0, 1500, checked, justRead) {
		t.Error("an event that landed after the quiet time began passed without waiting")
	}

	// The other topic got a record 3 s in: not quiet.
	o = newOrder(caughtUp{}, func() time.Time { return now }, "succeeded", "failed")
	snap(0, 1000, 0)
	for s := 1; s <= 5; s++ {
		failed := int64(0)
		if s >= 3 {
			failed = 1
		}
		snap(time.Duration(s)*time.Second+500*time.Millisecond, 1000, failed)
	}
	if o.ready("succeeded", 0, 10, checked, now.Add(-100*time.Millisecond)) {
		t.Error("an event passed although a record landed on the other topic during the quiet time")
	}

	// The other topic is behind: it may hold the event's predecessors.
	o = newOrder(caughtUp{behind: map[string]bool{"failed": true}}, func() time.Time { return now }, "succeeded", "failed")
	for s := 0; s <= 6; s++ {
		snap(time.Duration(s)*time.Second, 1000, 0)
	}
	if o.ready("succeeded", 0, 10, checked, now.Add(-100*time.Millisecond)) {
		t.Error("an event passed although the other topic has messages left to read")
	}
}
