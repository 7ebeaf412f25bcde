package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

// The charts and strips are drawn on the server as inline SVG (their SVG
// methods below).

// bar is one day of an uptime strip.
type bar struct {
	X      int
	Class  string
	Day    string
	Uptime string // percent, or "" without data
	Title  string
}

// strip is a daily uptime strip of StripDays bars ending today.
type strip struct {
	Bars  []bar
	Width int
}

const barStep = 4

func newStrip(days []history.Day, today time.Time) strip {
	byDay := make(map[time.Time]history.Counts, len(days))
	for _, d := range days {
		byDay[d.Day.UTC()] = byDay[d.Day.UTC()].Add(d.Counts)
	}
	s := strip{Width: StripDays * barStep}
	for i := range StripDays {
		day := today.AddDate(0, 0, i-StripDays+1)
		c := byDay[day]
		b := bar{X: i * barStep, Class: uptimeClass(c), Day: day.Format("2006-01-02")}
		if p, ok := c.Uptime(); ok {
			b.Uptime = pctNumber(p)
			b.Title = fmt.Sprintf("%s: %s %% up (%d checks, %d failed)", b.Day, b.Uptime, c.Checks, c.Failures)
		} else {
			b.Title = b.Day + ": no data"
		}
		s.Bars = append(s.Bars, b)
	}
	return s
}

// Chart geometry (viewBox units; the SVG scales to the page's width).
const (
	chartW, chartH                 = 720, 200
	padL, padR, padT, padB float64 = 48, 8, 10, 22
)

type tick struct {
	Pos   float64
	Label string
}

type polyline struct {
	Points string
	N      int
}

type series struct {
	Name, Class string
	Lines       []polyline
	N           int
}

type rect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// chart is a time chart over [from, to): line series or stacked bars.
type chart struct {
	ID           string
	Title        string
	W, H         int
	PlotL, PlotR float64
	PlotT, PlotB float64
	XTicks       []tick
	YTicks       []tick
	Series       []series
	Bars         []rect
	Legend       []legend
	Points       int
	Empty        bool
}

type legend struct{ Name, Class string }

func newChart(id, title string, from, to time.Time, ymax float64) *chart {
	c := &chart{ID: id, Title: title, W: chartW, H: chartH,
		PlotL: padL, PlotR: chartW - padR, PlotT: padT, PlotB: chartH - padB}
	// X ticks every 3 hours, labelled in UTC.
	first := from.Truncate(3 * time.Hour)
	for t := first; t.Before(to); t = t.Add(3 * time.Hour) {
		if t.Before(from) {
			continue
		}
		c.XTicks = append(c.XTicks, tick{c.x(t, from, to), t.UTC().Format("15:04")})
	}
	step := niceStep(ymax / 4)
	for v := 0.0; v <= ymax+step/2 && step > 0; v += step {
		c.YTicks = append(c.YTicks, tick{c.y(v, ymax), msText(v)})
	}
	return c
}

func (c *chart) x(t, from, to time.Time) float64 {
	f := float64(t.Sub(from)) / float64(to.Sub(from))
	return c.PlotL + f*(c.PlotR-c.PlotL)
}

func (c *chart) y(v, ymax float64) float64 {
	if ymax <= 0 {
		return c.PlotB
	}
	return c.PlotB - v/ymax*(c.PlotB-c.PlotT)
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// latencyChart draws p50 and p95 per window; a missing window breaks the
// line instead of joining across the gap.
func latencyChart(ws []history.Window, from, to time.Time) *chart {
	ymax := 0.0
	for _, w := range ws {
		if w.P95MS != nil {
			ymax = max(ymax, *w.P95MS)
		}
	}
	ymax = niceCeil(ymax)
	c := newChart("latency", "Response time per five-minute window, last 24 h (UTC)", from, to, ymax)
	for _, s := range []struct {
		name, class string
		get         func(history.Window) *float64
	}{
		{"p50", "s-p50", func(w history.Window) *float64 { return w.P50MS }},
		{"p95", "s-p95", func(w history.Window) *float64 { return w.P95MS }},
	} {
		se := lineSeries(c, ws, from, to, ymax, s.name, s.class, s.get)
		c.Series = append(c.Series, se)
		c.Legend = append(c.Legend, legend{s.name, s.class})
		c.Points += se.N
	}
	c.Empty = c.Points == 0
	return c
}

// lineSeries is one line of a chart through get's value of each window;
// a missing value or window breaks the line instead of joining across the
// gap.
func lineSeries(c *chart, ws []history.Window, from, to time.Time, ymax float64, name, class string, get func(history.Window) *float64) series {
	se := series{Name: name, Class: class}
	var pts []string
	var prevEnd time.Time
	flush := func() {
		if len(pts) > 0 {
			se.Lines = append(se.Lines, polyline{strings.Join(pts, " "), len(pts)})
			se.N += len(pts)
			pts = nil
		}
	}
	for _, w := range ws {
		v := get(w)
		if v == nil || (!prevEnd.IsZero() && w.Start.After(prevEnd)) {
			flush()
		}
		if v == nil {
			prevEnd = time.Time{}
			continue
		}
		mid := w.Start.Add(w.End.Sub(w.Start) / 2)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.x(mid, from, to), c.y(*v, ymax)))
		prevEnd = w.End
	}
	flush()
	return se
}

// phaseChart stacks the mean phase timings per five-minute bucket.
func phaseChart(ps []history.Phases, from, to time.Time) *chart {
	type phase struct {
		name, class string
		get         func(history.Phases) *float64
	}
	phases := []phase{
		{"DNS", "ph-dns", func(p history.Phases) *float64 { return p.DNSMS }},
		{"connect", "ph-connect", func(p history.Phases) *float64 { return p.ConnectMS }},
		{"TLS", "ph-tls", func(p history.Phases) *float64 { return p.TLSMS }},
		{"first byte", "ph-ttfb", func(p history.Phases) *float64 { return p.TTFBMS }},
		{"transfer", "ph-transfer", func(p history.Phases) *float64 { return p.TransferMS }},
	}
	ymax := 0.0
	for _, p := range ps {
		sum := 0.0
		for _, ph := range phases {
			if v := ph.get(p); v != nil {
				sum += *v
			}
		}
		ymax = max(ymax, sum)
	}
	ymax = niceCeil(ymax)
	c := newChart("phases", "Where the time goes: mean phase times per five-minute bucket, last 24 h (UTC)", from, to, ymax)
	for _, ph := range phases {
		c.Legend = append(c.Legend, legend{ph.name, ph.class})
	}
	bw := (c.PlotR - c.PlotL) * float64(5*time.Minute) / float64(to.Sub(from))
	for _, p := range ps {
		if p.Start.Before(from) || !p.Start.Before(to) {
			continue
		}
		x := c.x(p.Start, from, to)
		base := 0.0
		drawn := false
		for _, ph := range phases {
			v := ph.get(p)
			if v == nil || *v <= 0 {
				continue
			}
			y0, y1 := c.y(base, ymax), c.y(base+*v, ymax)
			c.Bars = append(c.Bars, rect{X: x, Y: y1, W: max(bw-0.4, 0.6), H: max(y0-y1, 0.3), Class: ph.class,
				Title: fmt.Sprintf("%s %s: %s", p.Start.UTC().Format("15:04"), ph.name, msText(*v))})
			base += *v
			drawn = true
		}
		if drawn {
			c.Points++
		}
	}
	c.Empty = c.Points == 0
	return c
}

// niceCeil rounds a chart's top up so that the ticks land on round values.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 100
	}
	step := niceStep(v / 4)
	return math.Ceil(v*1.05/step) * step
}

// The SVG is written here rather than by html/template: a page of 100
// strips is 9,000 bars, and the template's per-attribute escaping made
// that the page's largest cost. Every text that is not a number or a
// fixed word goes through esc.
func esc(s string) string { return template.HTMLEscapeString(s) }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// SVG is the strip as inline SVG, one rect a day.
func (s strip) SVG() template.HTML {
	var b strings.Builder
	b.Grow(len(s.Bars) * 140)
	fmt.Fprintf(&b, `<svg class="strip" viewBox="0 0 %d 22" preserveAspectRatio="none" role="img" aria-label="daily uptime, last %d days" data-days="%d">`, s.Width, len(s.Bars), len(s.Bars))
	for _, r := range s.Bars {
		b.WriteString(`<rect x="`)
		b.WriteString(strconv.Itoa(r.X))
		b.WriteString(`" y="0" width="3" height="22" class="`)
		b.WriteString(esc(r.Class))
		b.WriteString(`" data-day="`)
		b.WriteString(esc(r.Day))
		b.WriteString(`" data-uptime="`)
		b.WriteString(esc(r.Uptime))
		b.WriteString(`"><title>`)
		b.WriteString(esc(r.Title))
		b.WriteString(`</title></rect>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// SVG is the chart as inline SVG, with its caption and legend.
func (c *chart) SVG() template.HTML {
	var b strings.Builder
	b.Grow(4096 + len(c.Bars)*160)
	fmt.Fprintf(&b, `<figure style="margin:0"><figcaption class="muted">%s</figcaption>`, esc(c.Title))
	fmt.Fprintf(&b, `<svg class="chart" id="chart-%s" viewBox="0 0 %d %d" role="img" aria-label="%s" data-points="%d">`, esc(c.ID), c.W, c.H, esc(c.Title), c.Points)
	for _, t := range c.YTicks {
		fmt.Fprintf(&b, `<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/><text class="tick" x="%s" y="%s" text-anchor="end">%s</text>`,
			f1(c.PlotL), f1(c.PlotR), f1(t.Pos), f1(t.Pos), f1(c.PlotL-4), f1(t.Pos+3), esc(t.Label))
	}
	for _, t := range c.XTicks {
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`, f1(t.Pos), f1(c.PlotB+14), esc(t.Label))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%s" x2="%s" y1="%s" y2="%s"/>`, f1(c.PlotL), f1(c.PlotR), f1(c.PlotB), f1(c.PlotB))
	for _, r := range c.Bars {
		b.WriteString(`<rect class="`)
		b.WriteString(esc(r.Class))
		b.WriteString(`" x="` + f2(r.X) + `" y="` + f2(r.Y) + `" width="` + f2(r.W) + `" height="` + f2(r.H) + `"><title>`)
		b.WriteString(esc(r.Title))
		b.WriteString(`</title></rect>`)
	}
	for _, s := range c.Series {
		for _, l := range s.Lines {
			fmt.Fprintf(&b, `<polyline class="%s" data-series="%s" data-n="%d" points="%s"/>`, esc(s.Class), esc(s.Name), l.N, esc(l.Points))
			if l.N == 1 {
				// A line of one point draws nothing: a dot instead.
				x, y, _ := strings.Cut(l.Points, ",")
				fmt.Fprintf(&b, `<circle class="%s pt" cx="%s" cy="%s" r="1.5"/>`, esc(s.Class), esc(x), esc(y))
			}
		}
	}
	if c.Empty {
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="middle">no data in the last 24 h</text>`, c.W/2, c.H/2)
	}
	b.WriteString(`</svg><div class="legend">`)
	for _, l := range c.Legend {
		fmt.Fprintf(&b, `<span><i class="l-%s"></i>%s</span>`, esc(l.Class), esc(l.Name))
	}
	b.WriteString(`</div></figure>`)
	return template.HTML(b.String())
}
