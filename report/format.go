package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Formats of Write.
const (
	FormatTable = "table"
	FormatCSV   = "csv"
	FormatJSON  = "json"
)

// Formats lists the formats Write knows, for flag help and errors.
var Formats = []string{FormatTable, FormatCSV, FormatJSON}

// Write writes r in format (one of Formats).
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatTable:
		return WriteTable(w, r)
	case FormatCSV:
		return WriteCSV(w, r)
	case FormatJSON:
		return WriteJSON(w, r)
	}
	return &FieldError{Field: "format", Msg: fmt.Sprintf("%q: want %s", format, strings.Join(Formats, ", "))}
}

// WriteJSON writes r as indented JSON, the API's body.
func WriteJSON(w io.Writer, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// csvHeader is the CSV's first row; one row per site follows.
var csvHeader = []string{
	"url", "name", "interval", "interval_source",
	"checks", "failures", "uptime_checks_percent", "uptime_time_percent",
	"up_seconds", "down_seconds", "unknown_seconds",
	"responses", "p50_ms", "p95_ms", "p99_ms", "failures_by_kind",
	"incidents", "incidents_source", "down_periods", "longest_down_seconds",
	"slo_percent", "budget_allowed_seconds", "budget_left_seconds", "budget_left_percent",
	"from", "to",
}

// WriteCSV writes one row per site with every figure, with the JSON's
// names; an empty cell is a null. failures_by_kind reads kind=count;….
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	for _, s := range r.Sites {
		row := []string{
			s.URL, s.Name, s.Interval.String(), s.IntervalSource,
			itoa(s.Checks), itoa(s.Failures), ftoa(s.UptimeChecksPercent), ftoa(s.UptimeTimePercent),
			s.Up.String(), s.Down.String(), s.Unknown.String(),
			itoa(s.Responses), ftoa(s.P50MS), ftoa(s.P95MS), ftoa(s.P99MS), kindsCSV(s.FailuresByKind),
			itoa(s.Incidents), r.IncidentsSource, itoa(s.DownPeriods), s.LongestDown.String(),
			ftoa(r.SLOPercent), "", "", "",
			fmtTime(r.From), fmtTime(r.To),
		}
		if b := s.Budget; b != nil {
			row[21], row[22], row[23] = b.Allowed.String(), b.Left.String(), ftoa(b.LeftPercent)
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func ftoa(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

func kindsCSV(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+itoa(m[k]))
	}
	return strings.Join(parts, ";")
}

// nameWidth is the site column of the table: with the figures beside it,
// every line fits in 80 columns.
const nameWidth = 24

// WriteTable writes the report for a person at an 80-column terminal:
// three tables (uptime, latency, downtime) with a row per site each.
func WriteTable(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	head := fmt.Sprintf("Report %s to %s (%s), %d sites", fmtTime(r.From), fmtTime(r.To), human(time.Duration(r.Range)), len(r.Sites))
	if r.SLOPercent != nil {
		head += ", SLO " + strconv.FormatFloat(*r.SLOPercent, 'f', -1, 64) + "%"
	}
	ew.printf("%s\n", head)
	ew.printf("Unknown is time without checks (the monitor was not checking): not down.\n\n")

	ew.printf("%-*s %8s %7s %10s %9s %10s\n", nameWidth, "UPTIME", "CHECKS", "FAILED", "BY CHECKS", "BY TIME", "UNKNOWN")
	for _, s := range r.Sites {
		ew.printf("%s %8d %7d %10s %9s %10s\n", cell(s.Name), s.Checks, s.Failures,
			pct(s.UptimeChecksPercent), pct(s.UptimeTimePercent), human(time.Duration(s.Unknown)))
	}

	ew.printf("\n%-*s %8s %8s %8s  %s\n", nameWidth, "LATENCY (ms)", "P50", "P95", "P99", "FAILURES BY KIND")
	for _, s := range r.Sites {
		ew.printf("%s %8s %8s %8s  %s\n", cell(s.Name), ms(s.P50MS), ms(s.P95MS), ms(s.P99MS), kindsTable(s.FailuresByKind, 80-nameWidth-29))
	}

	ew.printf("\n%-*s %9s %8s %8s", nameWidth, "DOWNTIME", "INCIDENTS", "DOWN", "LONGEST")
	if r.SLOPercent != nil {
		ew.printf(" %8s %8s %8s", "ALLOWED", "LEFT", "LEFT %")
	}
	ew.printf("\n")
	for _, s := range r.Sites {
		ew.printf("%s %9d %8s %8s", cell(s.Name), s.Incidents, human(time.Duration(s.Down)), human(time.Duration(s.LongestDown)))
		if b := s.Budget; b != nil {
			ew.printf(" %8s %8s %8s", human(time.Duration(b.Allowed)), human(time.Duration(b.Left)), pct1(b.LeftPercent))
		}
		ew.printf("\n")
	}
	if r.IncidentsSource == IncidentsFromDownRun {
		ew.printf("Incidents are the down periods (no incidents table in this store).\n")
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

// cell fits a site name in the name column: control characters (a name
// from the store could carry terminal escapes) become '?', and a long name
// loses its middle, so that URLs that differ only at the end (one host,
// several paths) stay apart.
func cell(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, name)
	if r := []rune(name); len(r) > nameWidth {
		head := (nameWidth - 1) / 2
		name = string(r[:head]) + "…" + string(r[len(r)-(nameWidth-1-head):])
	}
	return name + strings.Repeat(" ", nameWidth-utf8.RuneCountInString(name))
}

// pct writes a percentage truncated (not rounded) to three decimals, so
// that 99.9996 % does not read as 100.000 %.
func pct(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(math.Trunc(*p*1000)/1000, 'f', 3, 64) + "%"
}

// pct1 writes a budget percentage in its 8 columns: one decimal, none
// from -1000 % down, and "<-9999%" for a budget overspent beyond that
// (CSV and JSON have the exact figure).
func pct1(p *float64) string {
	switch {
	case p == nil:
		return "-"
	case *p < -9999:
		return "<-9999%"
	case *p <= -1000:
		return strconv.FormatFloat(math.Trunc(*p), 'f', 0, 64) + "%"
	}
	return strconv.FormatFloat(math.Trunc(*p*10)/10, 'f', 1, 64) + "%"
}

func ms(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64)
}

func kindsTable(m map[string]int64, width int) string {
	kinds := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range kinds {
		parts = append(parts, k+" "+itoa(m[k]))
	}
	s := strings.Join(parts, ", ")
	if s == "" {
		return "-"
	}
	if utf8.RuneCountInString(s) > width {
		s = string([]rune(s)[:width-1]) + "…"
	}
	return s
}

// human writes a duration in at most two units, truncated, for the table:
// 0s, <0.01s, 0.48s, 59.5s, 4m30s, 2h5m, 3d4h.
func human(d time.Duration) string {
	if d < 0 {
		return "-" + human(-d)
	}
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "0s"
	case d < 10*time.Millisecond:
		return "<0.01s"
	case d < 10*time.Second:
		return strconv.FormatFloat(math.Trunc(d.Seconds()*100)/100, 'f', -1, 64) + "s"
	case d < time.Minute:
		return strconv.FormatFloat(math.Trunc(d.Seconds()*10)/10, 'f', -1, 64) + "s"
	case d < time.Hour:
		return two(d, time.Minute, "m", time.Second, "s")
	case d < day:
		return two(d, time.Hour, "h", time.Minute, "m")
	}
	return two(d, day, "d", time.Hour, "h")
}

func two(d, big time.Duration, bu string, small time.Duration, su string) string {
	b, s := d/big, (d%big)/small
	if s == 0 {
		return fmt.Sprintf("%d%s", b, bu)
	}
	return fmt.Sprintf("%d%s%d%s", b, bu, s, su)
}
