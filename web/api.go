package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

// The JSON API; docs/openapi.yaml describes every route and shape, and a
// test validates real answers against it.

// apiError is every error answer: what is wrong, and which field.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	writeJSON(w, code, apiError{Error: msg, Field: field})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

type apiFailure struct {
	CheckedAt      time.Time `json:"checked_at"`
	StatusCode     int       `json:"status_code"`
	ErrorKind      string    `json:"error_kind"`
	ErrorMessage   string    `json:"error_message"`
	ResponseTimeMS *float64  `json:"response_time_ms,omitempty"`
}

type apiSite struct {
	ID            string      `json:"id"`
	URL           string      `json:"url"`
	Name          string      `json:"name"`
	State         string      `json:"state"`
	Interval      *string     `json:"interval"`
	Timeout       *string     `json:"timeout"`
	Owner         *string     `json:"owner"`
	LastCheckedAt *time.Time  `json:"last_checked_at"`
	Uptime24h     *float64    `json:"uptime_24h"`
	Uptime7d      *float64    `json:"uptime_7d"`
	Uptime30d     *float64    `json:"uptime_30d"`
	P9524hMS      *float64    `json:"p95_24h_ms"`
	Checks24h     int64       `json:"checks_24h"`
	Failures24h   int64       `json:"failures_24h"`
	LastFailure   *apiFailure `json:"last_failure"`
}

type apiDay struct {
	Day      string   `json:"day"`
	Checks   int64    `json:"checks"`
	Failures int64    `json:"failures"`
	Uptime   *float64 `json:"uptime"`
}

type apiIncident struct {
	SiteID       string     `json:"site_id"`
	URL          string     `json:"url"`
	Name         string     `json:"name"`
	StartedAt    time.Time  `json:"started_at"`
	EndedAt      *time.Time `json:"ended_at"`
	DurationS    float64    `json:"duration_s"`
	Open         bool       `json:"open"`
	CauseKind    string     `json:"cause_kind"`
	CauseMessage string     `json:"cause_message"`
	FailedChecks int64      `json:"failed_checks"`
}

type apiSiteDetail struct {
	apiSite
	Uptime90d      *float64      `json:"uptime_90d"`
	TLSNotAfter    *time.Time    `json:"tls_not_after"`
	CertDaysLeft   *int          `json:"cert_days_left"`
	Daily          []apiDay      `json:"daily"`
	Incidents      []apiIncident `json:"incidents"`
	RecentFailures []apiFailure  `json:"recent_failures"`
	// Regions are each region's view, by name (one entry with one
	// region; none without windows in the last 24 h).
	Regions []apiRegion `json:"regions"`
}

type apiWindow struct {
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Checks      int64     `json:"checks"`
	Failures    int64     `json:"failures"`
	Responses   int64     `json:"responses"`
	AvgMS       *float64  `json:"response_avg_ms"`
	P50MS       *float64  `json:"response_p50_ms"`
	P95MS       *float64  `json:"response_p95_ms"`
	P99MS       *float64  `json:"response_p99_ms"`
	MaxMS       *float64  `json:"response_max_ms"`
}

func uptimePtr(c history.Counts) *float64 {
	if p, ok := c.Uptime(); ok {
		return &p
	}
	return nil
}

func toAPISite(st *site, stats history.Stats, now time.Time) apiSite {
	a := apiSite{ID: st.ID, URL: st.URL, Name: st.Name, State: st.state(now),
		Uptime24h: uptimePtr(stats.Last24h), Uptime7d: uptimePtr(stats.Last7d), Uptime30d: uptimePtr(stats.Last30d),
		Checks24h: stats.Last24h.Checks, Failures24h: stats.Last24h.Failures}
	if v, ok := stats.Last24h.P95(); ok {
		a.P9524hMS = &v
	}
	if c := st.Configured; c != nil {
		if c.Interval > 0 {
			s := intervalText(c.Interval)
			a.Interval = &s
		}
		if c.Timeout > 0 {
			s := intervalText(c.Timeout)
			a.Timeout = &s
		}
		if c.Owner != "" {
			o := c.Owner
			a.Owner = &o
		}
	}
	if l := st.Latest; l != nil {
		if !l.CheckedAt.IsZero() {
			t := l.CheckedAt
			a.LastCheckedAt = &t
		}
		if l.Failure != nil {
			f := toAPIFailure(*l.Failure)
			a.LastFailure = &f
		}
	}
	return a
}

func toAPIFailure(f history.Failure) apiFailure {
	return apiFailure{CheckedAt: f.CheckedAt, StatusCode: f.StatusCode, ErrorKind: f.ErrorKind,
		ErrorMessage: f.ErrorMessage, ResponseTimeMS: f.ResponseTimeMS}
}

func toAPIIncident(in history.Incident, id, name string, now time.Time) apiIncident {
	end := now
	if in.EndedAt != nil {
		end = *in.EndedAt
	}
	return apiIncident{SiteID: id, URL: in.URL, Name: name, StartedAt: in.StartedAt, EndedAt: in.EndedAt,
		DurationS: end.Sub(in.StartedAt).Seconds(), Open: in.EndedAt == nil,
		CauseKind: in.CauseKind, CauseMessage: in.CauseMessage, FailedChecks: in.FailedChecks}
}

// apiSites serves GET /api/v1/sites: every site, down first. Two queries.
func (s *Server) apiSites(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.cfg.Now().UTC()
	all, err := s.siteList(ctx)
	if err != nil {
		s.serverError(w, r, err, true)
		return
	}
	sortSites(all, now)
	stats, err := s.cfg.Reader.Stats(ctx, nil, now)
	if err != nil {
		s.serverError(w, r, err, true)
		return
	}
	out := make([]apiSite, 0, len(all))
	for _, st := range all {
		out = append(out, toAPISite(st, stats[st.URL], now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": out})
}

// apiSite serves GET /api/v1/sites/{id}: what the site page shows.
func (s *Server) apiSite(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now().UTC()
	st, ok := s.apiFind(w, r)
	if !ok {
		return
	}
	d, err := s.siteDetail(r, st, now)
	if err != nil {
		s.serverError(w, r, err, true)
		return
	}
	out := apiSiteDetail{apiSite: toAPISite(st, d.stats, now), Uptime90d: uptimePtr(d.days90),
		Daily: []apiDay{}, Incidents: []apiIncident{}, RecentFailures: []apiFailure{}, Regions: toAPIRegions(d.regions, st, now)}
	if st.Latest != nil {
		out.TLSNotAfter, out.CertDaysLeft = st.Latest.TLSNotAfter, certDaysLeft(st.Latest.TLSNotAfter, now)
	}
	for _, day := range d.days {
		out.Daily = append(out.Daily, apiDay{Day: day.Day.Format("2006-01-02"), Checks: day.Checks, Failures: day.Failures, Uptime: uptimePtr(day.Counts)})
	}
	for _, in := range d.incidents {
		out.Incidents = append(out.Incidents, toAPIIncident(in, st.ID, st.Name, now))
	}
	for _, f := range d.failures {
		out.RecentFailures = append(out.RecentFailures, toAPIFailure(f))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiFind(w http.ResponseWriter, r *http.Request) (*site, bool) {
	st, err := s.findSite(r.Context(), r.PathValue("id"))
	if err != nil {
		s.serverError(w, r, err, true)
		return nil, false
	}
	if st == nil {
		writeError(w, http.StatusNotFound, "no site with id "+strconv.Quote(r.PathValue("id")), "id")
		return nil, false
	}
	return st, true
}

// timeRange reads ?from= and ?to= (RFC 3339; defaults: the def before now,
// and now), refusing an empty, reversed or too long range.
func timeRange(w http.ResponseWriter, r *http.Request, now time.Time, def, limit time.Duration) (from, to time.Time, ok bool) {
	q := r.URL.Query()
	to, from = now, now.Add(-def)
	if v := q.Get("to"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "to: not an RFC 3339 time, e.g. 2026-11-01T00:00:00Z", "to")
			return from, to, false
		}
		to = t.UTC()
		if q.Get("from") == "" {
			from = to.Add(-def)
		}
	}
	if v := q.Get("from"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "from: not an RFC 3339 time, e.g. 2026-11-01T00:00:00Z", "from")
			return from, to, false
		}
		from = t.UTC()
	}
	if !from.Before(to) {
		writeError(w, http.StatusBadRequest, "from must be before to", "from")
		return from, to, false
	}
	if to.Sub(from) > limit {
		writeError(w, http.StatusBadRequest, "range too long: at most "+durationText(limit)+" from from to to", "to")
		return from, to, false
	}
	return from, to, true
}

// apiWindows serves GET /api/v1/sites/{id}/windows?from=&to=.
func (s *Server) apiWindows(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now().UTC()
	from, to, ok := timeRange(w, r, now, 24*time.Hour, MaxWindowsRange)
	if !ok {
		return
	}
	st, ok := s.apiFind(w, r)
	if !ok {
		return
	}
	ws, err := s.cfg.Reader.Windows(r.Context(), st.URL, from, to)
	if err != nil {
		s.serverError(w, r, err, true)
		return
	}
	out := make([]apiWindow, 0, len(ws))
	for _, x := range ws {
		out = append(out, apiWindow{WindowStart: x.Start, WindowEnd: x.End, Checks: x.Checks, Failures: x.Failures,
			Responses: x.Responses, AvgMS: x.AvgMS, P50MS: x.P50MS, P95MS: x.P95MS, P99MS: x.P99MS, MaxMS: x.MaxMS})
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": st.ID, "url": st.URL, "from": from, "to": to, "windows": out})
}

// apiIncidents serves GET /api/v1/incidents?open=&from=&to=&site=: two
// queries (the site list for names, then the incidents).
func (s *Server) apiIncidents(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now().UTC()
	q := r.URL.Query()
	open := false
	if v := q.Get("open"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "open: want true or false", "open")
			return
		}
		open = b
	}
	from, to, ok := timeRange(w, r, now.Add(time.Hour), 7*24*time.Hour+time.Hour, MaxIncidentsRange)
	if !ok {
		return
	}
	all, err := s.siteList(r.Context())
	if err != nil {
		s.serverError(w, r, err, true)
		return
	}
	query := history.IncidentQuery{From: from, To: to, OpenOnly: open, Limit: IncidentsLimit}
	byURL := map[string]*site{}
	for _, st := range all {
		byURL[st.URL] = st
	}
	if id := q.Get("site"); id != "" {
		found := false
		for _, st := range all {
			if st.ID == id {
				query.URL, found = st.URL, true
			}
		}
		if !found {
			writeError(w, http.StatusNotFound, "no site with id "+strconv.Quote(id), "site")
			return
		}
	}
	ins, err := s.cfg.Reader.Incidents(r.Context(), query)
	if err != nil {
		s.serverError(w, r, err, true)
		return
	}
	out := make([]apiIncident, 0, len(ins))
	for _, in := range ins {
		st := byURL[in.URL]
		if st == nil {
			st = newSite(nil, in.URL, nil)
		}
		out = append(out, toAPIIncident(in, st.ID, st.Name, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
}
