// Package demo is the all-in-one command's -demo: five local websites
// served in-process, one of each behaviour a monitor must tell apart (up,
// slow, flapping, a server error, a page without the expected text), and
// the sites file that checks them every few seconds. It lets a new user
// see the live table, the tables and the failure reasons fill up within a
// minute, offline.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Interval is how often the demo sites are checked: short, so that the
// table and check_results are meaningful within a minute.
const Interval = 5 * time.Second

// FlapPeriod is the flapping site's cycle: up for the first two thirds,
// down (503) for the last third, by wall clock.
const FlapPeriod = 30 * time.Second

// SlowDelay is how long the slow site takes to answer (under the timeout).
const SlowDelay = 1200 * time.Millisecond

// Site is one demo site: its path on the demo server, its name and what a
// check of it should find.
type Site struct {
	Path, Name, Expect string
	// Regexp, when set, is the site's body regexp.
	Regexp string
}

// Sites are the demo's sites in the order of the sites file.
var Sites = []Site{
	{Path: "/up", Name: "demo up", Expect: "up, fast"},
	{Path: "/slow", Name: "demo slow", Expect: fmt.Sprintf("up, about %s per response", SlowDelay)},
	{Path: "/flapping", Name: "demo flapping", Expect: fmt.Sprintf("up %s, then down (503) %s, repeating", FlapPeriod*2/3, FlapPeriod/3)},
	{Path: "/error", Name: "demo error 500", Expect: "down: status 500"},
	{Path: "/content", Name: "demo wrong text", Expect: "down: regexp does not match", Regexp: "Welcome to the shop"},
}

// Handler serves the demo sites; now is the wall clock of the flapping
// site (tests pass a fake one).
func Handler(now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /up", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "<h1>All good</h1>")
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(SlowDelay):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, "<h1>Slow but fine</h1>")
	})
	mux.HandleFunc("GET /flapping", func(w http.ResponseWriter, _ *http.Request) {
		if now().UnixNano()%int64(FlapPeriod) >= int64(FlapPeriod*2/3) {
			http.Error(w, "flapping: down for now", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "<h1>Up, for now</h1>")
	})
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "internal server error", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /content", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "<h1>Under maintenance</h1>") // the regexp wants "Welcome to the shop"
	})
	return mux
}

// SitesFile is the sites file (YAML) that checks the demo sites served at
// base (http://HOST:PORT).
func SitesFile(base string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# sitewatch -demo: local sites served by the sitewatch process itself.\n")
	fmt.Fprintf(&b, "defaults:\n  interval: %s\n  timeout: 3s\nsites:\n", Interval)
	for _, s := range Sites {
		fmt.Fprintf(&b, "  - url: %s%s   # %s\n    name: %q\n", base, s.Path, s.Expect, s.Name)
		if s.Regexp != "" {
			fmt.Fprintf(&b, "    regexp: %q\n", s.Regexp)
		}
	}
	return []byte(b.String())
}

// Server is the running demo server.
type Server struct {
	// URL is its base, http://HOST:PORT.
	URL string
	srv *http.Server
	err chan error
}

// Serve serves the demo sites on ln until Close.
func Serve(ln net.Listener) *Server {
	s := &Server{
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: Handler(time.Now), ReadHeaderTimeout: 5 * time.Second},
		err: make(chan error, 1),
	}
	go func() { s.err <- s.srv.Serve(ln) }()
	return s
}

// Close stops the server, waiting up to a few seconds for checks in
// flight (the slow site) to be answered.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.err; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("demo sites: %w", err)
	}
	return nil
}
