package dashboard

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Layout is how Render fits the table on the screen.
type Layout struct {
	// Width and Height are the terminal's size in cells; zero or less
	// means unlimited (no truncation, every row).
	Width, Height int
	// Title is the first line or lines (what is running, where Kafka
	// is); each line is cut at its end to the width.
	Title string
	// Paths are shown under the title as "label: path", on one line when
	// they fit, else one per line with each path shortened from its start
	// (the end of a path is the part that tells it apart).
	Paths []Path
	// Grace, when positive, adds a line saying when the current window
	// is stored and when it is final (its end plus Grace): a new user
	// otherwise finds check_windows empty and wonders why.
	Grace time.Duration
	// Color marks down sites red and up sites green with ANSI escapes.
	Color bool
	// Empty is shown instead of the table while there is no site: how
	// to add one.
	Empty string
}

// Path is a labelled file or directory in the table's header.
type Path struct{ Label, Path string }

// columns are the fixed columns' widths and headers; the site and
// last-failure columns share the rest of the width.
type columns struct {
	status, code, resp, age, uptime, p95 int
	gap                                  string
	headers                              [6]string
}

var (
	// wideColumns, when the terminal has room (or no width is known).
	wideColumns = columns{7, 4, 8, 6, 7, 8, "  ", [6]string{"STATUS", "CODE", "RESP ms", "AGE", "UP%", "P95 ms"}}
	// narrowColumns, below narrowBelow cells: single gaps and the
	// narrowest widths the values fit in, so that at 80 columns the
	// reason of the last failure still reads.
	narrowColumns = columns{4, 4, 5, 4, 5, 5, " ", [6]string{"STAT", "CODE", "RESP", "AGE", "UP%", "P95"}}
)

const (
	narrowBelow = 120
	minSite     = 10
	minFailure  = 12
)

// fixed is the width of the fixed columns and the gaps between all eight.
func (c columns) fixed() int {
	return c.status + c.code + c.resp + c.age + c.uptime + c.p95 + 7*len(c.gap)
}

const (
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiDim   = "\x1b[2m"
	ansiReset = "\x1b[0m"
)

// Render draws the snapshot as a fixed-width table: a title line, a
// summary line, the header and one line per site, down sites first, then
// the others in the board's order. Rows that do not fit in the height are
// left out and counted in a last line. Render has no side effects: the
// same snapshot and layout always give the same text.
func Render(s Snapshot, l Layout) string {
	rows := slices.Clone(s.Rows)
	// Down sites first, so that with a thousand sites the broken ones are
	// on screen; the stable sort keeps the board's order otherwise.
	slices.SortStableFunc(rows, func(a, b Row) int { return rank(a) - rank(b) })

	up, down, pending := 0, 0, 0
	for _, r := range rows {
		switch {
		case !r.Checked:
			pending++
		case r.Up:
			up++
		default:
			down++
		}
	}

	var b strings.Builder
	line := func(s string) {
		if l.Width > 0 {
			s = truncEnd(s, l.Width)
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	head := 0 // lines above the summary
	if l.Title != "" {
		for _, t := range strings.Split(l.Title, "\n") {
			line(t)
			head++
		}
	}
	for _, p := range pathLines(l.Paths, l.Width) {
		line(p)
		head++
	}
	if l.Grace > 0 && s.Window > 0 {
		line(windowNote(s.At, s.Window, l.Grace))
		head++
	}
	cols, narrow := wideColumns, l.Width > 0 && l.Width < narrowBelow
	if narrow {
		cols = narrowColumns
	}
	summary := fmt.Sprintf("%d sites: %d up, %d down", len(rows), up, down)
	if pending > 0 {
		summary += fmt.Sprintf(", %d not checked yet", pending)
	}
	summary += fmt.Sprintf(" · UP%% and P95 over the last %s", compactDuration(s.Window))
	if narrow {
		summary += ", times in ms"
	}
	summary += " · " + s.At.Format("15:04:05")
	line(summary)
	if len(rows) == 0 && l.Empty != "" {
		line(l.Empty)
	}

	failures := make([]string, len(rows))
	regions := make([]string, len(rows))
	regionsW := 0 // no REGIONS column while every site is checked from one region
	for i, r := range rows {
		failures[i] = failureText(r, s.At, narrow)
		regions[i] = regionsText(r)
		if r.Regions != nil {
			regionsW = max(regionsW, len("REGIONS"), utf8.RuneCountInString(regions[i]))
		}
	}
	if regionsW > 0 && l.Width > 0 {
		// At most a third of what the fixed columns leave: the site
		// and the reason of its last failure still read. At 80 columns
		// that is "eu:up us:DOWN"; longer lists are cut.
		regionsW = min(regionsW, max(len("REGIONS"), (l.Width-cols.fixed()-len(cols.gap))/3))
	}
	tableW := l.Width
	if tableW > 0 {
		tableW = max(tableW-regionsWidth(regionsW, cols), 1)
	}
	siteW, failW := columnWidths(rows, tableW, cols, failures)
	h := cols.headers
	line(formatLine(cols, siteW, regionsW, failW, "SITE", h[0], h[1], h[2], h[3], h[4], h[5], "REGIONS", "LAST FAILURE"))

	shown := len(rows)
	alertLines := 0
	if len(s.Alerts) > 0 {
		alertLines = 1 + len(s.Alerts) // a blank line, then one per change
	}
	if l.Height > 0 {
		// The header lines, summary, column header, and one line for
		// "… more", and the alerts.
		room := l.Height - head - 2 - alertLines
		if shown > room {
			shown = max(room-1, 0)
		}
	}
	for i, r := range rows[:shown] {
		status, code, resp, age := "-", "-", "-", "-"
		color := ansiDim
		if r.Checked {
			status, color = "up", ansiGreen
			if !r.Up {
				status, color = "DOWN", ansiRed
			}
			if r.StatusCode != 0 {
				code = fmt.Sprint(r.StatusCode)
			}
			if r.ResponseMS != nil {
				resp = formatMS(*r.ResponseMS, cols.resp)
			}
			age = compactDuration(s.At.Sub(r.CheckedAt))
			if narrow {
				age = shortDuration(s.At.Sub(r.CheckedAt))
			}
		}
		uptime := "-"
		if u, ok := r.Uptime(); ok {
			uptime = fmt.Sprintf("%.1f%%", u)
			if len(uptime) > cols.uptime {
				uptime = fmt.Sprintf("%.0f%%", u) // 100%
			}
		}
		p95 := "-"
		if r.P95MS != nil {
			p95 = formatMS(*r.P95MS, cols.p95)
		}
		failure := failures[i]
		text := formatLine(cols, siteW, regionsW, failW, r.Name, status, code, resp, age, uptime, p95, regions[i], failure)
		if l.Width > 0 {
			// Narrower than the fixed columns: cut the row.
			text = truncEnd(text, l.Width)
		}
		if l.Color {
			text = color + text + ansiReset
		}
		b.WriteString(text)
		b.WriteByte('\n')
	}
	if hidden := rows[shown:]; len(hidden) > 0 {
		hiddenDown := 0
		for _, r := range hidden {
			if r.Checked && !r.Up {
				hiddenDown++
			}
		}
		line(fmt.Sprintf("… %d more sites not shown (%d of them down); enlarge the terminal to see them", len(hidden), hiddenDown))
	}
	if alertLines > 0 {
		line("")
		for _, a := range s.Alerts {
			text := fmt.Sprintf("%s  %-13s  %s", a.At.In(s.At.Location()).Format("15:04:05"), alertLabel(a), oneLine(a.Name))
			if a.Detail != "" {
				text += " · " + oneLine(a.Detail)
			}
			if l.Width > 0 {
				text = truncEnd(text, l.Width)
			}
			if l.Color {
				color := ansiGreen
				if a.Kind == "down" || a.Kind == "cert_expiring" {
					color = ansiRed
				}
				text = color + text + ansiReset
			}
			b.WriteString(text)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// failureText is the last-failure column: how long ago and why (narrow:
// without "ago", which the reason needs more).
func failureText(r Row, at time.Time, narrow bool) string {
	if r.LastFailure.IsZero() {
		return "-"
	}
	f := compactDuration(at.Sub(r.LastFailure)) + " ago"
	if narrow {
		f = shortDuration(at.Sub(r.LastFailure))
	}
	if r.LastError != "" {
		f += " " + oneLine(r.LastError)
	}
	return f
}

// regionsText is the REGIONS column: each region's state from its
// newest check, "eu:up us:DOWN" (the STATUS column's words); "-" for a
// site checked from one region.
func regionsText(r Row) string {
	if r.Regions == nil {
		return "-"
	}
	parts := make([]string, len(r.Regions))
	for i, g := range r.Regions {
		state := "up"
		if !g.Up {
			state = "DOWN"
		}
		parts[i] = g.Region + ":" + state
	}
	return strings.Join(parts, " ")
}

// regionsWidth is what a REGIONS column of width w takes with its gap;
// with a width unknown (0 or less) nothing is taken from it.
func regionsWidth(w int, cols columns) int {
	if w == 0 {
		return 0
	}
	return w + len(cols.gap)
}

// alertLabel names a change the way the table's status column does.
func alertLabel(a Alert) string {
	switch a.Kind {
	case "down":
		return fmt.Sprintf("ALERT DOWN×%d", a.Consecutive)
	case "up":
		return "RESOLVED up"
	case "cert_expiring":
		return "CERT EXPIRING"
	case "cert_ok":
		return "CERT RENEWED"
	}
	return a.Kind
}

// rank orders rows: down, then not checked yet, then up.
func rank(r Row) int {
	switch {
	case r.Checked && !r.Up:
		return 0
	case !r.Checked:
		return 1
	}
	return 2
}

// columnWidths gives the site column the longest name, up to what the
// longest failure text leaves free but at least a share of the free width
// (about half when wide, a third when narrow, so that the failure reason
// keeps the most room), and the last-failure column what remains.
func columnWidths(rows []Row, width int, cols columns, failures []string) (site, failure int) {
	longest := len("SITE")
	for _, r := range rows {
		longest = max(longest, utf8.RuneCountInString(r.Name))
	}
	if width <= 0 {
		return longest, 0 // 0: no limit
	}
	longestFailure := len("LAST FAILURE")
	for _, f := range failures {
		longestFailure = max(longestFailure, utf8.RuneCountInString(f))
	}
	free := width - cols.fixed()
	share := free / 2
	if cols.gap == narrowColumns.gap {
		share = free / 3
	}
	site = min(longest, max(minSite, share, free-longestFailure))
	failure = max(minFailure, free-site)
	return site, failure
}

// formatLine lays out one line; a zero regions width leaves the REGIONS
// column out, a zero failure width the last column as it is. Names are
// cut at their end: the start of a name (or a URL's host) is what a
// reader scans for.
func formatLine(cols columns, siteW, regionsW, failW int, site, status, code, resp, age, uptime, p95, regions, failure string) string {
	var b strings.Builder
	if _, rest, isURL := strings.Cut(site, "://"); isURL && utf8.RuneCountInString(site) > siteW {
		site = rest // the scheme tells no two sites apart
	}
	b.WriteString(padRight(truncEnd(site, siteW), siteW))
	for _, c := range []struct {
		s     string
		w     int
		right bool
	}{{status, cols.status, false}, {code, cols.code, true}, {resp, cols.resp, true}, {age, cols.age, true}, {uptime, cols.uptime, true}, {p95, cols.p95, true}} {
		b.WriteString(cols.gap)
		s := truncEnd(c.s, c.w)
		if c.right {
			b.WriteString(padLeft(s, c.w))
		} else {
			b.WriteString(padRight(s, c.w))
		}
	}
	b.WriteString(cols.gap)
	if regionsW > 0 {
		b.WriteString(padRight(truncEnd(regions, regionsW), regionsW))
		b.WriteString(cols.gap)
	}
	if failW > 0 {
		failure = truncEnd(failure, failW)
	}
	b.WriteString(failure)
	return strings.TrimRight(b.String(), " ")
}

// formatMS writes milliseconds with one decimal when that fits in w cells,
// else rounded (a 12-second response still reads as 12346), else in
// seconds.
func formatMS(ms float64, w int) string {
	if s := fmt.Sprintf("%.1f", ms); len(s) <= w {
		return s
	}
	if s := fmt.Sprintf("%.0f", ms); len(s) <= w {
		return s
	}
	return fmt.Sprintf("%.0fs", ms/1000)
}

// shortDuration writes d in its largest unit only: 0s, 42s, 3m, 2h, 3d.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(max(d, 0).Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// pathLines lays out the header's paths: all on one line when they fit in
// width (or no width is known), else one per line, each path shortened
// from its start.
func pathLines(paths []Path, width int) []string {
	if len(paths) == 0 {
		return nil
	}
	parts := make([]string, len(paths))
	for i, p := range paths {
		parts[i] = p.Label + ": " + p.Path
	}
	if one := strings.Join(parts, " · "); width <= 0 || utf8.RuneCountInString(one) <= width {
		return []string{one}
	}
	for i, p := range paths {
		prefix := p.Label + ": "
		parts[i] = prefix + truncStart(p.Path, width-utf8.RuneCountInString(prefix))
	}
	return parts
}

// windowNote says when the window in progress at now is stored (as soon as
// a check after its end arrives) and when it is final (end plus grace;
// later checks are too late for it).
func windowNote(now time.Time, window, grace time.Duration) string {
	end := time.Unix(0, (now.UnixNano()/int64(window)+1)*int64(window)).In(now.Location())
	return fmt.Sprintf("window %s–%s stored after %s, final at %s (%s grace)",
		end.Add(-window).Format("15:04:05"), end.Format("15:04:05"), end.Format("15:04:05"),
		end.Add(grace).Format("15:04:05"), compactDuration(grace))
}

func padRight(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

func padLeft(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// truncEnd cuts s to w runes, marking the cut with an ellipsis.
func truncEnd(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	if w <= 1 {
		return string([]rune(s)[:max(w, 0)])
	}
	return strings.TrimRight(string([]rune(s)[:w-1]), " ") + "…"
}

// truncStart cuts s to w runes by removing its start, marking the cut
// with an ellipsis: for a path, the end tells it apart. The cut moves to
// the next slash when there is one, so that no directory name is halved.
func truncStart(s string, w int) string {
	rs := []rune(s)
	if len(rs) <= w {
		return s
	}
	if w <= 1 {
		return string(rs[len(rs)-max(w, 0):])
	}
	kept := string(rs[len(rs)-(w-1):])
	if i := strings.IndexByte(kept, '/'); i > 0 && i < len(kept)-1 {
		kept = kept[i:]
	}
	return "…" + kept
}

// oneLine folds an error message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// compactDuration writes d in at most two units: 850ms, 42s, 3m12s,
// 2h05m, 3d04h.
func compactDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		m := int(d / time.Minute)
		s := int((d % time.Minute) / time.Second)
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%02ds", m, s)
	case d < 24*time.Hour:
		h := int(d / time.Hour)
		return fmt.Sprintf("%dh%02dm", h, int((d%time.Hour)/time.Minute))
	}
	days := int(d / (24 * time.Hour))
	return fmt.Sprintf("%dd%02dh", days, int((d%(24*time.Hour))/time.Hour))
}
