package scheduler

import (
	"sync"
	"sync/atomic"
	"time"
)

// Admission sheds slots at the source while the checks are behind, so that
// an emitter with more sites than it can check spends its CPU on checks
// rather than on requests that would go stale in Kafka.
//
// Without it, an emitter at three times its capacity produced every slot's
// request: two of three were dropped by the full request buffer or
// consumed, decoded and skipped as stale, and that waste took a sixth of
// the CPU per check the emitter had at its capacity (bench/emitter: 199
// against 168 µs), so it checked fewer sites the more it was asked.
//
// The signal is the backlog: the requests handed to the producer and not
// yet taken by a checker, counted exactly from Kafka offsets. The request
// producer reports the offset of every request it stored (Produced) and
// how many wait in its buffer (SetBuffered); the url_checker reports the
// offset of every request it takes (Taken) and which partitions it
// consumes (Assigned). The backlog of a consumed partition is the newest
// offset produced minus the newest taken, known the moment it changes,
// whereas the lateness of the requests taken tells of a backlog only once
// its requests come out of it: a pacer on lateness swung between a flood
// of stale requests and idle checkers, every three seconds.
//
// Every AdmissionTick the scheduler compares the requests taken for a
// check with the slots that came due, smoothed over a few ticks, and
// requests that fraction of the slots, scaled by the backlog against a
// target of targetBacklog of checks:
//
//	fraction = taken/due × (1 + (target − backlog)/(2·target)), the factor in [0.5, 1.5]
//
// so a longer backlog drains and a shorter one fills: the checkers stay
// busy, and a request waits a quarter of a second or so, far less than a
// slot. A fraction never grows while the backlog is over the target, and
// grows by at least a tenth per tick while under it, back to 1 (every
// slot) within a second or two of the load going away. Shedding starts
// only when, for a second on end, half the sites have had a request in
// the backlog while the checkers took requests: a healthy emitter, whose
// backlog is a few produce batches (or a stall of its checkers, an outage
// of Kafka, the catching up after either), never leaves 1. (The pace of
// the checkers cannot be the measure of "behind" at the start: it falls to
// nothing in a stall.)
//
// Each site skips evenly: a site keeps a credit, starting at its phase in
// its interval, that gains the fraction every slot and pays 1 for a
// request, so at a fraction of 1/3 each site is requested every third
// slot, and the sites take turns. A skipped slot is counted in
// sitewatch_schedule_shed_slots_total.
type Admission struct {
	taken    atomic.Int64 // requests taken for a check (not stale), this tick
	assigned atomic.Bool  // a new assignment since the last tick

	mu       sync.Mutex
	parts    map[int32]*partBacklog // of the partitions consumed here
	buffered func() int
	storedAt time.Time // of the last request Kafka stored
}

type partBacklog struct {
	first           int64 // first offset produced here since the assignment
	produced, taken int64 // newest offsets; -1: none seen
}

// AdmissionTick is how often the fraction of slots requested is adjusted.
const AdmissionTick = 100 * time.Millisecond

const (
	// targetBacklog is the backlog aimed at while shedding, in time at
	// the rate the checkers take requests.
	targetBacklog = 250 * time.Millisecond
	// minTarget is the least backlog target, in requests: below it the
	// checkers might run dry between produce batches.
	minTarget = 64
	// smoothing weighs each tick in the moving averages of the rates.
	smoothing = 0.3
	// minFraction keeps a trickle of requests flowing.
	minFraction = 1.0 / 1024
	// enterAfter is how many ticks on end the backlog must say so before
	// shedding starts.
	enterAfter = 10
)

// SetBuffered tells the admission how to count the requests waiting in
// the producer's buffer. Call it before the scheduler runs.
func (a *Admission) SetBuffered(f func() int) {
	a.mu.Lock()
	a.buffered = f
	a.mu.Unlock()
}

// Assigned is the url_checker's partitions of the requests topic; their
// backlogs start over. Safe from any goroutine.
func (a *Admission) Assigned(partitions []int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.parts = make(map[int32]*partBacklog, len(partitions))
	for _, p := range partitions {
		a.parts[p] = &partBacklog{first: -1, produced: -1, taken: -1}
	}
	a.assigned.Store(true)
}

// Produced records a request stored at offset of partition.
func (a *Admission) Produced(partition int32, offset int64) {
	a.mu.Lock()
	a.storedAt = time.Now()
	if b := a.parts[partition]; b != nil && offset > b.produced {
		b.produced = offset
		if b.first < 0 {
			b.first = offset
		}
	}
	a.mu.Unlock()
}

// Taken records a request taken by a checker at offset of partition, stale
// or to be checked.
func (a *Admission) Taken(partition int32, offset int64, stale bool) {
	if !stale {
		a.taken.Add(1)
	}
	a.mu.Lock()
	if b := a.parts[partition]; b != nil && offset > b.taken {
		b.taken = offset
	}
	a.mu.Unlock()
}

// backlog is the requests produced here and not yet taken, in the
// partitions consumed here, and those in the producer's buffer while
// Kafka stores requests (within the last second): at three times its
// capacity an emitter's requests waited longest there. While Kafka is away
// they pile up there too, and that is an outage, not checkers that fall
// behind (the CI saw an emitter shed through a broker restart and find no
// way back). Requests other instances produced do not count: after a rebalance the new owner
// of a partition first takes its previous owner's leftovers (stale, and
// skipped at once), and they are not this scheduler's load.
func (a *Admission) backlog() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, b := range a.parts {
		if b.first >= 0 {
			n += b.produced - max(b.taken, b.first-1)
		}
	}
	if a.buffered != nil && time.Since(a.storedAt) < time.Second {
		n += int64(a.buffered())
	}
	return n
}

// pacer is the scheduler's side of Admission: the fraction of slots it
// requests, and the moving averages that set it. Owned by the scheduler's
// goroutine.
type pacer struct {
	fraction  float64
	taken     float64 // requests taken for a check, per tick
	due       float64 // slots that came due, per tick
	dueInTick int64
	sites     int // scheduled here
	over      int // ticks on end that said to start shedding
}

// tick moves the averages on by one tick of length d in which the checkers
// took taken requests for a check and due slots came due, with backlog
// requests waiting at its end, and returns the new fraction.
func (p *pacer) tick(d time.Duration, taken, due, backlog int64) float64 {
	p.taken += smoothing * (float64(taken) - p.taken)
	p.due += smoothing * (float64(due) - p.due)
	perNS := p.taken / float64(max(d, time.Millisecond)) // requests taken per ns
	target := max(minTarget, perNS*float64(targetBacklog))
	q := float64(backlog)
	if p.fraction >= 1 {
		// Shedding starts once, for a second on end, half the sites
		// have had a request waiting while the checkers took requests:
		// they are working and still half a slot behind. A stall, an
		// outage of Kafka or the catching up after one is not that.
		if taken > 0 && q > max(target, float64(p.sites)/2) {
			p.over++
		} else {
			p.over = 0
		}
		if p.over < enterAfter {
			return 1
		}
	}
	if taken == 0 && q >= target {
		// The checkers took nothing: stalled, or cut off from Kafka. That
		// says nothing of their pace; the fraction holds until they take
		// again.
		return p.fraction
	}
	gain := min(max(1+(target-q)/(2*target), 0.5), 1.5)
	f := gain * p.taken / max(p.due, 1)
	if q < target {
		f = max(f, p.fraction*1.1)
	} else {
		f = min(f, p.fraction)
	}
	p.fraction = min(max(f, minFraction), 1)
	return p.fraction
}

// admit reports whether e's slot is requested, given the fraction of slots
// requested now.
func (e *entry) admit(fraction float64) bool {
	if fraction >= 1 {
		return true
	}
	e.credit += fraction
	if e.credit < 1 {
		return false
	}
	e.credit--
	return true
}
