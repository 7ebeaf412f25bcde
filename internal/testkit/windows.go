package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/processors/windows/hist"
)

// WindowRow is one row of check_windows or check_windows_recomputed.
type WindowRow struct {
	URL, Region                               string
	Start, End                                time.Time
	Checks, Failures, Responses, RegexpFailed int64
	Min, Avg, Max, P50, P95, P99              *float64
	StatusCounts                              map[string]int64
	// Revision is check_windows' revision; 0 for the SQL reference.
	Revision int64
	// Exact is check_windows' percentiles_exact; true for the SQL
	// reference, whose percentiles are percentile_cont.
	Exact bool
}

// String names the window: its URL, region and start.
func (w WindowRow) String() string {
	return w.URL + "[" + w.Region + "]@" + w.Start.UTC().Format(time.RFC3339)
}

const windowColumns = `url, region, window_start, window_end, checks, failures, responses, regexp_failures,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts::text`

// readWindows reads every row of check_windows or
// check_windows_recomputed, keyed by URL, region and window start; extra are the
// SQL expressions for the revision and percentiles_exact columns.
func readWindows(ctx context.Context, db *pgx.Conn, from, extra string) (map[string]WindowRow, error) {
	rows, err := db.Query(ctx, `SELECT `+windowColumns+`, `+extra+` FROM `+from)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", from, err)
	}
	out := map[string]WindowRow{}
	for rows.Next() {
		var w WindowRow
		var counts string
		if err := rows.Scan(&w.URL, &w.Region, &w.Start, &w.End, &w.Checks, &w.Failures, &w.Responses, &w.RegexpFailed,
			&w.Min, &w.Avg, &w.Max, &w.P50, &w.P95, &w.P99, &counts, &w.Revision, &w.Exact); err != nil {
			return nil, fmt.Errorf("scan %s: %w", from, err)
		}
		if err := json.Unmarshal([]byte(counts), &w.StatusCounts); err != nil {
			return nil, fmt.Errorf("status_counts %s: %w", counts, err)
		}
		out[w.URL+"|"+w.Region+"|"+w.Start.UTC().Format(time.RFC3339Nano)] = w
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", from, err)
	}
	return out, nil
}

// WindowDiff is one window where check_windows and SQL's reference differ.
type WindowDiff struct {
	Window WindowRow
	What   string
}

// WindowsComparison is the outcome of CompareWindows.
type WindowsComparison struct {
	// Diffs are the windows that differ, sorted by window.
	Diffs []WindowDiff
	// Compared counts the stored windows compared with SQL's.
	Compared int
	// Closed counts SQL's windows that had to be stored (closed, not
	// skipped).
	Closed int
}

// String lists the first eight differences, "" when there are none.
func (c WindowsComparison) String() string {
	var lines []string
	for _, d := range c.Diffs[:min(len(c.Diffs), 8)] {
		lines = append(lines, d.Window.String()+": "+d.What)
	}
	if len(c.Diffs) > 8 {
		lines = append(lines, fmt.Sprintf("… %d windows differ in all", len(c.Diffs)))
	}
	return strings.Join(lines, "\n")
}

// CompareWindows compares every row of check_windows with
// check_windows_recomputed, SQL's aggregation of check_results: every
// stored window must equal SQL's (see DiffWindow), and every window SQL
// has that ends by closedBefore must be stored. skip, when not nil, leaves
// windows out of both sides (a test's deliberately late or hand-written
// windows). Whether nothing compared is a failure is the caller's call:
// see Compared and Closed.
func CompareWindows(ctx context.Context, db *pgx.Conn, closedBefore time.Time, skip func(url string, start time.Time) bool) (WindowsComparison, error) {
	var c WindowsComparison
	got, err := readWindows(ctx, db, "check_windows", "revision, percentiles_exact")
	if err != nil {
		return c, err
	}
	want, err := readWindows(ctx, db, "check_windows_recomputed", "0::bigint, true")
	if err != nil {
		return c, err
	}
	if skip == nil {
		skip = func(string, time.Time) bool { return false }
	}
	for k, g := range got {
		if skip(g.URL, g.Start) {
			continue
		}
		w, ok := want[k]
		if !ok {
			c.Diffs = append(c.Diffs, WindowDiff{g, "in check_windows, but check_results has no check in it"})
			continue
		}
		c.Compared++
		if d := DiffWindow(g, w); d != "" {
			c.Diffs = append(c.Diffs, WindowDiff{g, fmt.Sprintf("revision %d: %s", g.Revision, d)})
		}
	}
	for k, w := range want {
		if skip(w.URL, w.Start) || w.End.After(closedBefore) {
			continue
		}
		c.Closed++
		if _, ok := got[k]; !ok {
			c.Diffs = append(c.Diffs, WindowDiff{w, fmt.Sprintf("closed window missing from check_windows (%d checks)", w.Checks)})
		}
	}
	slices.SortFunc(c.Diffs, func(a, b WindowDiff) int {
		if n := strings.Compare(a.Window.String(), b.Window.String()); n != 0 {
			return n
		}
		return strings.Compare(a.What, b.What)
	})
	return c, nil
}

// ExactPercentileTolerance is how far (in ms) a window's exact percentiles
// may be from percentile_cont over the same rows: the windows processor
// computes them with the same float8 operations, so they are equal but for
// rounding, and the contract promises 0.001 ms.
const ExactPercentileTolerance = 0.001

// DiffWindow compares a stored window with SQL's reference and returns
// what differs, "" when nothing does. Counts, window_end, status_counts,
// min and max must be equal; the mean within 1e-9 relative
// (floating-point summation order). The percentiles must be exact
// (percentiles_exact) up to codecs.MaxExactResponses responses and then
// equal percentile_cont within ExactPercentileTolerance; above the cap
// they are the sketch's, within its relative accuracy (1%) plus 1e-9
// relative for rounding.
//
// No extra slack is needed for percentile_cont's interpolation of sketched
// values: it mixes two order statistics, each estimated within 1%, and a
// convex combination of non-negative values each within 1% is within 1% of
// the exact combination.
func DiffWindow(got, ref WindowRow) string {
	var d []string
	for _, c := range []struct {
		name     string
		got, ref int64
	}{
		{"checks", got.Checks, ref.Checks},
		{"failures", got.Failures, ref.Failures},
		{"responses", got.Responses, ref.Responses},
		{"regexp_failures", got.RegexpFailed, ref.RegexpFailed},
	} {
		if c.got != c.ref {
			d = append(d, fmt.Sprintf("%s %d, want %d", c.name, c.got, c.ref))
		}
	}
	if !got.End.Equal(ref.End) {
		d = append(d, fmt.Sprintf("window_end %v, want %v", got.End, ref.End))
	}
	if !maps.Equal(got.StatusCounts, ref.StatusCounts) {
		d = append(d, fmt.Sprintf("status_counts %v, want %v", got.StatusCounts, ref.StatusCounts))
	}
	if !got.Exact && ref.Responses <= codecs.MaxExactResponses {
		d = append(d, fmt.Sprintf("percentiles_exact false with %d responses (exact up to %d)", ref.Responses, codecs.MaxExactResponses))
	}
	pctRel, pctAbs := hist.RelativeAccuracy+1e-9, 0.0
	if got.Exact {
		pctRel, pctAbs = 0, ExactPercentileTolerance
	}
	for _, f := range []struct {
		name     string
		got, ref *float64
		rel, abs float64
	}{
		{"response_min_ms", got.Min, ref.Min, 0, 0},
		{"response_max_ms", got.Max, ref.Max, 0, 0},
		{"response_avg_ms", got.Avg, ref.Avg, 1e-9, 0},
		{"response_p50_ms", got.P50, ref.P50, pctRel, pctAbs},
		{"response_p95_ms", got.P95, ref.P95, pctRel, pctAbs},
		{"response_p99_ms", got.P99, ref.P99, pctRel, pctAbs},
	} {
		switch tol := f.rel*math.Abs(*orZero(f.ref)) + f.abs; {
		case f.got == nil && f.ref == nil:
		case f.got == nil || f.ref == nil:
			d = append(d, fmt.Sprintf("%s %v, want %v", f.name, fmtPtr(f.got), fmtPtr(f.ref)))
		case math.Abs(*f.got-*f.ref) > tol:
			d = append(d, fmt.Sprintf("%s %v, want %v (±%g)", f.name, *f.got, *f.ref, tol))
		}
	}
	return strings.Join(d, "; ")
}

func orZero(p *float64) *float64 {
	if p == nil {
		return new(float64)
	}
	return p
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}
