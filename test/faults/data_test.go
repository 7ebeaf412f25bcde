package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/processors/windows/hist"
)

const windowSize = 5 * time.Minute

// windowStart is the start of the five-minute window holding t (aligned to
// the Unix epoch, as the processor and check_windows_recomputed cut them).
func windowStart(t time.Time) time.Time {
	return time.Unix(0, t.UnixNano()-((t.UnixNano()%int64(windowSize))+int64(windowSize))%int64(windowSize)).UTC()
}

// stream is a generated workload of results in production order.
type stream struct {
	events []*codecs.Result
	// closedBefore: every window ending at or before it is closed by a
	// later event of its URL and must be in check_windows.
	closedBefore time.Time
}

// genStream makes perURL results for each of urls URLs, one every 30 s of
// event time (random within its slot, nanosecond timestamps as the checker
// sends them) starting three hours ago, with every outcome the windows
// aggregate; then one later event per URL that closes the last real
// windows. Events are in event-time order across URLs, like a live feed.
func genStream(r *rand.Rand, tag string, urls, perURL int) *stream {
	base := time.Now().UTC().Truncate(windowSize).Add(-3 * time.Hour)
	s := &stream{}
	for i := range perURL {
		for u := range urls {
			at := base.Add(time.Duration(i)*30*time.Second + time.Duration(r.Int64N(int64(29*time.Second))))
			s.events = append(s.events, genResult(r, siteURL(tag, u), fmt.Sprintf("%s-%02d-%04d", tag, u, i), at))
		}
	}
	sort.SliceStable(s.events, func(i, j int) bool { return s.events[i].CheckedAt.Before(s.events[j].CheckedAt) })
	flush := base.Add(time.Duration(perURL)*30*time.Second + 10*time.Minute)
	s.closedBefore = windowStart(flush)
	for u := range urls {
		s.events = append(s.events, genResult(r, siteURL(tag, u), fmt.Sprintf("%s-%02d-flush", tag, u), flush.Add(time.Duration(u)*time.Second)))
	}
	return s
}

func siteURL(tag string, u int) string { return fmt.Sprintf("http://%s-%02d.test/", tag, u) }

func (s *stream) ids() map[string]bool {
	out := make(map[string]bool, len(s.events))
	for _, r := range s.events {
		out[r.EventID] = true
	}
	return out
}

// genResult makes one result at the given time with a random outcome.
func genResult(r *rand.Rand, site, id string, at time.Time) *codecs.Result {
	ms := func() *float64 {
		v := math.Round(math.Exp(3+r.NormFloat64())*1e3) / 1e3 // lognormal around 20 ms
		return &v
	}
	str := func(s string) *string { return &s }
	res := &codecs.Result{
		EventID: id, URL: site,
		ScheduledAt: at.Truncate(time.Second), CheckedAt: at,
		Outcome: codecs.OutcomeUp, StatusCode: 200,
		ResponseTimeMS: ms(), ConnectMS: ms(), TTFBMS: ms(),
		BodyBytes: r.Int64N(5000), Checker: "fault-suite",
	}
	switch p := r.IntN(100); {
	case p < 65:
	case p < 72:
		res.StatusCode = 301
	case p < 80:
		res.Outcome, res.StatusCode, res.ErrorKind = codecs.OutcomeDown, 503, str(codecs.ErrStatus)
	case p < 90:
		no := false
		res.Outcome, res.ErrorKind, res.Regexp, res.RegexpMatched = codecs.OutcomeDown, str(codecs.ErrRegexp), str("all good"), &no
	default:
		res.Outcome, res.StatusCode, res.ErrorKind = codecs.OutcomeDown, 0, str(codecs.ErrTimeout)
		res.ResponseTimeMS, res.TTFBMS, res.BodyBytes = nil, nil, 0
	}
	if res.ErrorKind != nil {
		res.ErrorMessage = str("failed: " + *res.ErrorKind)
	}
	return res
}

// storedCounts maps every event_id in check_results to its number of rows
// (-1 in the error when the table does not exist yet).
func storedCounts(ctx context.Context, db *pgx.Conn) (map[string]int, error) {
	rows, err := db.Query(ctx, `SELECT event_id, count(*) FROM check_results GROUP BY event_id`)
	if err != nil {
		return nil, fmt.Errorf("read check_results: %w", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// storedRows counts check_results, or -1 before the processor created it.
func storedRows(db *pgx.Conn) int {
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM check_results`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// exactlyOnce compares check_results with the events that must be in it,
// returning "" when each is there once and nothing else is.
func exactlyOnce(stored map[string]int, want map[string]bool) string {
	var missing, doubled, unexpected []string
	for id := range want {
		switch stored[id] {
		case 1:
		case 0:
			missing = append(missing, id)
		default:
			doubled = append(doubled, id)
		}
	}
	for id := range stored {
		if !want[id] {
			unexpected = append(unexpected, id)
		}
	}
	if len(missing)+len(doubled)+len(unexpected) == 0 {
		return ""
	}
	return fmt.Sprintf("check_results has %d distinct events, want %d: missing %d %v, doubled %d %v, unexpected %d %v",
		len(stored), len(want), len(missing), head(missing), len(doubled), head(doubled), len(unexpected), head(unexpected))
}

func duplicates(stored map[string]int) int {
	n := 0
	for _, c := range stored {
		n += c - 1
	}
	return n
}

func head(s []string) []string {
	slices.Sort(s)
	if len(s) > 5 {
		return append(s[:5:5], "…")
	}
	return s
}

// windowRow is one row of check_windows or check_windows_recomputed.
type windowRow struct {
	url                             string
	start, end                      time.Time
	checks, failures, responses, re int64
	min, avg, max, p50, p95, p99    *float64
	statusCounts                    map[string]int64
}

func (w windowRow) key() string { return w.url + "@" + w.start.UTC().Format(time.RFC3339) }

const windowColumns = `url, window_start, window_end, checks, failures, responses, regexp_failures,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts::text`

func readWindows(ctx context.Context, db *pgx.Conn, from string) (map[string]windowRow, error) {
	rows, err := db.Query(ctx, `SELECT `+windowColumns+` FROM `+from)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", from, err)
	}
	out := map[string]windowRow{}
	for rows.Next() {
		var w windowRow
		var counts string
		if err := rows.Scan(&w.url, &w.start, &w.end, &w.checks, &w.failures, &w.responses, &w.re,
			&w.min, &w.avg, &w.max, &w.p50, &w.p95, &w.p99, &counts); err != nil {
			return nil, fmt.Errorf("scan %s: %w", from, err)
		}
		if err := json.Unmarshal([]byte(counts), &w.statusCounts); err != nil {
			return nil, fmt.Errorf("status_counts %s: %w", counts, err)
		}
		out[w.key()] = w
	}
	return out, rows.Err()
}

// windowsCheck compares check_windows with check_windows_recomputed (SQL's
// aggregation of check_results): every stored window must equal SQL's, and
// every window SQL has that ends by closedBefore must be stored. skip
// leaves windows out of both sides (a test's deliberately late event). It
// returns "" when they agree and the number of windows compared.
//
// Counts, status_counts, min and max must be equal; the mean within 1e-9
// relative (floating-point summation order); each percentile within the
// histogram's relative accuracy (1%) of percentile_cont, plus 1e-9 for
// rounding. No extra slack is needed for percentile_cont's interpolation:
// it mixes two order statistics, each estimated within 1%, and a convex
// combination of non-negative values each within 1% is within 1% too.
func windowsCheck(ctx context.Context, db *pgx.Conn, closedBefore time.Time, skip func(url string, start time.Time) bool) (string, int, error) {
	got, err := readWindows(ctx, db, "check_windows")
	if err != nil {
		return "", 0, err
	}
	want, err := readWindows(ctx, db, "check_windows_recomputed")
	if err != nil {
		return "", 0, err
	}
	if skip == nil {
		skip = func(string, time.Time) bool { return false }
	}
	var diffs []string
	compared := 0
	for k, g := range got {
		if skip(g.url, g.start) {
			continue
		}
		w, ok := want[k]
		if !ok {
			diffs = append(diffs, k+": in check_windows, but check_results has no check in it")
			continue
		}
		compared++
		if d := diffWindow(g, w); d != "" {
			diffs = append(diffs, k+": "+d)
		}
	}
	for k, w := range want {
		if skip(w.url, w.start) || w.end.After(closedBefore) {
			continue
		}
		if _, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: closed window missing from check_windows (%d checks)", k, w.checks))
		}
	}
	if compared == 0 {
		diffs = append(diffs, "no window in check_windows to compare")
	}
	slices.Sort(diffs)
	if len(diffs) > 8 {
		diffs = append(diffs[:8:8], fmt.Sprintf("… %d differences in all", len(diffs)))
	}
	return strings.Join(diffs, "\n"), compared, nil
}

func diffWindow(g, w windowRow) string {
	var d []string
	for _, c := range []struct {
		name     string
		got, ref int64
	}{{"checks", g.checks, w.checks}, {"failures", g.failures, w.failures}, {"responses", g.responses, w.responses}, {"regexp_failures", g.re, w.re}} {
		if c.got != c.ref {
			d = append(d, fmt.Sprintf("%s %d, want %d", c.name, c.got, c.ref))
		}
	}
	if !g.end.Equal(w.end) {
		d = append(d, fmt.Sprintf("window_end %v, want %v", g.end, w.end))
	}
	if fmt.Sprint(g.statusCounts) != fmt.Sprint(w.statusCounts) {
		d = append(d, fmt.Sprintf("status_counts %v, want %v", g.statusCounts, w.statusCounts))
	}
	for _, f := range []struct {
		name     string
		got, ref *float64
		tol      float64
	}{
		{"response_min_ms", g.min, w.min, 0},
		{"response_max_ms", g.max, w.max, 0},
		{"response_avg_ms", g.avg, w.avg, 1e-9},
		{"response_p50_ms", g.p50, w.p50, hist.RelativeAccuracy + 1e-9},
		{"response_p95_ms", g.p95, w.p95, hist.RelativeAccuracy + 1e-9},
		{"response_p99_ms", g.p99, w.p99, hist.RelativeAccuracy + 1e-9},
	} {
		switch {
		case f.got == nil && f.ref == nil:
		case f.got == nil || f.ref == nil:
			d = append(d, fmt.Sprintf("%s %v, want %v", f.name, fmtPtr(f.got), fmtPtr(f.ref)))
		case math.Abs(*f.got-*f.ref) > f.tol*math.Abs(*f.ref):
			d = append(d, fmt.Sprintf("%s %v, want %v (±%g relative)", f.name, *f.got, *f.ref, f.tol))
		}
	}
	return strings.Join(d, "; ")
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

// settle waits until check_results holds each wanted event exactly once
// and the closed windows equal SQL's, and returns how long it took. It
// fails the test after timeout with the last differences.
func settle(t *testing.T, db *pgx.Conn, want map[string]bool, closedBefore time.Time, skip func(string, time.Time) bool, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, "check_results and check_windows to match the events produced", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stored, err := storedCounts(ctx, db)
		if err != nil {
			return false, err.Error()
		}
		if d := exactlyOnce(stored, want); d != "" {
			return false, d
		}
		if closedBefore.IsZero() {
			return true, ""
		}
		d, _, err := windowsCheck(ctx, db, closedBefore, skip)
		if err != nil {
			return false, err.Error()
		}
		return d == "", d
	})
	return time.Since(start)
}

// sites is a set of local websites and a sites file checking them every
// second.
type sites struct {
	path string
	urls []string
	hits []*atomic.Int64
}

// newSites starts n websites answering 200 (every fifth one 503) and
// writes a sites file that checks each every interval.
func newSites(t *testing.T, n int, extraYAML string) *sites {
	t.Helper()
	s := &sites{}
	for i := range n {
		hits := new(atomic.Int64)
		status := http.StatusOK
		if i%5 == 4 {
			status = http.StatusServiceUnavailable
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			w.WriteHeader(status)
			fmt.Fprintf(w, "<html>site %d</html>", i)
		}))
		t.Cleanup(srv.Close)
		s.urls = append(s.urls, srv.URL+"/")
		s.hits = append(s.hits, hits)
	}
	s.path = filepath.Join(t.TempDir(), "sites.yaml")
	s.write(t, s.urls, extraYAML)
	return s
}

// write replaces the sites file with urls checked every second.
func (s *sites) write(t *testing.T, urls []string, extraYAML string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("defaults:\n  interval: 1s\n  timeout: 900ms\nsites:\n")
	for _, u := range urls {
		fmt.Fprintf(&b, "  - url: %s\n", u)
	}
	b.WriteString(extraYAML)
	if err := os.WriteFile(s.path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *sites) totalHits() int64 {
	var n int64
	for _, h := range s.hits {
		n += h.Load()
	}
	return n
}

// closeLiveWindows makes the windows of live (wall-clock) results closed:
// after the emitters stopped, one more event per URL ten minutes ahead
// moves each URL's watermark past every window so far (the processor caps
// it five minutes ahead of its clock). It returns the events sent and the
// end of the closed windows.
func closeLiveWindows(p *producer, urls []string) ([]*codecs.Result, time.Time) {
	at := time.Now().UTC().Add(10 * time.Minute)
	var out []*codecs.Result
	for i, u := range urls {
		r := &codecs.Result{
			EventID: fmt.Sprintf("flush-%d-%d", at.UnixNano(), i), URL: u,
			ScheduledAt: at.Truncate(time.Second), CheckedAt: at,
			Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "fault-suite",
		}
		out = append(out, r)
	}
	p.results(out...)
	return out, windowStart(at)
}
