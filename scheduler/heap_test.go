package scheduler

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestEntryHeapFiresInSlotOrder: the scheduler fires the root, moves its
// slot on and fixes the top; the roots it sees must be every slot in time
// order, whatever the sizes (one full node, partial last nodes) and ties.
func TestEntryHeapFiresInSlotOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 4, 5, 6, 17, 64, 1000} {
		h := make(entryHeap, n)
		var want []int64
		for i := range h {
			h[i] = queued{next: rng.Int64N(50), e: &entry{}}
		}
		h.init()
		// Each site fires three times, an interval of 100 apart.
		for i := range h {
			for k := range int64(3) {
				want = append(want, h[i].next+100*k)
			}
		}
		slices.Sort(want)
		var got []int64
		fired := make(map[*entry]int)
		for len(got) < len(want) {
			top := h[0]
			got = append(got, top.next)
			fired[top.e]++
			if fired[top.e] == 3 {
				h[0].next = 1 << 62 // done: sinks to the bottom
			} else {
				h[0].next += 100
			}
			h.fixTop()
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%d sites: fired %v, want %v", n, got, want)
		}
	}
}
