package scheduler

import (
	"container/heap"
	"math/rand/v2"
	"testing"
)

// binaryHeap is the scheduler's former heap, container/heap over the
// same entries: the baseline of BenchmarkEntryHeap in the same run.
type binaryHeap []queued

func (h binaryHeap) Len() int           { return len(h) }
func (h binaryHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h binaryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *binaryHeap) Push(x any)        { *h = append(*h, x.(queued)) }
func (h *binaryHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	*h = old[:len(old)-1]
	return q
}

// BenchmarkEntryHeap is the scheduler's re-filing of a fired site (the
// root's slot moves one interval on) with 20,000 sites at 1 s, their
// phases spread over the interval, as bench/emitter runs it.
func BenchmarkEntryHeap(b *testing.B) {
	const sites, interval = 20000, int64(1e9)
	fill := func() []queued {
		rng := rand.New(rand.NewPCG(5, 6))
		q := make([]queued, sites)
		for i := range q {
			q[i] = queued{next: rng.Int64N(interval), e: &entry{}}
		}
		return q
	}
	b.Run("container-heap", func(b *testing.B) {
		h := binaryHeap(fill())
		heap.Init(&h)
		for b.Loop() {
			h[0].next += interval
			heap.Fix(&h, 0)
		}
	})
	b.Run("4-ary", func(b *testing.B) {
		h := entryHeap(fill())
		h.init()
		for b.Loop() {
			h[0].next += interval
			h.fixTop()
		}
	})
}
