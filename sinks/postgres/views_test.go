package postgres

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

func TestUptimeViews(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	const site = "https://v.example/"
	h := time.Date(2030, 3, 10, 14, 0, 0, 0, time.UTC)
	// Hour 14:00: 12 windows, 120 checks, 6 failures; average latency
	// weighted by responses. One window with no responses at all.
	var ws []*codecs.Window
	for i := range 12 {
		w := window(site, h.Add(time.Duration(i)*5*time.Minute), 1, 10)
		w.ResponseAvgMS = ptr(float64(10 * (i + 1)))
		w.ResponseP95MS = ptr(float64(100 + i))
		if i < 6 {
			w.Failures = 1
		}
		if i == 11 {
			w.Responses, w.ResponseAvgMS, w.ResponseMinMS, w.ResponseMaxMS = 0, nil, nil, nil
			w.ResponseP50MS, w.ResponseP95MS, w.ResponseP99MS = nil, nil, nil
		}
		ws = append(ws, w)
	}
	// Hour 15:00: all down; a window without any checks (a site that
	// stopped sending) in hour 16:00.
	down := window(site, h.Add(time.Hour), 1, 4)
	down.Failures, down.Responses = 4, 0
	down.ResponseMinMS, down.ResponseAvgMS, down.ResponseMaxMS = nil, nil, nil
	down.ResponseP50MS, down.ResponseP95MS, down.ResponseP99MS = nil, nil, nil
	empty := window(site, h.Add(2*time.Hour), 1, 0)
	empty.Responses, empty.ResponseAvgMS = 0, nil
	ws = append(ws, down, empty)
	if rej, err := s.WriteWindows(ctx, ws); err != nil || len(rej) != 0 {
		t.Fatalf("WriteWindows = %v, %v", rej, err)
	}

	conn := connect(t, url)
	type row struct {
		Checks, Failures int64
		Uptime, Avg, P95 *float64
	}
	hourly := map[int]row{}
	rows, err := conn.Query(ctx, `SELECT extract(hour FROM hour AT TIME ZONE 'UTC')::int, checks, failures,
    uptime_percent::float8, response_avg_ms, response_p95_max_ms FROM uptime_hourly WHERE url = $1`, site)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var hr int
		var r row
		if err := rows.Scan(&hr, &r.Checks, &r.Failures, &r.Uptime, &r.Avg, &r.P95); err != nil {
			t.Fatal(err)
		}
		hourly[hr] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// (10+20+…+110)·10 / 110 = 60
	check := func(what string, got *float64, want float64) {
		t.Helper()
		if math.IsNaN(want) {
			if got != nil {
				t.Errorf("%s = %v, want NULL", what, *got)
			}
			return
		}
		if got == nil || math.Abs(*got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	if r := hourly[14]; r.Checks != 120 || r.Failures != 6 {
		t.Errorf("14:00 checks/failures = %d/%d, want 120/6", r.Checks, r.Failures)
	}
	check("14:00 uptime", hourly[14].Uptime, 95)
	check("14:00 avg", hourly[14].Avg, 60)
	check("14:00 worst p95", hourly[14].P95, 110)
	check("15:00 uptime", hourly[15].Uptime, 0)
	check("15:00 avg", hourly[15].Avg, math.NaN())
	check("16:00 uptime", hourly[16].Uptime, math.NaN())

	var checks, failures int64
	var uptime *float64
	if err := conn.QueryRow(ctx, "SELECT checks, failures, uptime_percent::float8 FROM uptime_daily WHERE url = $1 AND day = $2",
		site, time.Date(2030, 3, 10, 0, 0, 0, 0, time.UTC)).Scan(&checks, &failures, &uptime); err != nil {
		t.Fatal(err)
	}
	if checks != 124 || failures != 10 {
		t.Errorf("daily checks/failures = %d/%d, want 124/10", checks, failures)
	}
	check("daily uptime", uptime, 91.935) // 114/124, rounded to 3 places
}

// The raw-check views: exact percentiles per hour, and the SQL reference
// for check_windows.
func TestLatencyAndRecomputedViews(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	if err := s.MaintainPartitions(ctx, t0, 1, 0); err != nil {
		t.Fatal(err)
	}
	const site = "https://p.example/"
	start := time.Date(2030, 3, 10, 12, 5, 0, 0, time.UTC)
	var rs []*codecs.Result
	// Window 12:05: responses 1..100 ms, plus two failures (one with a
	// 503 response, one without a response) and one regexp miss.
	for i := 1; i <= 100; i++ {
		rs = append(rs, upResult(fmt.Sprint("p", i), site, start.Add(time.Duration(i)*time.Second), float64(i)))
	}
	rs[0].Regexp, rs[0].RegexpMatched = ptr("x"), ptr(true)
	miss := upResult("miss", site, start.Add(101*time.Second), 50)
	miss.Outcome, miss.ErrorKind, miss.Regexp, miss.RegexpMatched = codecs.OutcomeDown, ptr(codecs.ErrRegexp), ptr("x"), ptr(false)
	s503 := upResult("503", site, start.Add(102*time.Second), 50)
	s503.Outcome, s503.ErrorKind, s503.StatusCode = codecs.OutcomeDown, ptr(codecs.ErrStatus), 503
	rs = append(rs, miss, s503, downResult("refused", site, start.Add(299*time.Second)))
	// Window 12:10 starts exactly at its boundary.
	rs = append(rs, upResult("next", site, start.Add(5*time.Minute), 7))
	if rej, err := s.WriteResults(ctx, rs); err != nil || len(rej) != 0 {
		t.Fatalf("WriteResults = %v, %v", rej, err)
	}
	conn := connect(t, url)

	var checks, failures, responses, regexpFailures int64
	var winStart, winEnd time.Time
	var p50, p95, p99, minMS, maxMS, avg float64
	var counts []byte
	err := conn.QueryRow(ctx, `SELECT window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures
FROM check_windows_recomputed WHERE url = $1 ORDER BY window_start LIMIT 1`, site).Scan(
		&winStart, &winEnd, &checks, &failures, &responses, &minMS, &avg, &maxMS, &p50, &p95, &p99, &counts, &regexpFailures)
	if err != nil {
		t.Fatal(err)
	}
	if !winStart.Equal(start) || !winEnd.Equal(start.Add(5*time.Minute)) {
		t.Errorf("window = [%v, %v), want [%v, +5m)", winStart, winEnd, start)
	}
	if checks != 103 || failures != 3 || responses != 102 || regexpFailures != 1 {
		t.Errorf("checks/failures/responses/regexp_failures = %d/%d/%d/%d, want 103/3/102/1", checks, failures, responses, regexpFailures)
	}
	// Responses: 1..100, 50, 50. percentile_cont over 102 sorted values:
	// p50 between the 51st and 52nd (50 and 50), p95 at rank 95.95, p99
	// at rank 99.99 (1-based).
	sorted := append([]float64{}, 50, 50)
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, float64(i))
	}
	slices.Sort(sorted)
	cont := func(p float64) float64 {
		r := p * float64(len(sorted)-1)
		lo := math.Floor(r)
		return sorted[int(lo)] + (r-lo)*(sorted[int(math.Ceil(r))]-sorted[int(lo)])
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"min", minMS, 1}, {"max", maxMS, 100}, {"avg", avg, (5050.0 + 100) / 102},
		{"p50", p50, cont(0.5)}, {"p95", p95, cont(0.95)}, {"p99", p99, cont(0.99)},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	var gotCounts map[string]int64
	if err := json.Unmarshal(counts, &gotCounts); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"200": 101, "503": 1, "0": 1}; fmt.Sprint(gotCounts) != fmt.Sprint(want) {
		t.Errorf("status_counts = %v, want %v", gotCounts, want)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_windows_recomputed WHERE url = $1", site); n != 2 {
		t.Errorf("%d windows, want 2", n)
	}

	// latency_hourly: the same checks, one hour.
	var hp95 float64
	var hChecks int64
	if err := conn.QueryRow(ctx, "SELECT checks, response_p95_ms FROM latency_hourly WHERE url = $1 AND hour = $2",
		site, time.Date(2030, 3, 10, 12, 0, 0, 0, time.UTC)).Scan(&hChecks, &hp95); err != nil {
		t.Fatal(err)
	}
	if hChecks != 104 {
		t.Errorf("latency_hourly checks = %d, want 104", hChecks)
	}
	if hp95 < 90 || hp95 > 100 {
		t.Errorf("latency_hourly p95 = %v, want within the slowest responses", hp95)
	}
}
