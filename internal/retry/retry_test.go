package retry

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMaxWithJitterAndResets(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	ceilings := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, c := range ceilings {
		c *= time.Millisecond
		if d := b.Next(); d < c/2 || d > c {
			t.Fatalf("wait %d: %v, want within [%v, %v]", i+1, d, c/2, c)
		}
	}
	b.Reset()
	if d := b.Next(); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("after Reset: %v, want within [50ms, 100ms]", d)
	}
}

func TestDelayFollowsTheBackoff(t *testing.T) {
	for attempt, c := range map[int]time.Duration{1: 100, 2: 200, 3: 400, 5: 1000, 40: 1000} {
		c *= time.Millisecond
		if d := Delay(100*time.Millisecond, time.Second, attempt); d < c/2 || d > c {
			t.Errorf("Delay attempt %d: %v, want within [%v, %v]", attempt, d, c/2, c)
		}
	}
}

func TestDoStopsOnPermanentAndRetriesTheRest(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	calls := 0
	err := Do(context.Background(), log, "op", Backoff{Min: time.Millisecond, Max: time.Millisecond}, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("transient")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls, want nil after 3", err, calls)
	}
	calls = 0
	bad := errors.New("bad password")
	err = Do(context.Background(), log, "op", Backoff{Min: time.Millisecond, Max: time.Millisecond}, func(context.Context) error {
		calls++
		return Permanent(bad)
	})
	if !errors.Is(err, bad) || !IsPermanent(err) || calls != 1 {
		t.Errorf("Do = %v after %d calls, want the permanent error after 1", err, calls)
	}
}

func TestRateLogCountsWhatItHolds(t *testing.T) {
	r := RateLog{Every: 10 * time.Second}
	t0 := time.Unix(0, 0)
	if n, ok := r.Allow(t0); !ok || n != 0 {
		t.Fatalf("first line: %d %v", n, ok)
	}
	for i := 1; i <= 5; i++ {
		if _, ok := r.Allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("line %d let through inside the period", i)
		}
	}
	if n, ok := r.Allow(t0.Add(10 * time.Second)); !ok || n != 5 {
		t.Errorf("after the period: suppressed %d ok %v, want 5 true", n, ok)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep ran its full hour on a cancelled context")
	}
}
