package web

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").ParseFS(templateFS, "templates/*.html"))

// row is one site in the overview.
type row struct {
	ID, Name, URL, State           string
	Uptime24h, Uptime7d, Uptime30d string
	Class24h                       string
	P95                            string
	LastChecked, LastCheckedAt     string
	LastFailure, LastFailureAt     string
	LastFailureReason              string
	Strip                          strip
}

type overviewPage struct {
	Nonce             string
	Query             string
	Total, Shown      int
	Down, Up, Unknown int
	Rows              []row
	Page, Pages       int
	PrevURL, NextURL  string
	Generated         string
	Filtered          bool
}

// overview serves /: every site (a page of PageSize at a time), down
// first. ?q= filters by name or URL on the server (the page's script also
// filters as one types); ?fragment=live returns only the part that the
// script swaps in every 30 s. Queries: site_status for every site, then
// the rollups for the sites shown (two), whatever the number of sites.
func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.cfg.Now().UTC()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > maxQueryLen {
		q = q[:maxQueryLen]
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)

	all, err := s.siteList(ctx)
	if err != nil {
		s.serverError(w, r, err, false)
		return
	}
	sortSites(all, now)
	p := overviewPage{Nonce: nonce(), Query: q, Total: len(all), Generated: timeText(now), Filtered: q != ""}
	var matched []*site
	lq := strings.ToLower(q)
	for _, st := range all {
		switch st.state(now) {
		case StateDown:
			p.Down++
		case StateUp:
			p.Up++
		default:
			p.Unknown++
		}
		if lq == "" || strings.Contains(strings.ToLower(st.Name), lq) || strings.Contains(strings.ToLower(st.URL), lq) {
			matched = append(matched, st)
		}
	}
	p.Pages = max((len(matched)+PageSize-1)/PageSize, 1)
	page = min(page, p.Pages)
	p.Page = page
	shown := matched[min((page-1)*PageSize, len(matched)):min(page*PageSize, len(matched))]
	p.Shown = len(shown)
	pageURL := func(n int) string {
		v := r.URL.Query()
		v.Del("fragment")
		v.Set("page", strconv.Itoa(n))
		return "/?" + v.Encode()
	}
	if page > 1 {
		p.PrevURL = pageURL(page - 1)
	}
	if page < p.Pages {
		p.NextURL = pageURL(page + 1)
	}

	if len(shown) > 0 {
		urls := s.urlsOf(shown)
		stats, err := s.cfg.Reader.Stats(ctx, urls, now)
		if err != nil {
			s.serverError(w, r, err, false)
			return
		}
		today := todayUTC(now)
		days, err := s.cfg.Reader.Daily(ctx, urls, today.AddDate(0, 0, -StripDays+1), today.AddDate(0, 0, 1))
		if err != nil {
			s.serverError(w, r, err, false)
			return
		}
		byURL := map[string][]history.Day{}
		for _, d := range days {
			byURL[d.URL] = append(byURL[d.URL], d)
		}
		for _, st := range shown {
			p.Rows = append(p.Rows, makeRow(st, stats[st.URL], byURL[st.URL], now, today))
		}
	}
	name := "overview.html"
	if r.URL.Query().Get("fragment") == "live" {
		name = "live"
	}
	s.render(w, r, name, p.Nonce, p)
}

func makeRow(st *site, stats history.Stats, days []history.Day, now, today time.Time) row {
	rw := row{ID: st.ID, Name: st.Name, URL: st.URL, State: st.state(now),
		Uptime24h: pctText(stats.Last24h), Uptime7d: pctText(stats.Last7d), Uptime30d: pctText(stats.Last30d),
		Class24h: uptimeClass(stats.Last24h), P95: p95Text(stats.Last24h),
		Strip: newStrip(days, today)}
	if l := st.Latest; l != nil && !l.CheckedAt.IsZero() {
		rw.LastChecked, rw.LastCheckedAt = agoText(l.CheckedAt, now), timeText(l.CheckedAt)
		if l.Failure != nil {
			rw.LastFailure, rw.LastFailureAt = agoText(l.Failure.CheckedAt, now), timeText(l.Failure.CheckedAt)
			rw.LastFailureReason = reasonText(l.Failure)
		}
	}
	return rw
}

type incidentRow struct {
	Start, End, Duration, Cause string
	FailedChecks                int64
	Open                        bool
}

type failureRow struct {
	At, Kind, Message, Status, Response string
}

type sitePage struct {
	Nonce             string
	Row               row
	Interval, Timeout string
	Uptime90d         string
	CertExpiry        string
	CertWarn          bool
	Latency, Phases   *chart
	// Regions and RegionChart are shown when several regions check the
	// site: each region's view side by side.
	Regions     []regionRow
	RegionChart *chart
	Incidents   []incidentRow
	Failures    []failureRow
	LastError   string
	Generated   string
}

// sitePage serves /sites/{id}. Queries: the site's latest check, its
// stats, 90 days, 24 h of windows (per region) and of phase timings, its
// incidents and failed checks: seven, each over one URL; two more when
// several regions check it (the windows over every region, each region's
// latest check).
func (s *Server) sitePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.cfg.Now().UTC()
	st, err := s.findSite(ctx, r.PathValue("id"))
	if err != nil {
		s.serverError(w, r, err, false)
		return
	}
	if st == nil {
		http.Error(w, "no site with this id; the overview at / lists them all", http.StatusNotFound)
		return
	}
	d, err := s.siteDetail(r, st, now)
	if err != nil {
		s.serverError(w, r, err, false)
		return
	}
	p := sitePage{Nonce: nonce(), Row: d.row, Generated: timeText(now), Uptime90d: pctText(d.days90),
		Latency: latencyChart(d.windows, d.from, now), Phases: phaseChart(d.phases, d.from, now), CertExpiry: "unknown"}
	if st.Latest != nil {
		p.CertExpiry, p.CertWarn = certText(st.Latest.TLSNotAfter, now)
	}
	if len(d.regions) > 1 {
		p.Regions, p.RegionChart = makeRegionRows(d.regions, st, now), regionChart(d.regions, d.from, now)
	}
	if c := st.Configured; c != nil {
		if c.Interval > 0 {
			p.Interval = intervalText(c.Interval)
		}
		if c.Timeout > 0 {
			p.Timeout = intervalText(c.Timeout)
		}
	}
	if l := st.Latest; l != nil && l.Outcome == "down" {
		p.LastError = reasonText(&history.Failure{StatusCode: l.StatusCode, ErrorKind: l.ErrorKind, ErrorMessage: l.ErrorMessage})
	}
	for _, in := range d.incidents {
		ir := incidentRow{Start: timeText(in.StartedAt), Cause: reasonText(&history.Failure{ErrorKind: in.CauseKind, ErrorMessage: in.CauseMessage}),
			FailedChecks: in.FailedChecks}
		if in.EndedAt != nil {
			ir.End, ir.Duration = timeText(*in.EndedAt), durationText(in.EndedAt.Sub(in.StartedAt))
		} else {
			ir.Open, ir.End, ir.Duration = true, "ongoing", durationText(now.Sub(in.StartedAt))+" so far"
		}
		p.Incidents = append(p.Incidents, ir)
	}
	for _, f := range d.failures {
		fr := failureRow{At: timeText(f.CheckedAt), Kind: f.ErrorKind, Message: f.ErrorMessage, Status: "–", Response: "–"}
		if f.StatusCode != 0 {
			fr.Status = strconv.Itoa(f.StatusCode)
		}
		if f.ResponseTimeMS != nil {
			fr.Response = msText(*f.ResponseTimeMS)
		}
		p.Failures = append(p.Failures, fr)
	}
	s.render(w, r, "site.html", p.Nonce, p)
}

// detail is everything the site page and the site API show.
type detail struct {
	row     row
	stats   history.Stats
	days    []history.Day
	days90  history.Counts
	from    time.Time
	windows []history.Window
	// regions are each region's view, by region name.
	regions   []*regionView
	phases    []history.Phases
	incidents []history.Incident
	failures  []history.Failure
}

func (s *Server) siteDetail(r *http.Request, st *site, now time.Time) (*detail, error) {
	ctx := r.Context()
	rd := s.cfg.Reader
	d := &detail{from: now.Add(-24 * time.Hour)}
	urls := []string{st.URL}
	stats, err := rd.Stats(ctx, urls, now)
	if err != nil {
		return nil, err
	}
	d.stats = stats[st.URL]
	today := todayUTC(now)
	if d.days, err = rd.Daily(ctx, urls, today.AddDate(0, 0, -StripDays+1), today.AddDate(0, 0, 1)); err != nil {
		return nil, err
	}
	for _, day := range d.days {
		d.days90 = d.days90.Add(day.Counts)
	}
	d.row = makeRow(st, d.stats, d.days, now, today)
	// Each region's windows: with one region they are the site's, and
	// only with several does the site cost two queries more (the windows
	// over every region and each region's latest check).
	rws, err := rd.RegionWindows(ctx, st.URL, d.from, now)
	if err != nil {
		return nil, err
	}
	d.regions = regionViews(rws)
	if len(d.regions) > 1 {
		if d.windows, err = rd.Windows(ctx, st.URL, d.from, now); err != nil {
			return nil, err
		}
		latest, err := rd.RegionLatest(ctx, st.URL, d.from)
		if err != nil {
			return nil, err
		}
		setLatest(d.regions, latest)
	} else {
		d.windows = rws
		// The one region's latest check is the site's (site_status).
		if l := st.Latest; len(d.regions) == 1 && l != nil && !l.CheckedAt.IsZero() {
			d.regions[0].Latest = &history.RegionCheck{Region: d.regions[0].Region, CheckedAt: l.CheckedAt, Outcome: l.Outcome,
				StatusCode: l.StatusCode, ErrorKind: l.ErrorKind, ErrorMessage: l.ErrorMessage}
		}
	}
	if d.phases, err = rd.Phases(ctx, st.URL, d.from, now); err != nil {
		return nil, err
	}
	if d.incidents, err = rd.Incidents(ctx, history.IncidentQuery{URL: st.URL, From: today.AddDate(0, 0, -StripDays+1), To: now.Add(time.Hour), Limit: 100}); err != nil {
		return nil, err
	}
	if d.failures, err = rd.Failures(ctx, st.URL, FailuresShown); err != nil {
		return nil, err
	}
	return d, nil
}

// render executes a template into a buffer first, so that a failure is a
// clean 500 and not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name, nonce string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		s.serverError(w, r, err, false)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; script-src 'nonce-"+nonce+"'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	_, _ = w.Write(buf.Bytes())
}
