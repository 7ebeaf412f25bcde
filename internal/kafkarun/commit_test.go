package kafkarun

import "testing"

// TestPendingOffsetsMarkInOrder: a message finished before an earlier one
// is not marked until the earlier one is finished too, and gaps in the
// delivered offsets (compaction, transaction markers) do not hold marks up.
func TestPendingOffsetsMarkInOrder(t *testing.T) {
	p := &pendingOffsets{done: map[int64]bool{}}
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
	if len(p.offsets) != 0 || len(p.done) != 0 {
		t.Errorf("left over: offsets %v done %v", p.offsets, p.done)
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
