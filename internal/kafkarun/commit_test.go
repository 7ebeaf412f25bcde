package kafkarun

import (
	"math/rand/v2"
	"testing"

	"github.com/IBM/sarama"
)

// TestPendingOffsetsMarkInOrder: a message finished before an earlier one
// is not marked until the earlier one is finished too, and gaps in the
// delivered offsets (compaction, transaction markers) do not hold marks up.
func TestPendingOffsetsMarkInOrder(t *testing.T) {
	p := &pendingOffsets{}
	for _, o := range []int64{10, 11, 12, 14, 15} {
		p.deliver(o)
	}
	steps := []struct {
		finish int64
		mark   int64 // 0: nothing to mark yet
	}{
		{11, 0},  // 10 still in flight
		{14, 0},  // 10 and 12 still in flight
		{10, 12}, // 10 and 11 done
		{12, 15}, // 12, then 14 across the gap
		{15, 16},
		{9, 10}, // never delivered (already marked): passed on, sarama keeps the highest
	}
	for _, s := range steps {
		got, ok := p.finish(s.finish)
		switch {
		case s.mark == 0 && ok:
			t.Errorf("finish(%d) marked %d, want nothing until the earlier offsets are done", s.finish, got)
		case s.mark != 0 && (!ok || got != s.mark):
			t.Errorf("finish(%d) = %d, %v; want %d", s.finish, got, ok, s.mark)
		}
	}
	if n := len(p.q) - p.head; n != 0 {
		t.Errorf("left over: %v", p.q[p.head:])
	}
}

// TestPendingOffsetsAgainstAModel drives a partition's offsets through
// random deliveries, finishes, holds and releases, tens of thousands of
// them so that the queue reuses its room, and checks every mark against a
// plain model: the offset after the longest run of done, not held
// messages from the oldest not yet marked.
func TestPendingOffsetsAgainstAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p := &pendingOffsets{}
	type state struct{ done, held bool }
	model := map[int64]*state{}
	var order []int64 // delivered, not yet marked, ascending
	next := int64(0)
	marked := int64(-1)
	pick := func() (int64, bool) {
		if len(order) == 0 {
			return 0, false
		}
		// Mostly among the oldest: messages finish out of order, but near
		// the head.
		if rng.IntN(2) == 0 {
			return order[0], true
		}
		return order[rng.IntN(min(len(order), 8))], true
	}
	wantMark := func() (int64, bool) {
		n := 0
		for n < len(order) && model[order[n]].done && !model[order[n]].held {
			n++
		}
		if n == 0 {
			return 0, false
		}
		last := order[n-1]
		for _, o := range order[:n] {
			delete(model, o)
		}
		order = order[n:]
		return last + 1, true
	}
	for step := range 50000 {
		var got int64
		var ok bool
		// Phases of deliveries outrunning the finishes and back, so that
		// the queue grows long and its head moves far before it empties.
		deliver, finish, hold := 60, 85, 90 // of 100, the rest releases
		if step/2000%2 == 1 {
			deliver, finish, hold = 10, 70, 75
		}
		op := rng.IntN(100)
		if op < deliver {
			next += 1 + int64(rng.IntN(2)) // gaps, as compaction leaves
			p.deliver(next)
			model[next] = &state{}
			order = append(order, next)
			continue
		}
		o, any := pick()
		if !any {
			continue
		}
		switch {
		case op < finish:
			got, ok = p.finish(o)
			model[o].done = true
		case op < hold:
			p.hold(o)
			model[o].held = true
			continue
		default:
			got, ok = p.release(o)
			model[o].held = false
		}
		want, wantOK := wantMark()
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("step %d: mark %d, %v; want %d, %v", step, got, ok, want, wantOK)
		}
		if ok {
			if got <= marked {
				t.Fatalf("step %d: mark %d after %d", step, got, marked)
			}
			marked = got
		}
	}
	if marked < 1000 {
		t.Fatalf("only %d marked: the test did not exercise the queue", marked)
	}
}

// TestMarksClaimedBeforeStarted: between a session's Setup and the start
// of one of its claims, that partition reads as behind (it may hold older
// events), never as unclaimed; once started, an empty partition is not
// behind and one with unread records is.
func TestMarksClaimedBeforeStarted(t *testing.T) {
	m := NewMarks()
	if _, known := m.Behind("failed", 0, -1); known {
		t.Fatal("a partition never claimed reads as known")
	}
	m.expect("failed", 0)
	if behind, known := m.Behind("failed", 0, -1); !behind || !known {
		t.Fatalf("claimed, not started: behind=%v known=%v, want true true", behind, known)
	}
	m.start("failed", 0, -2, 0)
	if behind, known := m.Behind("failed", 0, -1); behind || !known {
		t.Fatalf("started, empty: behind=%v known=%v, want false true", behind, known)
	}
	m.expect("failed", 1)
	m.start("failed", 1, 0, 5)
	if behind, _ := m.Behind("failed", 1, 3); !behind {
		t.Fatal("started with records 3..4 unread: not behind")
	}
	if behind, _ := m.Behind("failed", 1, 5); behind {
		t.Fatal("every record read: still behind")
	}
}

// recordingSession is a consumer group session that records the offsets
// passed on to sarama.
type recordingSession struct {
	sarama.ConsumerGroupSession
	marked map[topicPartition]int64
}

func (s *recordingSession) MarkOffset(topic string, partition int32, offset int64, _ string) {
	s.marked[topicPartition{topic, partition}] = offset
}

// TestHeldMessagesWaitForTheWriteThatHasThem: a processor holding a key's
// state in memory holds the messages applied to it. They, and every later
// message of their partition, stay unmarked although goka is done with
// them, until the message whose write has them is done (ReleaseAfter) or
// a visit wrote them (Release); a hold from an earlier session is never
// marked. Without it a crash after the commit and before the write lost
// those events for good.
func TestHeldMessagesWaitForTheWriteThatHasThem(t *testing.T) {
	m := NewMarks()
	rec := &recordingSession{marked: map[topicPartition]int64{}}
	s := &inOrderSession{ConsumerGroupSession: rec, marks: m, parts: map[topicPartition]*pendingOffsets{}, after: map[held][]Held{}}
	m.setSession(s)
	succeeded, failed := topicPartition{"succeeded", 0}, topicPartition{"failed", 0}
	for o := int64(0); o < 4; o++ {
		s.pending("succeeded", 0).deliver(o)
	}
	s.pending("failed", 0).deliver(7)

	// Messages 0 and 1 are applied to a held state; 2 is another key's,
	// written at once; failed/7 writes the held state.
	h := []Held{m.Hold("succeeded", 0, 0), m.Hold("succeeded", 0, 1)}
	m.ReleaseAfter("failed", 0, 7, h)
	for o := int64(0); o < 3; o++ {
		s.MarkOffset("succeeded", 0, o+1, "")
	}
	if got, ok := rec.marked[succeeded]; ok {
		t.Fatalf("offset %d of succeeded marked while its messages 0 and 1 were held", got)
	}
	s.MarkOffset("failed", 0, 8, "") // the write is done
	if got := rec.marked[succeeded]; got != 3 {
		t.Errorf("after the write: succeeded marked up to %d, want 3 (0-2 done, 3 in flight)", got)
	}
	if got := rec.marked[failed]; got != 8 {
		t.Errorf("failed marked up to %d, want 8", got)
	}

	// Message 3 is held and written by a visit.
	h3 := m.Hold("succeeded", 0, 3)
	s.MarkOffset("succeeded", 0, 4, "")
	if got := rec.marked[succeeded]; got != 3 {
		t.Fatalf("held message 3 marked (%d) before its visit wrote it", got)
	}
	m.Release([]Held{h3})
	if got := rec.marked[succeeded]; got != 4 {
		t.Errorf("after the visit: succeeded marked up to %d, want 4", got)
	}

	// A new session: what the old one held is read again, never marked.
	old := m.Hold("succeeded", 0, 9)
	rec2 := &recordingSession{marked: map[topicPartition]int64{}}
	s2 := &inOrderSession{ConsumerGroupSession: rec2, marks: m, parts: map[topicPartition]*pendingOffsets{}, after: map[held][]Held{}}
	m.endSession(s)
	m.setSession(s2)
	m.Release([]Held{old})
	if len(rec2.marked) != 0 {
		t.Errorf("a hold of the previous session was marked in the new one: %v", rec2.marked)
	}
}
