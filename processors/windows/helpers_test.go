package windows

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// fakeClock is the wall clock of the tests: it moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// at returns 2026-03-02 hh:mm:ss UTC.
func at(hh, mm, ss int) time.Time {
	return time.Date(2026, 3, 2, hh, mm, ss, 0, time.UTC)
}

func ptr[T any](v T) *T { return &v }

// result builds a successful check of url at checkedAt (200, 100 ms);
// opts adjust it.
func result(url, id string, checkedAt time.Time, opts ...func(*codecs.Result)) *codecs.Result {
	r := &codecs.Result{
		EventID:        id,
		URL:            url,
		ScheduledAt:    checkedAt,
		CheckedAt:      checkedAt,
		Outcome:        codecs.OutcomeUp,
		StatusCode:     200,
		ResponseTimeMS: ptr(100.0),
		BodyBytes:      512,
		Checker:        "test",
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func failed(kind string, status int, ms *float64) func(*codecs.Result) {
	return func(r *codecs.Result) {
		r.Outcome = codecs.OutcomeDown
		r.ErrorKind = ptr(kind)
		r.ErrorMessage = ptr(kind + " failed")
		r.StatusCode = status
		r.ResponseTimeMS = ms
	}
}

func responseMS(ms float64) func(*codecs.Result) {
	return func(r *codecs.Result) { r.ResponseTimeMS = ptr(ms) }
}

func encode(t testing.TB, r *codecs.Result) []byte {
	t.Helper()
	data, err := codecs.ResultCodec{}.Encode(r)
	if err != nil {
		t.Fatalf("encode result: %v", err)
	}
	return data
}

// expectedWindows computes, directly from raw results, what SQL computes
// over check_results grouped by url, region and five-minute window: the reference
// the processor's windows are compared with.
func expectedWindows(rs []*codecs.Result, size time.Duration) map[windowKey]*codecs.Window {
	type acc struct {
		w   *codecs.Window
		rts []float64
	}
	accs := map[windowKey]*acc{}
	for _, r := range rs {
		start := r.CheckedAt.UTC().Truncate(size)
		region := codecs.RegionOrDefault(r.Region)
		k := windowKey{r.URL, start, region}
		a := accs[k]
		if a == nil {
			a = &acc{w: &codecs.Window{URL: r.URL, Region: region, WindowStart: start, WindowEnd: start.Add(size), StatusCounts: map[string]int64{}}}
			accs[k] = a
		}
		a.w.Checks++
		if r.Outcome == codecs.OutcomeDown {
			a.w.Failures++
		}
		if r.ErrorKind != nil && *r.ErrorKind == codecs.ErrRegexp {
			a.w.RegexpFailures++
		}
		a.w.StatusCounts[strconv.Itoa(r.StatusCode)]++
		if r.ResponseTimeMS != nil {
			a.rts = append(a.rts, *r.ResponseTimeMS)
		}
	}
	out := map[windowKey]*codecs.Window{}
	for k, a := range accs {
		if n := len(a.rts); n > 0 {
			a.w.Responses = int64(n)
			var sum float64
			for _, v := range a.rts {
				sum += v
			}
			a.w.ResponseMinMS = ptr(slices.Min(a.rts))
			a.w.ResponseMaxMS = ptr(slices.Max(a.rts))
			a.w.ResponseAvgMS = ptr(sum / float64(n))
			a.w.ResponseP50MS = ptr(percentileCont(a.rts, 0.50))
			a.w.ResponseP95MS = ptr(percentileCont(a.rts, 0.95))
			a.w.ResponseP99MS = ptr(percentileCont(a.rts, 0.99))
		}
		out[k] = a.w
	}
	return out
}

type windowKey struct {
	url    string
	start  time.Time
	region string
}

// percentileCont is PostgreSQL's percentile_cont, exactly.
func percentileCont(vs []float64, q float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo, hi := math.Floor(pos), math.Ceil(pos)
	return s[int(lo)] + (pos-lo)*(s[int(hi)]-s[int(lo)])
}

// diffWindow describes how got differs from want: counts and min/max/avg
// must match (avg up to float rounding), percentiles within 0.001 ms, or
// within 1 % for a window over the cap of exact percentiles.
func diffWindow(got, want *codecs.Window) string {
	var d []string
	add := func(format string, a ...any) { d = append(d, fmt.Sprintf(format, a...)) }
	if got.URL != want.URL || !got.WindowStart.Equal(want.WindowStart) || !got.WindowEnd.Equal(want.WindowEnd) {
		add("window %s [%v,%v), want %s [%v,%v)", got.URL, got.WindowStart, got.WindowEnd, want.URL, want.WindowStart, want.WindowEnd)
	}
	if got.Region != want.Region {
		add("region %q, want %q", got.Region, want.Region)
	}
	if got.WindowStart.Location() != time.UTC {
		add("window_start %v not in UTC", got.WindowStart)
	}
	if got.Checks != want.Checks || got.Failures != want.Failures || got.RegexpFailures != want.RegexpFailures || got.Responses != want.Responses {
		add("checks/failures/regexp/responses %d/%d/%d/%d, want %d/%d/%d/%d",
			got.Checks, got.Failures, got.RegexpFailures, got.Responses,
			want.Checks, want.Failures, want.RegexpFailures, want.Responses)
	}
	if len(got.StatusCounts) != len(want.StatusCounts) {
		add("status_counts %v, want %v", got.StatusCounts, want.StatusCounts)
	} else {
		for k, v := range want.StatusCounts {
			if got.StatusCounts[k] != v {
				add("status_counts %v, want %v", got.StatusCounts, want.StatusCounts)
				break
			}
		}
	}
	cmp := func(name string, g, w *float64, rel, abs float64) {
		switch {
		case (g == nil) != (w == nil):
			add("%s %v, want %v", name, fmtPtr(g), fmtPtr(w))
		case g != nil && math.Abs(*g-*w) > rel**w+abs:
			add("%s %v, want %v (±%v)", name, *g, *w, rel**w+abs)
		}
	}
	cmp("min", got.ResponseMinMS, want.ResponseMinMS, 0, 1e-12)
	cmp("max", got.ResponseMaxMS, want.ResponseMaxMS, 0, 1e-12)
	cmp("avg", got.ResponseAvgMS, want.ResponseAvgMS, 1e-12, 1e-12)
	// Exact percentiles are percentile_cont to 0.001 ms; a window has them
	// up to the cap, and the sketch's (within 1 %) only above it.
	if !got.PercentilesExact && got.Responses <= MaxExactResponses {
		add("percentiles_exact false with %d responses (cap %d)", got.Responses, MaxExactResponses)
	}
	rel, abs := 0.01, 1e-12
	if got.PercentilesExact {
		rel, abs = 0, 0.001
	}
	cmp("p50", got.ResponseP50MS, want.ResponseP50MS, rel, abs)
	cmp("p95", got.ResponseP95MS, want.ResponseP95MS, rel, abs)
	cmp("p99", got.ResponseP99MS, want.ResponseP99MS, rel, abs)
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

// testLogger sends the processor's log to the test log until the test
// ends (library goroutines may still log a moment later).
func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { // registered first, runs last
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// runUntilCleanup runs p until the test ends.
func runUntilCleanup(t testing.TB, p *Processor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}
