// Package historytest seeds a store with a known history and holds the
// read tests that every store (sinks/postgres, sinks/sqlite) must pass
// alike, so that the status page reads the same answers from either.
package historytest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/web"
)

// The seeded sites.
const (
	// UpURL has been up for 24 h (p50 20 ms, p95 40 ms in every window),
	// with one ended incident three days ago and older daily history.
	UpURL = "https://up.example/"
	// DownURL is up until 30 minutes before Now, then down (connection
	// refused, every check) up to Now: an open incident.
	DownURL = "https://down.example/"
	// HalfURL failed half of its checks two days ago, and has no other
	// data: a poor day and 89 days without data; one raw check is kept.
	HalfURL = "https://half.example/"
)

// DownMessage is DownURL's error message, hostile on purpose: pages must
// show it as text.
const DownMessage = `dial tcp 127.0.0.1:1: connect: connection refused <script>alert("x")</script>`

// Scenario is what Seed wrote, for the assertions.
type Scenario struct {
	Now time.Time
	// WindowsUp is how many windows UpURL has in the 24 h before Now.
	WindowsUp int
	// ChecksUp24h is UpURL's checks in those windows.
	ChecksUp24h int64
	// PhaseBucketsUp is how many five-minute buckets of raw checks UpURL
	// has in the 24 h before Now.
	PhaseBucketsUp int
	// DownFailures is DownURL's failed checks (one a minute, 30).
	DownFailures int
	// UpOldDays are the days (UTC) of UpURL's older history.
	UpOldDays []time.Time
	// UpDays are all the days (UTC) on which UpURL has a window. How many
	// depends on the time of day of Now: near midnight, the incident's
	// windows span two days, and at midnight today has none yet.
	UpDays map[time.Time]bool
	// IncidentStart is UpURL's ended incident's first failed check, and
	// IncidentEnd its first good check after (the up change's since).
	IncidentStart, IncidentEnd time.Time
	// DownSince is DownURL's first failed check.
	DownSince time.Time
	// CertNotAfter is the certificate expiry of UpURL's good checks: ten
	// and a half days after Now, under the page's 14-day warning.
	// DownURL's checks got no certificate.
	CertNotAfter time.Time
}

func f(v float64) *float64 { return &v }
func s(v string) *string   { return &v }

// Seed writes the scenario through the store's own write path (the sinks'
// WriteResults and WriteWindows, and WriteChanges for the incidents, as
// the alerts part's changes reach the incidents sink), as of now (rounded
// down to five minutes).
func Seed(t testing.TB, st sinks.Store, now time.Time) Scenario {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now = now.UTC().Truncate(5 * time.Minute)
	sc := Scenario{Now: now, DownFailures: 30}
	var results []*codecs.Result
	var windows []*codecs.Window
	result := func(url string, at time.Time, up bool) *codecs.Result {
		r := &codecs.Result{EventID: fmt.Sprintf("%s@%d", url, at.UnixNano()), URL: url, ScheduledAt: at, CheckedAt: at,
			Outcome: codecs.OutcomeUp, StatusCode: 200, ResponseTimeMS: f(20), DNSMS: f(1), ConnectMS: f(2), TLSMS: f(5),
			TTFBMS: f(10), TransferMS: f(2), BodyBytes: 100, Checker: "seed"}
		if !up {
			r.Outcome, r.StatusCode, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, 0, s(codecs.ErrConnect), s(DownMessage)
			r.ResponseTimeMS, r.TLSMS, r.TTFBMS, r.TransferMS, r.BodyBytes = nil, nil, nil, nil, 0
		}
		return r
	}
	window := func(url string, start time.Time, checks, failures int64) *codecs.Window {
		w := &codecs.Window{V: 1, URL: url, WindowStart: start, WindowEnd: start.Add(5 * time.Minute),
			Checks: checks, Failures: failures, Responses: checks - failures, StatusCounts: map[string]int64{}, Revision: 1}
		if w.Responses > 0 {
			w.ResponseMinMS, w.ResponseAvgMS, w.ResponseMaxMS = f(10), f(22), f(60)
			w.ResponseP50MS, w.ResponseP95MS, w.ResponseP99MS = f(20), f(40), f(55)
		}
		return w
	}

	// The last 24 h: UpURL and DownURL, one check a minute, five a window.
	from := now.Add(-24 * time.Hour)
	sc.DownSince = now.Add(-30 * time.Minute)
	for ws := from; ws.Before(now); ws = ws.Add(5 * time.Minute) {
		windows = append(windows, window(UpURL, ws, 5, 0))
		sc.WindowsUp++
		sc.ChecksUp24h += 5
		sc.PhaseBucketsUp++
		var downFailures int64
		for i := range 5 {
			at := ws.Add(time.Duration(i)*time.Minute + 7*time.Second)
			results = append(results, result(UpURL, at, true))
			up := at.Before(sc.DownSince)
			if !up {
				downFailures++
			}
			results = append(results, result(DownURL, at, up))
		}
		windows = append(windows, window(DownURL, ws, 5, downFailures))
	}

	// UpURL's ended incident three days ago: six down windows (30 min).
	incStart := now.Add(-72 * time.Hour)
	sc.IncidentStart = incStart.Add(7 * time.Second)
	sc.IncidentEnd = incStart.Add(30*time.Minute + 7*time.Second)
	for ws := incStart.Add(-30 * time.Minute); ws.Before(incStart.Add(60 * time.Minute)); ws = ws.Add(5 * time.Minute) {
		down := !ws.Before(incStart) && ws.Before(incStart.Add(30*time.Minute))
		var fails int64
		for i := range 5 {
			at := ws.Add(time.Duration(i)*time.Minute + 7*time.Second)
			results = append(results, result(UpURL, at, !down))
			if down {
				fails++
			}
		}
		windows = append(windows, window(UpURL, ws, 5, fails))
	}

	// Older days of UpURL: one window at noon every other day, 10 to 40
	// days ago.
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	for d := 10; d <= 40; d += 2 {
		day := today.AddDate(0, 0, -d)
		sc.UpOldDays = append(sc.UpOldDays, day)
		windows = append(windows, window(UpURL, day.Add(12*time.Hour), 5, 0))
	}

	// HalfURL: two days ago, four windows, half the checks failed (not
	// down windows: failures*2 > checks does not hold).
	half := today.AddDate(0, 0, -2).Add(6 * time.Hour)
	for i := range 4 {
		windows = append(windows, window(HalfURL, half.Add(time.Duration(i)*5*time.Minute), 4, 2))
	}
	// Its raw checks are gone but one (retention dropped the others).
	results = append(results, result(HalfURL, half.Add(time.Minute), true))

	sc.CertNotAfter = now.Add(10*24*time.Hour + 12*time.Hour)
	for _, r := range results {
		if r.URL == UpURL && r.Outcome == codecs.OutcomeUp {
			r.TLSNotAfter = &sc.CertNotAfter
		}
	}
	sc.UpDays = map[time.Time]bool{}
	for _, w := range windows {
		if w.URL == UpURL {
			sc.UpDays[w.WindowStart.Truncate(24*time.Hour)] = true
		}
	}
	write(ctx, t, st, results, windows)

	// The status changes the alerts part makes of these checks (three
	// failures open an incident): UpURL's ended incident, DownURL's open one.
	cw, ok := st.(sinks.ChangeWriter)
	if !ok {
		t.Fatalf("%T keeps no incidents (no WriteChanges)", st)
	}
	change := func(id, url, kind string, since time.Time) *codecs.StatusChange {
		c := &codecs.StatusChange{V: 1, ChangeID: id, URL: url, Kind: kind, State: kind, Since: since,
			ChangedAt: since.Add(2 * time.Minute), Consecutive: 3, EventID: id}
		if kind == codecs.ChangeDown {
			c.PreviousState, c.ErrorKind, c.ErrorMessage = codecs.ChangeUp, s(codecs.ErrConnect), s(DownMessage)
		} else {
			c.PreviousState, c.StatusCode = codecs.ChangeDown, 200
		}
		return c
	}
	WriteChanges(t, cw,
		change("seed-up-down", UpURL, codecs.ChangeDown, sc.IncidentStart),
		change("seed-up-up", UpURL, codecs.ChangeUp, sc.IncidentEnd),
		change("seed-down-down", DownURL, codecs.ChangeDown, sc.DownSince.Add(7*time.Second)))
	return sc
}

// WriteChanges writes status changes through the store's incidents path.
func WriteChanges(t testing.TB, cw sinks.ChangeWriter, cs ...*codecs.StatusChange) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if rej, err := cw.WriteChanges(ctx, cs); err != nil || len(rej) > 0 {
		t.Fatalf("seed status changes: %v %v", err, rej)
	}
}

func write(ctx context.Context, t testing.TB, st sinks.Store, rs []*codecs.Result, ws []*codecs.Window) {
	t.Helper()
	for i := 0; i < len(rs); i += 1000 {
		rej, err := st.WriteResults(ctx, rs[i:min(i+1000, len(rs))])
		if err != nil || len(rej) > 0 {
			t.Fatalf("seed results: %v %v", err, rej)
		}
	}
	for i := 0; i < len(ws); i += 1000 {
		rej, err := st.WriteWindows(ctx, ws[i:min(i+1000, len(ws))])
		if err != nil || len(rej) > 0 {
			t.Fatalf("seed windows: %v %v", err, rej)
		}
	}
}

// CheckUpgraded checks what a store migrated up over the seeded scenario
// (written before migration 000004) reads: site_status and the rollups
// start from the rows already stored.
func CheckUpgraded(t *testing.T, r web.Reader, sc Scenario) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ls, err := r.Latest(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3 || ls[0].URL != DownURL || ls[0].Outcome != "down" || ls[0].Failure == nil || ls[0].Failure.ErrorMessage != DownMessage {
		t.Errorf("site_status after the upgrade: %+v", ls)
	}
	stats, err := r.Stats(ctx, nil, sc.Now)
	if err != nil {
		t.Fatal(err)
	}
	if c := stats[UpURL].Last24h; c.Checks != sc.ChecksUp24h {
		t.Errorf("hourly rollup after the upgrade: %+v, want %d checks", c, sc.ChecksUp24h)
	}
	if c := stats[HalfURL].Last7d; c.Checks != 16 || c.Failures != 8 {
		t.Errorf("daily rollup after the upgrade: %+v", c)
	}
}

// WebMigration is the number of the migration that adds the status page's
// tables (000004).
const WebMigration = 4

// BeforeWeb returns the newest migration before WebMigration among the
// embedded file names (NNNNNN_name.up.sql): what a store that predates
// the status page has.
func BeforeWeb(t testing.TB, names []string) uint {
	t.Helper()
	var best uint
	for _, n := range names {
		var v uint
		if _, err := fmt.Sscanf(n, "%06d_", &v); err == nil && v < WebMigration && v > best {
			best = v
		}
	}
	if best == 0 {
		t.Fatalf("no migration before %06d in %v", WebMigration, names)
	}
	return best
}

// RegionsMigration is the number of the migration that adds regions
// (000005).
const RegionsMigration = 5

// Writes of this build name the region column, which a store migrated to
// a version before RegionsMigration lacks. A test that seeds such a store
// with this build's Store runs LegacyRegionColumns first, so the writes go
// through, and DropLegacyRegionColumns after, so the store is as the old
// build left it when the upgrade runs. The statements are the same in
// PostgreSQL and SQLite.
var (
	LegacyRegionColumns = []string{
		`ALTER TABLE check_results ADD COLUMN region text NOT NULL DEFAULT 'default'`,
		`ALTER TABLE check_windows ADD COLUMN region text NOT NULL DEFAULT 'default'`,
		`CREATE UNIQUE INDEX sitewatch_legacy_region ON check_windows (url, region, window_start)`,
	}
	DropLegacyRegionColumns = []string{
		`DROP INDEX sitewatch_legacy_region`,
		`ALTER TABLE check_windows DROP COLUMN region`,
		`ALTER TABLE check_results DROP COLUMN region`,
	}
)
