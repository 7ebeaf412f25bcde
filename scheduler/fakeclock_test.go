package scheduler_test

import (
	"sync"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/scheduler"
)

// fakeClock is a manual clock: time moves only when the test fires the
// scheduler's timer, so hours of schedule run in milliseconds and every
// request fires exactly at the instant the scheduler asked for.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	created chan struct{}
}

type fakeTimer struct {
	clock   *fakeClock
	seq     int
	at      time.Time
	c       chan time.Time
	stopped bool
	fired   bool
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, created: make(chan struct{}, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) scheduler.Timer {
	c.mu.Lock()
	t := &fakeTimer{clock: c, seq: len(c.timers), at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	select {
	case c.created <- struct{}{}:
	default:
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// set moves the clock without firing anything: a process that was
// suspended and wakes up late.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// idle waits until the scheduler sleeps on a timer numbered at least
// minSeq and returns it.
func (c *fakeClock) idle(tb testing.TB, minSeq int) *fakeTimer {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		for i := len(c.timers) - 1; i >= 0 && i >= minSeq; i-- {
			if t := c.timers[i]; !t.stopped && !t.fired {
				c.mu.Unlock()
				return t
			}
		}
		c.mu.Unlock()
		select {
		case <-c.created:
		case <-time.After(time.Millisecond):
		case <-deadline:
			tb.Fatal("scheduler never went to sleep on a timer")
		}
	}
}

// runUntil fires the scheduler's timers one after the other, moving the
// clock to each deadline, until the next deadline is after end; the clock
// is then left at end.
func (c *fakeClock) runUntil(tb testing.TB, end time.Time) {
	tb.Helper()
	for {
		t := c.idle(tb, 0)
		c.mu.Lock()
		if t.at.After(end) {
			if c.now.Before(end) {
				c.now = end
			}
			c.mu.Unlock()
			return
		}
		if t.at.After(c.now) {
			c.now = t.at
		}
		t.fired = true
		t.c <- c.now
		c.mu.Unlock()
	}
}

// seq is the number of timers created so far.
func (c *fakeClock) seq() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
