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
	// Title is the first line (what is running, where the logs go).
	Title string
	// Color marks down sites red and up sites green with ANSI escapes.
	Color bool
}

// Fixed column widths; the site and last-failure columns share the rest.
const (
	colStatus  = 7
	colCode    = 4
	colResp    = 8
	colAge     = 6
	colUptime  = 7
	colP95     = 8
	gap        = "  "
	minSite    = 12
	minFailure = 12
	// fixedWidth is every fixed column and the gaps between all eight.
	fixedWidth = colStatus + colCode + colResp + colAge + colUptime + colP95 + 7*len(gap)
)

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
	if l.Title != "" {
		line(l.Title)
	}
	summary := fmt.Sprintf("%d sites: %d up, %d down", len(rows), up, down)
	if pending > 0 {
		summary += fmt.Sprintf(", %d not checked yet", pending)
	}
	summary += fmt.Sprintf(" · UP%% and P95 over the last %s · %s", compactDuration(s.Window), s.At.Format("15:04:05"))
	line(summary)

	siteW, failW := columnWidths(rows, l.Width)
	line(formatLine(siteW, failW, "SITE", "STATUS", "CODE", "RESP ms", "AGE", "UP%", "P95 ms", "LAST FAILURE"))

	shown := len(rows)
	if l.Height > 0 {
		// Title, summary, header, and one line for "… more".
		room := l.Height - 3
		if l.Title == "" {
			room++
		}
		if shown > room {
			shown = max(room-1, 0)
		}
	}
	for _, r := range rows[:shown] {
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
				resp = fmt.Sprintf("%.1f", *r.ResponseMS)
			}
			age = compactDuration(s.At.Sub(r.CheckedAt))
		}
		uptime := "-"
		if u, ok := r.Uptime(); ok {
			uptime = fmt.Sprintf("%.1f%%", u)
		}
		p95 := "-"
		if r.P95MS != nil {
			p95 = fmt.Sprintf("%.1f", *r.P95MS)
		}
		failure := "-"
		if !r.LastFailure.IsZero() {
			failure = compactDuration(s.At.Sub(r.LastFailure)) + " ago"
			if r.LastError != "" {
				failure += " " + oneLine(r.LastError)
			}
		}
		text := formatLine(siteW, failW, r.Name, status, code, resp, age, uptime, p95, failure)
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
	return b.String()
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

// columnWidths gives the site column the longest name up to about half of
// the free width, and the last-failure column what remains.
func columnWidths(rows []Row, width int) (site, failure int) {
	longest := len("SITE")
	for _, r := range rows {
		longest = max(longest, utf8.RuneCountInString(r.Name))
	}
	if width <= 0 {
		return longest, 0 // 0: no limit
	}
	free := width - fixedWidth
	site = min(longest, max(minSite, free/2))
	failure = max(minFailure, free-site)
	return site, failure
}

// formatLine lays out one line; a zero failure width leaves the last
// column as it is.
func formatLine(siteW, failW int, site, status, code, resp, age, uptime, p95, failure string) string {
	var b strings.Builder
	b.WriteString(padRight(truncMiddle(site, siteW), siteW))
	for _, c := range []struct {
		s     string
		w     int
		right bool
	}{{status, colStatus, false}, {code, colCode, true}, {resp, colResp, true}, {age, colAge, true}, {uptime, colUptime, true}, {p95, colP95, true}} {
		b.WriteString(gap)
		s := truncEnd(c.s, c.w)
		if c.right {
			b.WriteString(padLeft(s, c.w))
		} else {
			b.WriteString(padRight(s, c.w))
		}
	}
	b.WriteString(gap)
	if failW > 0 {
		failure = truncEnd(failure, failW)
	}
	b.WriteString(failure)
	return strings.TrimRight(b.String(), " ")
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
	return string([]rune(s)[:w-1]) + "…"
}

// truncMiddle cuts s to w runes by removing its middle: for URLs both the
// host and the end of the path tell sites apart.
func truncMiddle(s string, w int) string {
	rs := []rune(s)
	if len(rs) <= w {
		return s
	}
	if w <= 1 {
		return string(rs[:max(w, 0)])
	}
	head := (w - 1) / 2
	tail := w - 1 - head
	return string(rs[:head]) + "…" + string(rs[len(rs)-tail:])
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
