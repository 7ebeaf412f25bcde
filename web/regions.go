package web

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

// A site checked from several regions (docs/CONTRACT.md, Regions) shows
// each region's view side by side: its latest check, and its uptime and
// p95 over its own windows of the last 24 h. The site's own figures
// (state, uptime, p95) stay those of every region together.

// regionView is one region's view of a site.
type regionView struct {
	Region string
	// Latest is the region's newest check in the last 24 h; nil when
	// none is known.
	Latest *history.RegionCheck
	// Counts sums the region's windows of the last 24 h; P95SumMS as in
	// history.Counts (each window's p95 times its responses).
	Counts  history.Counts
	Windows []history.Window
}

// regionViews groups windows (ordered by start, then region) by region,
// ordered by region name.
func regionViews(ws []history.Window) []*regionView {
	by := map[string]*regionView{}
	var out []*regionView
	for _, w := range ws {
		v := by[w.Region]
		if v == nil {
			v = &regionView{Region: w.Region}
			by[w.Region] = v
			out = append(out, v)
		}
		c := history.Counts{Checks: w.Checks, Failures: w.Failures}
		if w.P95MS != nil && w.Responses > 0 {
			c.Responses, c.P95SumMS = w.Responses, *w.P95MS*float64(w.Responses)
		}
		v.Counts = v.Counts.Add(c)
		v.Windows = append(v.Windows, w)
	}
	slices.SortFunc(out, func(a, b *regionView) int { return strings.Compare(a.Region, b.Region) })
	return out
}

// setLatest attaches each region's latest check (RegionLatest's answer).
func setLatest(views []*regionView, latest []history.RegionCheck) {
	for i := range latest {
		for _, v := range views {
			if v.Region == latest[i].Region {
				v.Latest = &latest[i]
			}
		}
	}
}

// state is the region's state from its latest check alone (no incident:
// incidents are the site's, decided over every region), unknown when that
// check is older than the site's staleness limit.
func (v *regionView) state(st *site, now time.Time) string {
	l := v.Latest
	if l == nil || l.CheckedAt.IsZero() || now.Sub(l.CheckedAt) > st.staleAfter() {
		return StateUnknown
	}
	if l.Outcome == "down" {
		return StateDown
	}
	return StateUp
}

// regionRow is one region's line of the site page's regions table.
type regionRow struct {
	Region, State              string
	LastChecked, LastCheckedAt string
	Uptime24h, Class24h, P95   string
	Checks, Failures           int64
	LastError                  string
}

func makeRegionRows(views []*regionView, st *site, now time.Time) []regionRow {
	var out []regionRow
	for _, v := range views {
		r := regionRow{Region: v.Region, State: v.state(st, now), Uptime24h: pctText(v.Counts), Class24h: uptimeClass(v.Counts),
			P95: p95Text(v.Counts), Checks: v.Counts.Checks, Failures: v.Counts.Failures, LastChecked: "–"}
		if l := v.Latest; l != nil {
			r.LastChecked, r.LastCheckedAt = agoText(l.CheckedAt, now), timeText(l.CheckedAt)
			if l.Outcome == "down" {
				r.LastError = reasonText(&history.Failure{StatusCode: l.StatusCode, ErrorKind: l.ErrorKind, ErrorMessage: l.ErrorMessage})
			}
		}
		out = append(out, r)
	}
	return out
}

// apiRegion is one region's view in GET /api/v1/sites/{id}.
type apiRegion struct {
	Region           string     `json:"region"`
	State            string     `json:"state"`
	LastCheckedAt    *time.Time `json:"last_checked_at"`
	LastStatusCode   *int       `json:"last_status_code"`
	LastErrorKind    *string    `json:"last_error_kind"`
	LastErrorMessage *string    `json:"last_error_message"`
	Uptime24h        *float64   `json:"uptime_24h"`
	P9524hMS         *float64   `json:"p95_24h_ms"`
	Checks24h        int64      `json:"checks_24h"`
	Failures24h      int64      `json:"failures_24h"`
}

func toAPIRegions(views []*regionView, st *site, now time.Time) []apiRegion {
	out := make([]apiRegion, 0, len(views))
	for _, v := range views {
		a := apiRegion{Region: v.Region, State: v.state(st, now), Uptime24h: uptimePtr(v.Counts),
			Checks24h: v.Counts.Checks, Failures24h: v.Counts.Failures}
		if p, ok := v.Counts.P95(); ok {
			a.P9524hMS = &p
		}
		if l := v.Latest; l != nil {
			at, code := l.CheckedAt, l.StatusCode
			a.LastCheckedAt, a.LastStatusCode = &at, &code
			if l.Outcome == "down" {
				kind, msg := l.ErrorKind, l.ErrorMessage
				a.LastErrorKind, a.LastErrorMessage = &kind, &msg
			}
		}
		out = append(out, a)
	}
	return out
}

// regionChart draws each region's p95 per window, one line a region.
func regionChart(views []*regionView, from, to time.Time) *chart {
	ymax := 0.0
	for _, v := range views {
		for _, w := range v.Windows {
			if w.P95MS != nil {
				ymax = max(ymax, *w.P95MS)
			}
		}
	}
	ymax = niceCeil(ymax)
	c := newChart("regions", "p95 response time per five-minute window and region, last 24 h (UTC)", from, to, ymax)
	for i, v := range views {
		class := fmt.Sprintf("s-r%d", i%regionColors)
		se := lineSeries(c, v.Windows, from, to, ymax, v.Region, class, func(w history.Window) *float64 { return w.P95MS })
		c.Series = append(c.Series, se)
		c.Legend = append(c.Legend, legend{v.Region, class})
		c.Points += se.N
	}
	c.Empty = c.Points == 0
	return c
}

// regionColors is how many line colours the stylesheet has for regions
// (.s-r0 … .s-r5); more regions reuse them in turn.
const regionColors = 6
