package scheduler

import (
	"testing"
	"time"
)

// TestBacklogCountsOnlyThisInstancesRequests: after a rebalance the new
// owner of a partition first takes what its previous owner left there; a
// backlog counted from those would shed slots of a healthy emitter (the
// fleet test saw its taken-over sites requested 4.5 s late).
func TestBacklogCountsOnlyThisInstancesRequests(t *testing.T) {
	var a Admission
	a.Assigned([]int32{0, 1})
	// Partition 0: the previous owner's requests sit at offsets 0-999,
	// this instance's from 1000 on.
	for off := int64(1000); off < 1010; off++ {
		a.Produced(0, off)
	}
	a.Taken(0, 5, true)
	// Partition 1: caught up with this instance's own requests.
	a.Produced(1, 40)
	a.Taken(1, 40, false)
	// Partition 2 is not consumed here: its offsets are someone else's.
	a.Produced(2, 500)
	if got := a.backlog(); got != 10 {
		t.Errorf("backlog %d, want this instance's 10 waiting requests of partition 0", got)
	}
	a.Taken(0, 1004, false)
	if got := a.backlog(); got != 5 {
		t.Errorf("backlog %d after taking up to offset 1004, want 5", got)
	}
	// The producer's buffer counts while Kafka stores requests, and not
	// while it is away (an outage is no overload).
	a.SetBuffered(func() int { return 3 })
	if got := a.backlog(); got != 5+3 {
		t.Errorf("backlog %d with 3 requests buffered, want 5+3", got)
	}
	a.mu.Lock()
	a.storedAt = time.Now().Add(-2 * time.Second)
	a.mu.Unlock()
	if got := a.backlog(); got != 5 {
		t.Errorf("backlog %d with Kafka storing nothing for 2 s, want 5 (the buffer does not count)", got)
	}
	if !a.assigned.Load() {
		t.Error("an assignment did not reset the pacer")
	}
}
