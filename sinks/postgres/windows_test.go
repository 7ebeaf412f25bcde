package postgres

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

func TestWriteWindowsNewestRevisionWins(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	conn := connect(t, url)
	const site = "https://a.example/"
	w0 := t0
	w1 := t0.Add(5 * time.Minute)

	steps := []struct {
		name  string
		batch []*codecs.Window
		// checks stored for w0 and w1 afterwards (a window's checks
		// here equal 10×revision, so they tell which revision won)
		want0, want1 int64
	}{
		{"first emission", []*codecs.Window{window(site, w0, 2, 20)}, 20, -1},
		{"older revision replayed", []*codecs.Window{window(site, w0, 1, 10)}, 20, -1},
		{"same revision replayed", []*codecs.Window{window(site, w0, 2, 20), window(site, w1, 0, 0)}, 20, 0},
		{"newer revision", []*codecs.Window{window(site, w0, 3, 30)}, 30, 0},
		{"newest first in one batch", []*codecs.Window{window(site, w0, 5, 50), window(site, w0, 4, 40), window(site, w1, 1, 10)}, 50, 10},
	}
	for _, st := range steps {
		rej, err := s.WriteWindows(ctx, st.batch)
		if err != nil || len(rej) != 0 {
			t.Fatalf("%s: WriteWindows = %v, %v", st.name, rej, err)
		}
		for _, c := range []struct {
			start time.Time
			want  int64
		}{{w0, st.want0}, {w1, st.want1}} {
			got := queryInt(t, conn, "SELECT coalesce((SELECT checks FROM check_windows WHERE url = $1 AND window_start = $2), -1)", site, c.start)
			if got != c.want {
				t.Errorf("%s: window %s checks = %d, want %d", st.name, c.start.Format(time.TimeOnly), got, c.want)
			}
		}
	}
	if n := queryInt(t, conn, "SELECT revision FROM check_windows WHERE window_start = $1", w0); n != 5 {
		t.Errorf("stored revision = %d, want 5", n)
	}

	// Every column lands where it should.
	w := window("https://b.example/", w0, 7, 12)
	w.Failures, w.Responses, w.RegexpFailures = 3, 9, 1
	w.ResponseMinMS, w.ResponseP99MS = nil, ptr(99.5)
	w.StatusCounts = map[string]int64{"200": 9, "0": 3}
	if rej, err := s.WriteWindows(ctx, []*codecs.Window{w}); err != nil || len(rej) != 0 {
		t.Fatalf("WriteWindows = %v, %v", rej, err)
	}
	var got codecs.Window
	err := conn.QueryRow(ctx, `SELECT url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision FROM check_windows WHERE url = $1`, w.URL).Scan(
		&got.URL, &got.WindowStart, &got.WindowEnd, &got.Checks, &got.Failures, &got.Responses,
		&got.ResponseMinMS, &got.ResponseAvgMS, &got.ResponseMaxMS, &got.ResponseP50MS, &got.ResponseP95MS, &got.ResponseP99MS,
		&got.StatusCounts, &got.RegexpFailures, &got.Revision)
	if err != nil {
		t.Fatal(err)
	}
	got.V = codecs.Version
	got.WindowStart, got.WindowEnd = got.WindowStart.UTC(), got.WindowEnd.UTC()
	if !windowsEqual(got, *w) {
		t.Errorf("stored window differs:\n got %+v\nwant %+v", got, *w)
	}
}

func windowsEqual(a, b codecs.Window) bool {
	f := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	if len(a.StatusCounts) != len(b.StatusCounts) {
		return false
	}
	for k, v := range a.StatusCounts {
		if b.StatusCounts[k] != v {
			return false
		}
	}
	return a.URL == b.URL && a.WindowStart.Equal(b.WindowStart) && a.WindowEnd.Equal(b.WindowEnd) &&
		a.Checks == b.Checks && a.Failures == b.Failures && a.Responses == b.Responses &&
		a.RegexpFailures == b.RegexpFailures && a.Revision == b.Revision &&
		f(a.ResponseMinMS, b.ResponseMinMS) && f(a.ResponseAvgMS, b.ResponseAvgMS) && f(a.ResponseMaxMS, b.ResponseMaxMS) &&
		f(a.ResponseP50MS, b.ResponseP50MS) && f(a.ResponseP95MS, b.ResponseP95MS) && f(a.ResponseP99MS, b.ResponseP99MS)
}

func TestWriteWindowsRejectsInvalidRows(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	var ws []*codecs.Window
	for i := range 30 {
		ws = append(ws, window("https://c.example/", t0.Add(time.Duration(i)*5*time.Minute), 1, 10))
	}
	bad := map[int]string{
		2:  "check_windows_failures_range",
		3:  "integer out of range",
		11: "0x00",
		12: "check_windows_end_after_start",
		20: "nil window",
		29: "\\u0000",
	}
	ws[2].Failures = 11
	ws[3].Checks = math.MaxInt32 + 1
	ws[11].URL = "https://c.example/\x00"
	ws[12].WindowEnd = ws[12].WindowStart
	ws[20] = nil
	ws[29].StatusCounts = map[string]int64{"\x00": 1}
	ws[25].StatusCounts = nil // stored as {}, not refused

	rej, err := s.WriteWindows(ctx, ws)
	if err != nil {
		t.Fatalf("WriteWindows: %v", err)
	}
	if len(rej) != len(bad) {
		t.Fatalf("rejected %v, want %d rows", rej, len(bad))
	}
	for _, r := range rej {
		t.Logf("row %d rejected: %s", r.Index, r.Reason)
		if why, ok := bad[r.Index]; !ok || !strings.Contains(r.Reason, why) {
			t.Errorf("rejected row %d with %q; want one of the bad rows, with a reason mentioning %q", r.Index, r.Reason, why)
		}
	}
	conn := connect(t, url)
	if n := queryInt(t, conn, "SELECT count(*) FROM check_windows"); n != int64(len(ws)-len(bad)) {
		t.Fatalf("stored %d windows, want %d", n, len(ws)-len(bad))
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_windows WHERE window_start = $1 AND status_counts = '{}'", ws[25].WindowStart); n != 1 {
		t.Fatalf("nil status_counts not stored as {}")
	}
}
