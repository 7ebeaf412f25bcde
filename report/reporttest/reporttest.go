// Package reporttest holds the seeded scenario the report tests (the
// report package's, over both stores, and the command's and the API's)
// share: raw checks with known outcomes over a known hour, whose figures
// are computed by hand in report's tests.
package reporttest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/report"
	"github.com/sitewatch/sitewatch/sinks/postgres"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
)

// OpenPostgres returns a migrated PostgreSQL store on a fresh database
// (testkit.Postgres) and that database's URL.
func OpenPostgres(t *testing.T) (string, *postgres.Store) {
	t.Helper()
	url := testkit.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.Migrate(ctx, url, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(s.Close)
	return url, s
}

// OpenSQLite returns a SQLite store in a fresh file.
func OpenSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sitewatch.db"), nil)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The seeded range: one hour.
var (
	// From and To bound the seeded range: one hour.
	From = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	To   = From.Add(time.Hour)
)

const (
	URLA = "https://a.example/" // configured, 60 s: a gap, a down period, edges
	URLB = "https://b.example/" // not configured: interval inferred (120 s)
	URLC = "https://c.example/" // configured, no checks at all
	URLD = "https://d.example/" // one check before the range that holds into it
)

// Sites are what the sites file says (SitesYAML in YAML).
var Sites = []report.Site{
	{URL: URLA, Name: "Alpha", Interval: time.Minute},
	{URL: URLC, Name: "Charlie", Interval: 30 * time.Second},
}

type seed struct {
	url       string
	scheduled time.Duration // from the range start
	late      time.Duration // checked_at − scheduled_at; 100 ms when zero
	kind      string        // "" for up
	rt        float64       // < 0: no response
}

// seedChecks is the hand-computed scenario the expectations below follow.
func seedChecks() []seed {
	var out []seed
	add := func(s seed) { out = append(out, s) }
	// A: far before the lookback (never read) and just before the range
	// (holds its first 30 s).
	add(seed{url: URLA, scheduled: -2 * time.Hour, kind: codecs.ErrTimeout, rt: -1})
	add(seed{url: URLA, scheduled: -30 * time.Second, rt: 10})
	for k := range 60 {
		if k >= 20 && k < 30 {
			continue // the monitor was offline: ten minutes without data
		}
		s := seed{url: URLA, scheduled: 30*time.Second + time.Duration(k)*time.Minute, rt: float64(10 + k)}
		switch k {
		case 40, 41, 42:
			s.kind, s.rt = codecs.ErrTimeout, -1
		case 43:
			s.kind, s.rt = codecs.ErrStatus, 500
		case 44:
			s.kind, s.rt = codecs.ErrStatus, 600
		case 50:
			s.kind, s.rt = codecs.ErrConnect, -1
		case 59:
			s.late = 30*time.Second + 200*time.Millisecond // checked after the range ends
		}
		add(s)
	}
	// A: an off-phase extra check (a restart), which cuts the down check
	// before it short; the slot of k=10 stored a second time, later and
	// down (ignored: the first row of a slot wins); a check after the
	// range (not read).
	add(seed{url: URLA, scheduled: 45 * time.Minute, rt: 5})
	add(seed{url: URLA, scheduled: 10*time.Minute + 30*time.Second, late: 2 * time.Second, kind: codecs.ErrOther, rt: -1})
	add(seed{url: URLA, scheduled: time.Hour + 30*time.Second, kind: codecs.ErrDNS, rt: -1})

	add(seed{url: URLB, scheduled: 10 * time.Minute, rt: 100})
	add(seed{url: URLB, scheduled: 12 * time.Minute, kind: codecs.ErrDNS, rt: -1})
	add(seed{url: URLB, scheduled: 14 * time.Minute, rt: 200})
	add(seed{url: URLB, scheduled: 16 * time.Minute, rt: 400})

	add(seed{url: URLD, scheduled: -20 * time.Second, kind: codecs.ErrTLS, rt: -1})
	return out
}

// Results are the seeded checks.
func Results() []*codecs.Result {
	seeds := seedChecks()
	rs := make([]*codecs.Result, len(seeds))
	for i, s := range seeds {
		late := s.late
		if late == 0 {
			late = 100 * time.Millisecond
		}
		sched := From.Add(s.scheduled)
		r := &codecs.Result{
			V: 1, EventID: fmt.Sprintf("ev-%03d", i), URL: s.url,
			ScheduledAt: sched, CheckedAt: sched.Add(late),
			Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "test",
		}
		if s.rt >= 0 {
			rt := s.rt
			r.ResponseTimeMS = &rt
		}
		if s.kind != "" {
			kind, msg := s.kind, "failed: "+s.kind
			r.Outcome, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, &kind, &msg
			r.StatusCode = 0
			if s.kind == codecs.ErrStatus {
				r.StatusCode = 503
			}
		}
		rs[i] = r
	}
	return rs
}

// SitesYAML is Sites as a sites file.
const SitesYAML = `sites:
  - url: https://a.example/
    name: Alpha
    interval: 60s
  - url: https://c.example/
    name: Charlie
    interval: 30s
    timeout: 5s
`
