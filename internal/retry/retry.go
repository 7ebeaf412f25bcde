package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Backoff is the one exponential backoff of sitewatch: the ceiling starts
// at Min, doubles after every wait up to Max, and each wait is drawn from
// the upper half of the ceiling, so that parts that failed together (two
// sinks on one database, emitters on one broker) do not retry in lockstep.
// The zero value is not useful; set both bounds.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the wait before the next attempt and doubles the ceiling of
// the one after.
func (b *Backoff) Next() time.Duration {
	if b.cur < b.Min {
		b.cur = b.Min
	}
	d := Jitter(b.cur)
	b.cur = min(b.cur*2, b.Max)
	return d
}

// Reset starts over from Min, e.g. after a run that lasted long enough to
// count as healthy.
func (b *Backoff) Reset() { b.cur = b.Min }

// Delay is the wait before retry number attempt (from 1) of a Backoff from
// min to max that has failed attempt-1 times already: for callers that
// count attempts themselves, such as sarama's retry hooks.
func Delay(min, max time.Duration, attempt int) time.Duration {
	d := max
	if attempt >= 1 && attempt < 32 {
		if e := min << (attempt - 1); e > 0 && e < d {
			d = e
		}
	}
	return Jitter(d)
}

// Jitter draws a wait uniformly from [d/2, d].
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

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

// errPermanent marks failures that retrying cannot fix.
var errPermanent = errors.New("permanent")

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, errPermanent} }

// Permanent marks err as one that no retry can fix (a rejected password, a
// bad certificate): Do returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool { return errors.Is(err, errPermanent) }

// Do runs fn until it succeeds, returns a Permanent error, or ctx ends,
// waiting b between attempts and logging every failure with its attempt
// number and the wait. The error names what, and says why Do gave up.
func Do(ctx context.Context, log *slog.Logger, what string, b Backoff, fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				log.Info(what+" succeeded after retries", "attempts", attempt)
			}
			return nil
		}
		if IsPermanent(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, context.Cause(ctx))
		}
		wait := b.Next()
		log.Warn(what+" failed, retrying", "attempt", attempt, "in", wait, "err", err)
		if !Sleep(ctx, wait) {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, context.Cause(ctx))
		}
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
