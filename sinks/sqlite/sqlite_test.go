package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
)

func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "sitewatch.db")
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func upResult(id string, at time.Time) *codecs.Result {
	return &codecs.Result{
		V: 1, EventID: id, URL: "https://example.com/", ScheduledAt: at, CheckedAt: at.Add(3 * time.Millisecond),
		Outcome: codecs.OutcomeUp, StatusCode: 200, ResponseTimeMS: ptr(12.5), DNSMS: ptr(1.25),
		ConnectMS: ptr(2.0), TLSMS: nil, TTFBMS: ptr(10.0), TransferMS: ptr(0.5), BodyBytes: 1256,
		Regexp: ptr("Example"), RegexpMatched: ptr(true), Checker: "checker-1",
	}
}

func downResult(id string, at time.Time) *codecs.Result {
	return &codecs.Result{
		V: 1, EventID: id, URL: "https://down.example/", ScheduledAt: at, CheckedAt: at,
		Outcome: codecs.OutcomeDown, StatusCode: 0, ErrorKind: ptr(codecs.ErrConnect),
		ErrorMessage: ptr("connection refused"), Checker: "checker-2",
	}
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenTwiceKeepsData(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)
	if _, err := s.WriteResults(ctx, []*codecs.Result{upResult("a", t0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if n := count(t, s2.DB(), "SELECT count(*) FROM check_results"); n != 1 {
		t.Fatalf("rows after reopen = %d, want 1", n)
	}
	var mode string
	if err := s2.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, path := range []string{"", "data?mode=ro"} {
		if _, err := sqlite.Open(context.Background(), path, nil); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestWriteResultsRoundTripAndIdempotent(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	up, down := upResult("a", t0), downResult("b", t0.Add(time.Second))
	rej, err := s.WriteResults(ctx, []*codecs.Result{up, down})
	if err != nil || len(rej) != 0 {
		t.Fatalf("WriteResults = %v, %v", rej, err)
	}
	// Re-delivery of the same events plus one new: only the new one lands,
	// and a re-delivered event does not overwrite the stored one.
	changed := upResult("a", t0)
	changed.StatusCode = 503
	rej, err = s.WriteResults(ctx, []*codecs.Result{changed, down, upResult("c", t0)})
	if err != nil || len(rej) != 0 {
		t.Fatalf("second WriteResults = %v, %v", rej, err)
	}
	if n := count(t, s.DB(), "SELECT count(*) FROM check_results"); n != 3 {
		t.Fatalf("rows = %d, want 3", n)
	}

	var (
		url, scheduled, checked, outcome, checker string
		status                                    int
		rt, dns, tls, ttfb                        sql.NullFloat64
		body                                      int64
		re                                        sql.NullString
		matched                                   sql.NullBool
		kind, msg                                 sql.NullString
	)
	err = s.DB().QueryRow(`SELECT url, scheduled_at, checked_at, outcome, status_code, response_time_ms, dns_ms, tls_ms, ttfb_ms,
		body_bytes, regexp, regexp_matched, error_kind, error_message, checker FROM check_results WHERE event_id = 'a'`).
		Scan(&url, &scheduled, &checked, &outcome, &status, &rt, &dns, &tls, &ttfb, &body, &re, &matched, &kind, &msg, &checker)
	if err != nil {
		t.Fatal(err)
	}
	if url != "https://example.com/" || outcome != "up" || status != 200 || checker != "checker-1" || body != 1256 {
		t.Errorf("row a = %s %s %d %s %d", url, outcome, status, checker, body)
	}
	if scheduled != "2024-05-01T12:00:00.000000000Z" || checked != "2024-05-01T12:00:00.003000000Z" {
		t.Errorf("timestamps = %q, %q", scheduled, checked)
	}
	if rt.Float64 != 12.5 || dns.Float64 != 1.25 || tls.Valid || ttfb.Float64 != 10 {
		t.Errorf("timings = %v %v %v %v", rt, dns, tls, ttfb)
	}
	if re.String != "Example" || !matched.Valid || !matched.Bool || kind.Valid || msg.Valid {
		t.Errorf("regexp/error = %v %v %v %v", re, matched, kind, msg)
	}
	err = s.DB().QueryRow(`SELECT status_code, response_time_ms, regexp_matched, error_kind, error_message FROM check_results WHERE event_id = 'b'`).
		Scan(&status, &rt, &matched, &kind, &msg)
	if err != nil {
		t.Fatal(err)
	}
	if status != 0 || rt.Valid || matched.Valid || kind.String != "connect" || msg.String != "connection refused" {
		t.Errorf("row b = %d %v %v %v %v", status, rt, matched, kind, msg)
	}
}

func TestWriteResultsRejectsInvalidRowsAndWritesTheRest(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	badOutcome := upResult("bad-outcome", t0)
	badOutcome.Outcome = "sideways"
	badURL := upResult("bad-url", t0)
	badURL.URL = "ftp://example.com/"
	upWithError := upResult("up-with-error", t0)
	upWithError.ErrorKind = ptr(codecs.ErrOther)
	farFuture := upResult("far-future", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC))
	batch := []*codecs.Result{upResult("ok-1", t0), badOutcome, badURL, upResult("ok-2", t0), upWithError, farFuture}

	rej, err := s.WriteResults(ctx, batch)
	if err != nil {
		t.Fatalf("WriteResults: %v", err)
	}
	wantIdx := map[int]string{1: "check_results_outcome_valid", 2: "check_results_url_http", 4: "check_results_error_kind_iff_down", 5: "check_results_scheduled_at_format"}
	if len(rej) != len(wantIdx) {
		t.Fatalf("rejected = %+v, want indexes %v", rej, wantIdx)
	}
	for _, r := range rej {
		want, ok := wantIdx[r.Index]
		if !ok || !strings.Contains(r.Reason, want) {
			t.Errorf("rejected %+v: want index in %v with a reason naming %q", r, wantIdx, want)
		}
	}
	if n := count(t, s.DB(), "SELECT count(*) FROM check_results"); n != 2 {
		t.Fatalf("rows = %d, want the 2 valid ones", n)
	}
	if n := count(t, s.DB(), "SELECT count(*) FROM check_results WHERE event_id IN ('ok-1', 'ok-2')"); n != 2 {
		t.Fatalf("valid rows = %d, want 2", n)
	}
}

func TestTimestampsSortAsTime(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	// RFC3339Nano would write "…:00Z" and "…:00.5Z", which sort the wrong
	// way round as text.
	late := upResult("late", t0.Add(500*time.Millisecond))
	early := upResult("early", t0)
	other := upResult("other-zone", t0.Add(250*time.Millisecond).In(time.FixedZone("X", 2*3600)))
	if _, err := s.WriteResults(ctx, []*codecs.Result{late, early, other}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.DB().Query("SELECT event_id FROM check_results ORDER BY scheduled_at")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if strings.Join(got, ",") != "early,other-zone,late" {
		t.Fatalf("order by scheduled_at = %v", got)
	}
}

func window(url string, start time.Time, rev, checks, failures int64) *codecs.Window {
	return &codecs.Window{
		V: 1, URL: url, WindowStart: start, WindowEnd: start.Add(5 * time.Minute),
		Checks: checks, Failures: failures, Responses: checks - failures,
		ResponseMinMS: ptr(10.0), ResponseAvgMS: ptr(20.0), ResponseMaxMS: ptr(40.0),
		ResponseP50MS: ptr(19.0), ResponseP95MS: ptr(38.0), ResponseP99MS: ptr(40.0),
		StatusCounts: map[string]int64{"200": checks - failures, "0": failures},
		Revision:     rev,
	}
}

func TestWriteWindowsKeepsHighestRevision(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := "https://example.com/"
	write := func(ws ...*codecs.Window) {
		t.Helper()
		rej, err := s.WriteWindows(ctx, ws)
		if err != nil || len(rej) != 0 {
			t.Fatalf("WriteWindows = %v, %v", rej, err)
		}
	}
	read := func() (rev, checks int64, counts map[string]int64) {
		t.Helper()
		var js string
		err := s.DB().QueryRow("SELECT revision, checks, status_counts FROM check_windows WHERE url = ? AND window_start = ?",
			u, "2024-05-01T12:00:00.000000000Z").Scan(&rev, &checks, &js)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(js), &counts); err != nil {
			t.Fatalf("status_counts %q: %v", js, err)
		}
		return rev, checks, counts
	}

	write(window(u, t0, 2, 5, 1))
	write(window(u, t0, 1, 3, 0)) // an older emission delivered late
	if rev, checks, _ := read(); rev != 2 || checks != 5 {
		t.Fatalf("after older revision: revision %d checks %d, want 2 and 5", rev, checks)
	}
	write(window(u, t0, 3, 6, 2))
	rev, checks, counts := read()
	if rev != 3 || checks != 6 || counts["200"] != 4 || counts["0"] != 2 {
		t.Fatalf("after newer revision: revision %d checks %d counts %v", rev, checks, counts)
	}
	write(window(u, t0.Add(5*time.Minute), 0, 1, 0), window("https://other.example/", t0, 0, 1, 1))
	if n := count(t, s.DB(), "SELECT count(*) FROM check_windows"); n != 3 {
		t.Fatalf("windows = %d, want 3", n)
	}
}

func TestWriteWindowsRejectsInvalidRows(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	tooManyFailures := window("https://example.com/", t0, 0, 2, 3)
	endBeforeStart := window("https://example.com/", t0.Add(time.Hour), 0, 1, 0)
	endBeforeStart.WindowEnd = endBeforeStart.WindowStart.Add(-time.Minute)
	rej, err := s.WriteWindows(ctx, []*codecs.Window{tooManyFailures, window("https://example.com/", t0.Add(5*time.Minute), 0, 1, 0), endBeforeStart})
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 2 || rej[0].Index != 0 || rej[1].Index != 2 || !strings.Contains(rej[0].Reason, "check_windows_failures_range") || !strings.Contains(rej[1].Reason, "check_windows_end_after_start") {
		t.Fatalf("rejected = %+v, want indexes 0 and 2", rej)
	}
	if n := count(t, s.DB(), "SELECT count(*) FROM check_windows"); n != 1 {
		t.Fatalf("windows = %d, want 1", n)
	}
}

func TestUptimeViews(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := "https://example.com/"
	ws := []*codecs.Window{
		window(u, t0, 0, 10, 0),                             // 12:00
		window(u, t0.Add(5*time.Minute), 0, 10, 5),          // 12:05
		window(u, t0.Add(time.Hour), 0, 4, 1),               // 13:00
		window(u, t0.Add(time.Hour+5*time.Minute), 0, 0, 0), // a silent window
	}
	ws[1].ResponseAvgMS = ptr(50.0) // 5 responses at 50 vs 10 at 20 → 30 weighted
	if _, err := s.WriteWindows(ctx, ws); err != nil {
		t.Fatal(err)
	}
	var (
		checks, failures int
		uptime, avg      float64
	)
	err := s.DB().QueryRow("SELECT checks, failures, uptime_percent, response_avg_ms FROM uptime_hourly WHERE url = ? AND hour = '2024-05-01T12:00:00.000000000Z'", u).
		Scan(&checks, &failures, &uptime, &avg)
	if err != nil {
		t.Fatal(err)
	}
	if checks != 20 || failures != 5 || uptime != 75 || avg != 30 {
		t.Errorf("uptime_hourly 12:00 = %d %d %v %v, want 20 5 75 30", checks, failures, uptime, avg)
	}
	var windows, responses int
	var minMS, p95Max float64
	err = s.DB().QueryRow("SELECT windows, responses, response_min_ms, response_p95_max_ms FROM uptime_hourly WHERE url = ? AND hour = '2024-05-01T12:00:00.000000000Z'", u).
		Scan(&windows, &responses, &minMS, &p95Max)
	if err != nil || windows != 2 || responses != 15 || minMS != 10 || p95Max != 38 {
		t.Errorf("uptime_hourly 12:00 = windows %d responses %d min %v p95 max %v (%v), want 2 15 10 38", windows, responses, minMS, p95Max, err)
	}
	err = s.DB().QueryRow("SELECT checks, failures, uptime_percent FROM uptime_daily WHERE url = ? AND day = '2024-05-01T00:00:00.000000000Z'", u).
		Scan(&checks, &failures, &uptime)
	if err != nil {
		t.Fatal(err)
	}
	if checks != 24 || failures != 6 || uptime != 75 {
		t.Errorf("uptime_daily = %d %d %v, want 24 6 75", checks, failures, uptime)
	}
	// An hour with no checks at all has no uptime rather than an error.
	if _, err := s.WriteWindows(ctx, []*codecs.Window{window(u, t0.Add(2*time.Hour), 0, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	var none sql.NullFloat64
	if err := s.DB().QueryRow("SELECT uptime_percent FROM uptime_hourly WHERE hour = '2024-05-01T14:00:00.000000000Z'").Scan(&none); err != nil || none.Valid {
		t.Errorf("uptime of an hour without checks = %v, %v; want NULL", none, err)
	}
}

func TestWriteFailsWhenCancelled(t *testing.T) {
	s, _ := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WriteResults(ctx, []*codecs.Result{upResult("a", t0)}); err == nil {
		t.Fatal("WriteResults with a cancelled context succeeded")
	}
	if n := count(t, s.DB(), "SELECT count(*) FROM check_results"); n != 0 {
		t.Fatalf("rows = %d after a failed write, want 0", n)
	}
}

func TestEmptyBatches(t *testing.T) {
	s, _ := openStore(t)
	if rej, err := s.WriteResults(context.Background(), nil); err != nil || rej != nil {
		t.Fatalf("WriteResults(nil) = %v, %v", rej, err)
	}
	if rej, err := s.WriteWindows(context.Background(), nil); err != nil || rej != nil {
		t.Fatalf("WriteWindows(nil) = %v, %v", rej, err)
	}
}

var _ sinks.Store = (*sqlite.Store)(nil)

// percentileCont is PostgreSQL's percentile_cont over sorted values.
func percentileCont(sorted []float64, p float64) float64 {
	pos := p * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + (pos-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// TestLatencyAndRecomputedViews checks the views that SQLite has no
// percentile_cont for against percentiles computed in Go, and the
// reference windows against what the checks say.
func TestLatencyAndRecomputedViews(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := "https://example.com/"
	start := time.Date(2024, 5, 1, 12, 5, 0, 0, time.UTC) // a window boundary
	var rs []*codecs.Result
	var times []float64
	for i := range 23 {
		r := upResult(fmt.Sprintf("w-%d", i), start.Add(time.Duration(i)*10*time.Second))
		ms := float64((i*37)%101) + 0.25
		r.ResponseTimeMS = &ms
		times = append(times, ms)
		if i%5 == 0 {
			r.RegexpMatched = ptr(false)
			r.Outcome, r.ErrorKind = codecs.OutcomeDown, ptr(codecs.ErrRegexp)
		}
		rs = append(rs, r)
	}
	for i := range 3 { // no response: counted as checks, not in latencies
		r := downResult(fmt.Sprintf("nr-%d", i), start.Add(time.Duration(i)*time.Second))
		r.URL = u
		rs = append(rs, r)
	}
	// The next window, and another hour, to check grouping.
	rs = append(rs, upResult("next", start.Add(5*time.Minute)), upResult("later", start.Add(2*time.Hour)))
	rs = append(rs, downResult("no-response-only", start)) // https://down.example/
	if _, err := s.WriteResults(ctx, rs); err != nil {
		t.Fatal(err)
	}
	slices.Sort(times)

	var (
		checks, failures, responses, regexpFailures int
		p50, p95, p99, minMS, maxMS                 float64
		windowEnd, counts                           string
	)
	err := s.DB().QueryRow(`SELECT window_end, checks, failures, responses, response_min_ms, response_max_ms,
		response_p50_ms, response_p95_ms, response_p99_ms, status_counts, regexp_failures
		FROM check_windows_recomputed WHERE url = ? AND window_start = ?`, u, "2024-05-01T12:05:00.000000000Z").
		Scan(&windowEnd, &checks, &failures, &responses, &minMS, &maxMS, &p50, &p95, &p99, &counts, &regexpFailures)
	if err != nil {
		t.Fatal(err)
	}
	if windowEnd != "2024-05-01T12:10:00.000000000Z" || checks != 26 || failures != 8 || responses != 23 || regexpFailures != 5 {
		t.Errorf("recomputed window = end %s checks %d failures %d responses %d regexp_failures %d; want 12:10, 26, 8, 23, 5",
			windowEnd, checks, failures, responses, regexpFailures)
	}
	var gotCounts map[string]int64
	if err := json.Unmarshal([]byte(counts), &gotCounts); err != nil || gotCounts["200"] != 23 || gotCounts["0"] != 3 || len(gotCounts) != 2 {
		t.Errorf("status_counts = %s (%v), want {\"0\":3,\"200\":23}", counts, err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"min", minMS, times[0]}, {"max", maxMS, times[len(times)-1]},
		{"p50", p50, percentileCont(times, 0.50)}, {"p95", p95, percentileCont(times, 0.95)}, {"p99", p99, percentileCont(times, 0.99)},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("recomputed %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := count(t, s.DB(), "SELECT count(*) FROM check_windows_recomputed"); n != 4 {
		t.Errorf("recomputed windows = %d, want 4", n)
	}

	// The hour holds the window above plus the "next" check (12.5 ms).
	hourTimes := slices.Sorted(slices.Values(append(slices.Clone(times), 12.5)))
	var uptime float64
	err = s.DB().QueryRow(`SELECT checks, failures, uptime_percent, responses, response_p50_ms, response_p95_ms, response_p99_ms
		FROM latency_hourly WHERE url = ? AND hour = '2024-05-01T12:00:00.000000000Z'`, u).
		Scan(&checks, &failures, &uptime, &responses, &p50, &p95, &p99)
	if err != nil {
		t.Fatal(err)
	}
	if checks != 27 || failures != 8 || responses != 24 || math.Abs(uptime-70.370) > 1e-9 {
		t.Errorf("latency_hourly = checks %d failures %d uptime %v responses %d; want 27, 8, 70.370, 24", checks, failures, uptime, responses)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", p50, percentileCont(hourTimes, 0.50)}, {"p95", p95, percentileCont(hourTimes, 0.95)}, {"p99", p99, percentileCont(hourTimes, 0.99)}} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("latency_hourly %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := count(t, s.DB(), "SELECT count(*) FROM latency_daily WHERE url = ? AND day = '2024-05-01T00:00:00.000000000Z' AND checks = 28", u); n != 1 {
		t.Errorf("latency_daily has no row with the day's 28 checks")
	}
	// A period whose checks all lack a response has no percentiles.
	var none sql.NullFloat64
	if err := s.DB().QueryRow(`SELECT response_p50_ms FROM latency_hourly WHERE url = 'https://down.example/'`).Scan(&none); err != nil || none.Valid {
		t.Errorf("p50 without responses = %v, %v; want NULL", none, err)
	}
}

// TestSchemaMatchesPostgres pins the column names shared with the
// PostgreSQL schema, so that queries and tools work on both stores.
func TestSchemaMatchesPostgres(t *testing.T) {
	s, _ := openStore(t)
	for name, want := range map[string]string{
		"check_results":             "event_id url scheduled_at checked_at outcome status_code response_time_ms dns_ms connect_ms tls_ms ttfb_ms transfer_ms body_bytes regexp regexp_matched error_kind error_message checker tls_not_after region",
		"incidents":                 "url started_at ended_at cause_kind cause_message failed_checks down_change_id up_change_id",
		"incidents_open":            "url started_at cause_kind cause_message failed_checks down_change_id",
		"check_windows":             "url window_start window_end checks failures responses response_min_ms response_avg_ms response_max_ms response_p50_ms response_p95_ms response_p99_ms status_counts regexp_failures revision percentiles_exact region",
		"uptime_hourly":             "url hour windows checks failures uptime_percent responses response_min_ms response_avg_ms response_p95_max_ms response_max_ms",
		"uptime_daily":              "url day windows checks failures uptime_percent responses response_min_ms response_avg_ms response_p95_max_ms response_max_ms",
		"latency_hourly":            "url hour checks failures uptime_percent responses response_min_ms response_avg_ms response_p50_ms response_p95_ms response_p99_ms response_max_ms",
		"latency_daily":             "url day checks failures uptime_percent responses response_min_ms response_avg_ms response_p50_ms response_p95_ms response_p99_ms response_max_ms",
		"check_windows_recomputed":  "url region window_start window_end checks failures responses response_min_ms response_avg_ms response_max_ms response_p50_ms response_p95_ms response_p99_ms status_counts regexp_failures",
		"check_windows_all_regions": "url window_start window_end regions checks failures responses response_min_ms response_avg_ms response_max_ms worst_p50_ms worst_p95_ms worst_p99_ms worst_region status_counts regexp_failures",
	} {
		rows, err := s.DB().Query("SELECT name FROM pragma_table_info(?)", name)
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, c)
		}
		rows.Close()
		if got := strings.Join(cols, " "); got != want {
			t.Errorf("%s columns:\n got %s\nwant %s", name, got, want)
		}
	}
}
