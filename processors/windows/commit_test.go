package windows

import (
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// TestRevisionGrowsAcrossReplayFromOlderState is a crash between goka's
// two writes: run A emitted a window twice and died with neither table
// write in Kafka, so run B replays the same events (and one more late one)
// onto the older state. A sink keeping the highest revision must end with
// B's complete window, not A's last emission.
func TestRevisionGrowsAcrossReplayFromOlderState(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	now := at(13, 0, 0)
	a1 := result(site, "a1", at(12, 1, 0), responseMS(10))
	a2 := result(site, "a2", at(12, 2, 0), responseMS(20))
	late := result(site, "a3", at(12, 4, 0), responseMS(30))
	late2 := result(site, "a4", at(12, 4, 30), responseMS(40))
	b1 := result(site, "b1", at(12, 5, 10))

	// The state as the table last recorded it: a1 applied.
	saved := &state{}
	rules.apply(saved, a1, now, time.Time{})
	stored, err := stateCodec{}.Encode(saved)
	if err != nil {
		t.Fatal(err)
	}
	replay := func(rs ...*codecs.Result) []*codecs.Window {
		v, err := stateCodec{}.Decode(stored)
		if err != nil {
			t.Fatal(err)
		}
		st := v.(*state)
		var out []*codecs.Window
		for _, r := range rs {
			_, em := rules.apply(st, r, now, time.Time{})
			for _, e := range em {
				out = append(out, e.window)
			}
		}
		return out
	}
	runA := replay(a2, b1, late)        // rev for [a1 a2], then [a1 a2 a3]
	runB := replay(a2, late, late2, b1) // one emission with all four
	var kept *codecs.Window
	for _, w := range append(runA, runB...) {
		if kept == nil || w.Revision > kept.Revision {
			kept = w
		}
	}
	if len(runA) != 2 || len(runB) != 1 {
		t.Fatalf("test bug: run A emitted %d, run B %d windows", len(runA), len(runB))
	}
	if kept != runB[0] || kept.Checks != 4 {
		t.Errorf("a sink keeping the highest revision keeps %d checks at revision %d; run A emitted revisions %d and %d, run B %d",
			kept.Checks, kept.Revision, runA[0].Revision, runA[1].Revision, runB[0].Revision)
	}
}

// TestWindowKeptUntilItsEmissionIsDone: a window whose grace is over stays
// in the table until the message that emitted it is done, so that a crash
// before its emission reached Kafka still finds it to re-send when that
// message is read again.
func TestWindowKeptUntilItsEmissionIsDone(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	now := at(13, 0, 0)
	doneBelow := int64(0) // every offset below is done
	read := func(offset int64) position {
		return position{topic: "succeeded", offset: offset, done: func(topic string, o int64) bool {
			return topic == "succeeded" && o < doneBelow
		}}
	}
	st := &state{}
	apply := func(r *codecs.Result, offset int64) (verdict, []emission) {
		t.Helper()
		return rules.applyAt(st, r, now, time.Time{}, read(offset))
	}
	apply(result(site, "a1", at(12, 1, 0)), 1)
	closing := result(site, "b1", at(12, 5, 10))
	if _, out := apply(closing, 2); len(out) != 1 {
		t.Fatalf("closing event emitted %d windows, want 1", len(out))
	}
	// Far past [12:00, 12:05) + grace, while the emission is in flight.
	apply(result(site, "c1", at(12, 8, 0)), 3)
	if w, _ := st.find(at(12, 0, 0), codecs.DefaultRegion); w == nil {
		t.Fatal("window dropped while the message that emitted it was not done")
	}

	// The process dies; the table has this state, the emission is lost,
	// and offset 2 is read again: the window is re-sent.
	st, _ = reloaded(t, st)
	verdict, out := apply(closing, 2)
	if verdict != duplicate || len(out) == 0 || !out[0].window.WindowStart.Equal(at(12, 0, 0)) {
		t.Fatalf("re-read closing event: verdict %v, re-sent %d windows, want the 12:00 window again", verdict, len(out))
	}

	// Once the re-sent copy is done, the next event drops the window.
	doneBelow = 3
	apply(result(site, "d1", at(12, 9, 0)), 4)
	if w, _ := st.find(at(12, 0, 0), codecs.DefaultRegion); w != nil {
		t.Error("window kept although its emission is done")
	}
}
