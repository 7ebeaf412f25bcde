package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMaxAndResets(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next())
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != 100*time.Millisecond {
		t.Errorf("after Reset: %v", d)
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
