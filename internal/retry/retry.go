package retry

import (
	"context"
	"time"
)

// Backoff is an exponential backoff between Min and Max. The zero value is
// not useful; set both bounds.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the wait before the next attempt and doubles the one after.
func (b *Backoff) Next() time.Duration {
	if b.cur < b.Min {
		b.cur = b.Min
	}
	d := b.cur
	b.cur = min(b.cur*2, b.Max)
	return d
}

// Reset starts over from Min, e.g. after a run that lasted long enough to
// count as healthy.
func (b *Backoff) Reset() { b.cur = b.Min }

// Sleep waits d or until ctx ends, reporting whether the full wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// RateLog lets one log line through per period and counts the ones held
// back. Not safe for concurrent use; callers hold a lock.
type RateLog struct {
	Every      time.Duration
	last       time.Time
	suppressed int
}

// Allow reports whether a line may be logged at now and, if so, how many
// were held back since the last one.
func (r *RateLog) Allow(now time.Time) (suppressed int, ok bool) {
	if !r.last.IsZero() && now.Sub(r.last) < r.Every {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return n, true
}
