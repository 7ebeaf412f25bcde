package web

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

// Limits on what a request may ask for.
const (
	// PageSize is how many sites one overview page lists.
	PageSize = 100
	// MaxWindowsRange is the longest from–to range of the windows API
	// (8,928 windows of five minutes).
	MaxWindowsRange = 31 * 24 * time.Hour
	// MaxIncidentsRange is the longest from–to range of the incidents API.
	MaxIncidentsRange = 92 * 24 * time.Hour
	// IncidentsLimit caps the incidents one answer lists.
	IncidentsLimit = 500
	// FailuresShown is how many failed checks a site page lists.
	FailuresShown = 50
	// StripDays is the length of the daily uptime strips.
	StripDays   = 90
	maxQueryLen = 200
)

// Server timeouts: a slow or stalled client cannot hold a connection.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
	// queryTimeout bounds the store's work for one request.
	queryTimeout = 20 * time.Second
)

// Site is a configured site: what the sites file says about a URL. Sites
// seen in the store but not configured (any more) are listed under their
// URL.
type Site struct {
	URL      string
	Name     string
	Interval time.Duration
	Timeout  time.Duration
	// Owner is "file:PATH" for a site from a sites file; empty if unknown.
	Owner string
}

// Config configures a Server.
type Config struct {
	Reader Reader
	// Sites returns the configured sites; nil lists the store's URLs only.
	Sites  func() []Site
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Routes are more handlers on the same server, by ServeMux pattern:
	// the report (GET /api/v1/report) and the sites API's writes, which
	// live in their own packages and need nothing of the pages.
	Routes map[string]http.Handler
}

// Server is the status page, badges and API as an http.Handler.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	log      *slog.Logger
	patterns []string
}

// New returns a Server reading through cfg.Reader.
func New(cfg Config) (*Server, error) {
	if cfg.Reader == nil {
		return nil, errors.New("web: no reader")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sites == nil {
		cfg.Sites = func() []Site { return nil }
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	s.handle("GET /{$}", http.HandlerFunc(s.overview))
	s.handle("GET /sites/{id}", http.HandlerFunc(s.sitePage))
	s.handle("GET /badge/{id}/status.svg", http.HandlerFunc(s.badgeStatus))
	s.handle("GET /badge/{id}/uptime.svg", http.HandlerFunc(s.badgeUptime))
	s.handle("GET /badge/{id}/latency.svg", http.HandlerFunc(s.badgeLatency))
	s.handle("GET /api/v1/sites", http.HandlerFunc(s.apiSites))
	s.handle("GET /api/v1/sites/{id}", http.HandlerFunc(s.apiSite))
	s.handle("GET /api/v1/sites/{id}/windows", http.HandlerFunc(s.apiWindows))
	s.handle("GET /api/v1/incidents", http.HandlerFunc(s.apiIncidents))
	for pattern, h := range cfg.Routes {
		s.handle(pattern, h)
	}
	slices.Sort(s.patterns)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route (see docs/openapi.yaml)", "")
	})
	return s, nil
}

func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.patterns = append(s.patterns, pattern)
}

// Patterns are the routes served ("METHOD /path" as ServeMux patterns),
// sorted, without the /api/ catch-all that answers 404: the OpenAPI
// document must describe each of them.
func (s *Server) Patterns() []string { return slices.Clone(s.patterns) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

// Listen opens addr (host:port; port 0 picks a free one).
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http-addr %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx ends, then shuts down gracefully, letting
// requests in flight finish for up to five seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// site is one site as the pages show it.
type site struct {
	ID  string
	URL string
	// Name is the configured name, or the URL.
	Name       string
	Configured *Site
	Latest     *history.Latest
}

// siteList merges the configured sites with the URLs in the store, in one
// query: configured sites first in their order, then the store's others.
func (s *Server) siteList(ctx context.Context) ([]*site, error) {
	latest, err := s.cfg.Reader.Latest(ctx, nil)
	if err != nil {
		return nil, err
	}
	byURL := make(map[string]*history.Latest, len(latest))
	for i := range latest {
		byURL[latest[i].URL] = &latest[i]
	}
	var out []*site
	seen := map[string]bool{}
	for _, c := range s.cfg.Sites() {
		if seen[c.URL] {
			continue
		}
		seen[c.URL] = true
		c := c
		out = append(out, newSite(&c, c.URL, byURL[c.URL]))
	}
	for i := range latest {
		if !seen[latest[i].URL] {
			out = append(out, newSite(nil, latest[i].URL, &latest[i]))
		}
	}
	return out, nil
}

func newSite(c *Site, url string, l *history.Latest) *site {
	name := url
	if c != nil && strings.TrimSpace(c.Name) != "" {
		name = c.Name
	}
	return &site{ID: history.SiteID(url), URL: url, Name: name, Configured: c, Latest: l}
}

// findSite resolves an id: a configured site costs one query for its
// latest check, another site one query over site_status and one for its
// latest check.
func (s *Server) findSite(ctx context.Context, id string) (*site, error) {
	for _, c := range s.cfg.Sites() {
		if history.SiteID(c.URL) == id {
			c := c
			l, err := s.cfg.Reader.Latest(ctx, []string{c.URL})
			if err != nil {
				return nil, err
			}
			st := newSite(&c, c.URL, nil)
			if len(l) > 0 {
				st.Latest = &l[0]
			}
			return st, nil
		}
	}
	all, err := s.siteList(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range all {
		if st.ID == id {
			// The list has no certificate expiry (see history.Latest):
			// one more query, for this site.
			l, err := s.cfg.Reader.Latest(ctx, []string{st.URL})
			if err != nil {
				return nil, err
			}
			if len(l) > 0 {
				st.Latest = &l[0]
			}
			return st, nil
		}
	}
	return nil, nil
}

// Site states.
const (
	StateUp      = "up"
	StateDown    = "down"
	StateUnknown = "unknown"
)

// staleAfter is how long a site's latest check stands for its state: three
// intervals (60 s when unknown), at least three minutes. A site not
// checked for longer is unknown: the monitor, not the site, may be down.
func (st *site) staleAfter() time.Duration {
	iv := time.Minute
	if st.Configured != nil && st.Configured.Interval > 0 {
		iv = st.Configured.Interval
	}
	return max(3*iv, 3*time.Minute)
}

// state is the site's current state: down while an incident is open
// (the alerts part decided so, past its thresholds), else from its latest
// check.
func (st *site) state(now time.Time) string {
	if st.Latest != nil && st.Latest.IncidentSince != nil {
		return StateDown
	}
	if st.Latest == nil || st.Latest.CheckedAt.IsZero() || now.Sub(st.Latest.CheckedAt) > st.staleAfter() {
		return StateUnknown
	}
	if st.Latest.Outcome == "down" {
		return StateDown
	}
	return StateUp
}

// sortSites orders down sites first, then unknown, then up, each by name.
// The keys are computed once: with 10,000 sites the comparisons are many.
func sortSites(sites []*site, now time.Time) {
	rank := map[string]int{StateDown: 0, StateUnknown: 1, StateUp: 2}
	type keyed struct {
		rank int
		name string
		s    *site
	}
	ks := make([]keyed, len(sites))
	for i, st := range sites {
		ks[i] = keyed{rank[st.state(now)], strings.ToLower(st.Name), st}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.name, b.name), cmp.Compare(a.s.URL, b.s.URL))
	})
	for i := range ks {
		sites[i] = ks[i].s
	}
}

func (s *Server) urlsOf(sites []*site) []string {
	urls := make([]string, len(sites))
	for i, st := range sites {
		urls[i] = st.URL
	}
	return urls
}

// serverError logs err and answers 500 without details: a store error may
// name hosts or users.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error, api bool) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error("web request failed", "path", r.URL.Path, "err", err)
	if api {
		writeError(w, http.StatusInternalServerError, "internal error reading the store (see the server's log)", "")
		return
	}
	http.Error(w, "internal error reading the store (see the server's log)", http.StatusInternalServerError)
}

func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// todayUTC is the start of now's UTC day.
func todayUTC(now time.Time) time.Time {
	now = now.UTC()
	return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
}
