package report_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/report"
	"github.com/sitewatch/sitewatch/report/reporttest"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/sinks/postgres"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// store is what the shared tests need of a backend: the report's source
// and the sink's writer to seed it.
type store interface {
	report.Source
	sinks.Store
}

type backend struct {
	name string
	open func(t *testing.T) (store, *rawDB)
}

// rawDB runs SQL on a backend's database, for what the stores do not
// write (the incidents table before the alerts part writes it).
type rawDB struct {
	exec func(ctx context.Context, query string, args ...any) error
	// time is a timestamp as the backend stores it, in a column of
	// timeType.
	time     func(time.Time) any
	timeType string
}

// backends are the stores every test body runs against.
var backends = []backend{
	{"postgres", func(t *testing.T) (store, *rawDB) {
		url, s := reporttest.OpenPostgres(t)
		conn, err := pgx.Connect(testCtx(t), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		return s, &rawDB{
			exec: func(ctx context.Context, q string, args ...any) error {
				_, err := conn.Exec(ctx, q, args...)
				return err
			},
			time: func(t time.Time) any { return t }, timeType: "timestamptz",
		}
	}},
	{"sqlite", func(t *testing.T) (store, *rawDB) {
		s := reporttest.OpenSQLite(t)
		return s, &rawDB{
			exec: func(ctx context.Context, q string, args ...any) error {
				_, err := s.DB().ExecContext(ctx, q, args...)
				return err
			},
			time: func(t time.Time) any { return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") }, timeType: "text",
		}
	}},
}

func forEachBackend(t *testing.T, body func(t *testing.T, s store, db *rawDB)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, db := b.open(t)
			body(t, s, db)
		})
	}
}

// hasIncidentsTable says whether the store's migrations made the
// incidents table (000003, from the alerts work).
func hasIncidentsTable(t *testing.T, s store) bool {
	t.Helper()
	_, ok, err := s.(report.IncidentCounter).CountIncidents(testCtx(t), reporttest.From, reporttest.To)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func write(t *testing.T, s sinks.Store, rs []*codecs.Result) {
	t.Helper()
	ctx := testCtx(t)
	for start := 0; start < len(rs); start += 1000 {
		batch := rs[start:min(start+1000, len(rs))]
		rej, err := s.WriteResults(ctx, batch)
		if err != nil || len(rej) > 0 {
			t.Fatalf("seed: %v %v", rej, err)
		}
	}
}

func f(v float64) *float64 { return &v }

func sec(s float64) report.Seconds { return report.Seconds(time.Duration(s * float64(time.Second))) }

// wantSites are the figures of seedChecks, computed by hand (see the
// comments); LongestDown and the budgets for an SLO of 80 %.
func wantSites() []report.SiteReport {
	return []report.SiteReport{{
		URL: reporttest.URLA, Name: "Alpha", Interval: report.Duration(time.Minute), IntervalSource: report.IntervalFromSites,
		// k = 0..59 without the ten offline slots, and the extra check.
		Checks: 51, Failures: 6,
		UptimeChecksPercent: f(100 * 45.0 / 51),
		// Up: 30 s (before the range) + 20 min + 10 min + 30 s (the extra
		// check) + 5 min + 8 min + 30 s (k=59, cut at the end). Down: four
		// minutes (k=40..43) + 30 s (k=44, cut by the extra check) + 1 min
		// (k=50). Unknown: the ten offline minutes.
		UptimeTimePercent: f(100 * 2670.0 / 3000),
		Up:                sec(2670), Down: sec(330), Unknown: sec(600),
		// 44 up checks with 10+k ms, the extra 5 ms, and 500 and 600 ms:
		// 47 values 5, 10–29, 40–49, 55–59, 61–69, 500, 600.
		// percentile_cont's float arithmetic gives 68.7 and 554 as the nearest
		// doubles below them; PostgreSQL gives the same bits.
		Responses: 47, P50MS: f(42), P95MS: f(68.69999999999999), P99MS: f(553.9999999999999),
		FailuresByKind: map[string]int64{codecs.ErrTimeout: 3, codecs.ErrStatus: 2, codecs.ErrConnect: 1},
		// [40:30, 45:00) and [50:30, 51:30).
		Incidents: 2, DownPeriods: 2, LongestDown: sec(270),
		Budget: &report.Budget{Allowed: sec(600), Left: sec(270), LeftPercent: f(45)},
	}, {
		URL: reporttest.URLC, Name: "Charlie", Interval: report.Duration(30 * time.Second), IntervalSource: report.IntervalFromSites,
		Unknown:        sec(3600),
		FailuresByKind: map[string]int64{},
		Budget:         &report.Budget{},
	}, {
		URL: reporttest.URLB, Name: reporttest.URLB, Interval: report.Duration(2 * time.Minute), IntervalSource: report.IntervalInferred,
		Checks: 4, Failures: 1, UptimeChecksPercent: f(75), UptimeTimePercent: f(75),
		Up: sec(360), Down: sec(120), Unknown: sec(3120),
		// 100, 200, 400.
		Responses: 3, P50MS: f(200), P95MS: f(380), P99MS: f(396),
		FailuresByKind: map[string]int64{codecs.ErrDNS: 1},
		Incidents:      1, DownPeriods: 1, LongestDown: sec(120),
		Budget: &report.Budget{Allowed: sec(96), Left: sec(-24), LeftPercent: f(-25)},
	}, {
		// Not counted (scheduled before the range) but holds its first
		// 40 s, down, with the default interval.
		URL: reporttest.URLD, Name: reporttest.URLD, Interval: report.Duration(time.Minute), IntervalSource: report.IntervalFromDefault,
		UptimeTimePercent: f(0), Down: sec(40), Unknown: sec(3560),
		FailuresByKind: map[string]int64{},
		Incidents:      1, DownPeriods: 1, LongestDown: sec(40),
		Budget: &report.Budget{Allowed: sec(8), Left: sec(-32), LeftPercent: f(-400)},
	}}
}

// sameFloat compares exactly: the figures are computed, not estimated.
func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func compareSite(t *testing.T, got, want report.SiteReport) {
	t.Helper()
	errf := func(field string, g, w any) { t.Errorf("%s %s = %v, want %v", want.URL, field, g, w) }
	deref := func(p *float64) any {
		if p == nil {
			return "null"
		}
		return *p
	}
	if got.URL != want.URL || got.Name != want.Name || got.Interval != want.Interval || got.IntervalSource != want.IntervalSource {
		errf("identity", []any{got.URL, got.Name, got.Interval, got.IntervalSource}, []any{want.URL, want.Name, want.Interval, want.IntervalSource})
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"checks", got.Checks, want.Checks}, {"failures", got.Failures, want.Failures},
		{"up", int64(got.Up), int64(want.Up)}, {"down", int64(got.Down), int64(want.Down)},
		{"unknown", int64(got.Unknown), int64(want.Unknown)}, {"responses", got.Responses, want.Responses},
		{"incidents", got.Incidents, want.Incidents}, {"down periods", got.DownPeriods, want.DownPeriods},
		{"longest down", int64(got.LongestDown), int64(want.LongestDown)},
	} {
		if c.got != c.want {
			errf(c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		name      string
		got, want *float64
	}{
		{"uptime by checks", got.UptimeChecksPercent, want.UptimeChecksPercent},
		{"uptime by time", got.UptimeTimePercent, want.UptimeTimePercent},
		{"p50", got.P50MS, want.P50MS}, {"p95", got.P95MS, want.P95MS}, {"p99", got.P99MS, want.P99MS},
	} {
		if !sameFloat(c.got, c.want) {
			errf(c.name, deref(c.got), deref(c.want))
		}
	}
	if fmt.Sprint(got.FailuresByKind) != fmt.Sprint(want.FailuresByKind) {
		errf("failures by kind", got.FailuresByKind, want.FailuresByKind)
	}
	switch {
	case (got.Budget == nil) != (want.Budget == nil):
		errf("budget", got.Budget, want.Budget)
	case got.Budget != nil:
		g, w := got.Budget, want.Budget
		if g.Allowed != w.Allowed || g.Left != w.Left || !sameFloat(g.LeftPercent, w.LeftPercent) {
			errf("budget", []any{g.Allowed, g.Left, deref(g.LeftPercent)}, []any{w.Allowed, w.Left, deref(w.LeftPercent)})
		}
	}
}

func TestReportFiguresOnEveryStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store, _ *rawDB) {
		write(t, s, reporttest.Results())
		slo, err := report.ParseSLO("slo", "80")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := report.Build(testCtx(t), s, report.Options{From: reporttest.From, To: reporttest.To, SLO: slo, Sites: reporttest.Sites})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		want := wantSites()
		// Incidents are the down periods unless the store has an
		// incidents table, here empty (nothing ran the alerts part).
		wantSource := report.IncidentsFromDownRun
		if hasIncidentsTable(t, s) {
			wantSource = report.IncidentsFromTable
			for i := range want {
				want[i].Incidents = 0
			}
		}
		if rep.Range != sec(3600) || *rep.SLOPercent != 80 || rep.IncidentsSource != wantSource {
			t.Errorf("report header: range %v, slo %v, incidents from %q", rep.Range, *rep.SLOPercent, rep.IncidentsSource)
		}
		if len(rep.Sites) != len(want) {
			t.Fatalf("%d sites, want %d: %+v", len(rep.Sites), len(want), rep.Sites)
		}
		for i := range want {
			compareSite(t, rep.Sites[i], want[i])
		}
	})
}

func TestReportWithoutSLOHasNoBudget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store, _ *rawDB) {
		write(t, s, reporttest.Results())
		rep, err := report.Build(testCtx(t), s, report.Options{From: reporttest.From, To: reporttest.To})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		// Without the sites file: no Charlie, and Alpha under its URL
		// with its interval inferred (the median spacing, 60 s).
		if len(rep.Sites) != 3 || rep.SLOPercent != nil {
			t.Fatalf("sites %d, slo %v", len(rep.Sites), rep.SLOPercent)
		}
		a := rep.Sites[0]
		if a.URL != reporttest.URLA || a.Name != reporttest.URLA || a.Interval != report.Duration(time.Minute) || a.IntervalSource != report.IntervalInferred || a.Budget != nil {
			t.Errorf("site A without sites file: %+v", a)
		}
		if a.Up != sec(2670) || a.Down != sec(330) {
			t.Errorf("site A up %v down %v, want 2670 and 330", a.Up, a.Down)
		}
	})
}

// A range that cuts a down period counts only its part inside.
func TestReportClipsDownPeriodsToTheRange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store, _ *rawDB) {
		write(t, s, reporttest.Results())
		// [42:00, 50:00): k=41 (41:30) holds 30 s into it, k=42, k=43
		// down, k=44 down until the extra check at 45:00.
		rep, err := report.Build(testCtx(t), s, report.Options{From: reporttest.From.Add(42 * time.Minute), To: reporttest.From.Add(50 * time.Minute), Sites: reporttest.Sites[:1]})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		a := rep.Sites[0]
		if a.Down != sec(180) || a.LongestDown != sec(180) || a.DownPeriods != 1 || a.Up != sec(300) || a.Unknown != 0 {
			t.Errorf("clipped: down %v longest %v periods %d up %v unknown %v; want 180, 180, 1, 300, 0", a.Down, a.LongestDown, a.DownPeriods, a.Up, a.Unknown)
		}
		// Checks k=42..49 (8) and the extra one; failures k=42..44.
		if a.Checks != 9 || a.Failures != 3 {
			t.Errorf("clipped: checks %d failures %d, want 9 and 3", a.Checks, a.Failures)
		}
	})
}

// With an incidents table, incidents are its rows overlapping the range;
// the downtime figures still come from the checks.
func TestReportCountsIncidentsFromTheTable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store, db *rawDB) {
		write(t, s, reporttest.Results())
		ctx := testCtx(t)
		if !hasIncidentsTable(t, s) {
			// The columns of migration 000003 (docs/CONTRACT.md), for a
			// store from before it.
			if err := db.exec(ctx, `CREATE TABLE incidents (url text NOT NULL, started_at `+db.timeType+` NOT NULL, ended_at `+db.timeType+`,
				cause_kind text, cause_message text, failed_checks integer NOT NULL,
				down_change_id text PRIMARY KEY, up_change_id text)`); err != nil {
				t.Fatal(err)
			}
		}
		at := func(d time.Duration) any { return db.time(reporttest.From.Add(d)) }
		for i, inc := range []struct {
			url        string
			start, end time.Duration
			open       bool
		}{
			{reporttest.URLA, -10 * time.Minute, 5 * time.Minute, false}, // overlaps the start: counted
			{reporttest.URLA, 40 * time.Minute, 45 * time.Minute, false}, // inside: counted
			{reporttest.URLA, -time.Hour, 0, false},                      // ended as the range began: not
			{reporttest.URLA, time.Hour, 0, true},                        // starts as it ends: not
			{reporttest.URLB, 12 * time.Minute, 0, true},                 // still open: counted
		} {
			var end, up any
			if !inc.open {
				end, up = at(inc.end), fmt.Sprintf("up-%d", i)
			}
			if err := db.exec(ctx, `INSERT INTO incidents (url, started_at, ended_at, cause_kind, cause_message, failed_checks, down_change_id, up_change_id)
				VALUES ($1, $2, $3, 'timeout', 'timed out', 3, $4, $5)`, inc.url, at(inc.start), end, fmt.Sprintf("down-%d", i), up); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := report.Build(ctx, s, report.Options{From: reporttest.From, To: reporttest.To, Sites: reporttest.Sites})
		if err != nil {
			t.Fatal(err)
		}
		if rep.IncidentsSource != report.IncidentsFromTable {
			t.Errorf("incidents from %q, want the table", rep.IncidentsSource)
		}
		got := map[string][2]int64{}
		for _, sr := range rep.Sites {
			got[sr.URL] = [2]int64{sr.Incidents, sr.DownPeriods}
		}
		want := map[string][2]int64{reporttest.URLA: {2, 2}, reporttest.URLB: {1, 1}, reporttest.URLC: {0, 0}, reporttest.URLD: {0, 1}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("incidents, down periods per site %v, want %v", got, want)
		}
	})
}

// countingSource counts the store's queries.
type countingSource struct {
	report.Source
	scans int
}

func (c *countingSource) ScanChecks(ctx context.Context, from, to time.Time, fn func(report.Check) error) error {
	c.scans++
	return c.Source.ScanChecks(ctx, from, to, fn)
}

func TestReportIsOneQueryWhateverTheSites(t *testing.T) {
	s := reporttest.OpenSQLite(t)
	var rs []*codecs.Result
	var many []report.Site
	for i := range 200 {
		url := fmt.Sprintf("https://s%03d.example/", i)
		many = append(many, report.Site{URL: url, Interval: time.Minute})
		for k := range 5 {
			rt := 1.0
			at := reporttest.From.Add(time.Duration(k) * time.Minute)
			rs = append(rs, &codecs.Result{V: 1, EventID: fmt.Sprintf("%d-%d", i, k), URL: url, ScheduledAt: at, CheckedAt: at,
				Outcome: codecs.OutcomeUp, StatusCode: 200, ResponseTimeMS: &rt, Checker: "test"})
		}
	}
	write(t, s, rs)
	cs := &countingSource{Source: s}
	rep, err := report.Build(testCtx(t), cs, report.Options{From: reporttest.From, To: reporttest.To, Sites: many})
	if err != nil {
		t.Fatal(err)
	}
	if cs.scans != 1 || len(rep.Sites) != 200 || rep.Sites[199].Checks != 5 {
		t.Errorf("%d queries for %d sites (last has %d checks), want 1 query", cs.scans, len(rep.Sites), rep.Sites[199].Checks)
	}
}

// The Go percentiles equal PostgreSQL's percentile_cont to the bit, and
// SQLite's report equals PostgreSQL's, on random data.
func TestPercentilesEqualPostgreSQLs(t *testing.T) {
	url, pg := reporttest.OpenPostgres(t)
	lite := reporttest.OpenSQLite(t)
	rng := rand.New(rand.NewPCG(11, 12))
	var rs []*codecs.Result
	for i := range 3 {
		u := fmt.Sprintf("https://r%d.example/", i)
		for k := range 700 {
			at := reporttest.From.Add(time.Duration(k)*5*time.Second + time.Duration(rng.IntN(1000))*time.Millisecond)
			r := testkit.RandomResult(rng, u, fmt.Sprintf("%d-%d", i, k), at, "test")
			r.V = 1
			rs = append(rs, r)
		}
	}
	write(t, pg, rs)
	write(t, lite, rs)
	ctx := testCtx(t)
	opts := report.Options{From: reporttest.From, To: reporttest.To}
	got, err := report.Build(ctx, pg, opts)
	if err != nil {
		t.Fatal(err)
	}
	gotLite, err := report.Build(ctx, lite, opts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if len(got.Sites) != 3 {
		t.Fatalf("%d sites", len(got.Sites))
	}
	for i, s := range got.Sites {
		var p50, p95, p99 float64
		var n int64
		err := conn.QueryRow(ctx, `SELECT count(response_time_ms),
		        percentile_cont(0.50) WITHIN GROUP (ORDER BY response_time_ms),
		        percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms),
		        percentile_cont(0.99) WITHIN GROUP (ORDER BY response_time_ms)
		   FROM check_results WHERE url = $1 AND scheduled_at >= $2 AND scheduled_at < $3`, s.URL, reporttest.From, reporttest.To).Scan(&n, &p50, &p95, &p99)
		if err != nil {
			t.Fatal(err)
		}
		if s.Responses != n || *s.P50MS != p50 || *s.P95MS != p95 || *s.P99MS != p99 {
			t.Errorf("%s: report %d %v %v %v, percentile_cont %d %v %v %v", s.URL, s.Responses, *s.P50MS, *s.P95MS, *s.P99MS, n, p50, p95, p99)
		}
		l := gotLite.Sites[i]
		if l.P50MS == nil || *l.P50MS != p50 || *l.P95MS != p95 || *l.P99MS != p99 || l.Checks != s.Checks || l.Up != s.Up || l.Down != s.Down {
			t.Errorf("%s: sqlite %+v differs from postgres %+v", s.URL, l, s)
		}
	}
}

func TestPercentileContMatchesTheDefinition(t *testing.T) {
	v := []float64{100, 200, 400}
	for _, c := range []struct{ p, want float64 }{{0, 100}, {0.5, 200}, {0.75, 300}, {1, 400}} {
		if got := report.PercentileCont(v, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := report.PercentileCont([]float64{7}, 0.99); got != 7 {
		t.Errorf("one value: %v", got)
	}
}

func TestSLOAllowedIsExact(t *testing.T) {
	for _, c := range []struct {
		slo   string
		known time.Duration
		want  time.Duration
	}{
		{"99.9", 3000 * time.Second, 3 * time.Second},
		{"99.99", 30 * 24 * time.Hour, 259200 * time.Millisecond},
		{"100", time.Hour, 0},
		{"0.000001", time.Second, time.Second - 10}, // a millionth of a percent is 1e-8
	} {
		s, err := report.ParseSLO("slo", c.slo)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Allowed(c.known); got != c.want {
			t.Errorf("slo %s over %v allows %v, want %v", c.slo, c.known, got, c.want)
		}
	}
}

// A database whose collation is linguistic (en-US) orders ".../a" before
// ".../B", bytes the other way round; the report must still read every
// site.
func TestReportOnADatabaseWithALinguisticCollation(t *testing.T) {
	testkit.Postgres(t) // skips (or fails under CI) when no server answers
	ctx := testCtx(t)
	url, drop, err := testkit.CreateDatabase(ctx, "sw_test_icu_", "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
	if err != nil {
		t.Skipf("SKIPPING: this server cannot make an ICU database: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Log(err)
		}
	})
	if err := postgres.Migrate(ctx, url, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rs []*codecs.Result
	for i, u := range []string{"https://x.example/B", "https://x.example/a", "https://x.example/c"} {
		for k := range 3 {
			at := reporttest.From.Add(time.Duration(k) * time.Minute)
			rs = append(rs, &codecs.Result{V: 1, EventID: fmt.Sprintf("%d-%d", i, k), URL: u, ScheduledAt: at, CheckedAt: at,
				Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "test"})
		}
	}
	write(t, s, rs)
	rep, err := report.Build(ctx, s, report.Options{From: reporttest.From, To: reporttest.To})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if len(rep.Sites) != 3 {
		t.Fatalf("%d sites, want 3", len(rep.Sites))
	}
	for _, sr := range rep.Sites {
		if sr.Checks != 3 {
			t.Errorf("%s: %d checks, want 3", sr.URL, sr.Checks)
		}
	}
}

// TestReportCountsEveryRegion: two regions check one site every minute;
// the report counts both regions' checks (each slot twice), and its time
// figures walk one timeline where a slot is down when any region saw it
// down.
func TestReportCountsEveryRegion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store, _ *rawDB) {
		const u = "https://regions.example/"
		from := reporttest.From
		var rs []*codecs.Result
		for i := range 10 {
			at := from.Add(time.Duration(i) * time.Minute)
			for _, region := range []string{codecs.DefaultRegion, "eu"} {
				r := &codecs.Result{EventID: fmt.Sprintf("%s-%d", region, i), URL: u, Region: region, ScheduledAt: at, CheckedAt: at.Add(time.Second),
					Outcome: codecs.OutcomeUp, StatusCode: 200, ResponseTimeMS: ptr(10.0), BodyBytes: 1, Checker: region}
				if region == "eu" && i >= 8 { // eu sees the last two slots down
					r.Outcome, r.StatusCode, r.ResponseTimeMS, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, 0, nil, ptr(codecs.ErrTimeout), ptr("timeout")
				}
				rs = append(rs, r)
			}
		}
		write(t, s, rs)
		rep, err := report.Build(testCtx(t), s, report.Options{From: from, To: from.Add(10 * time.Minute),
			Sites: []report.Site{{URL: u, Interval: time.Minute}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Sites) != 1 {
			t.Fatalf("sites: %+v", rep.Sites)
		}
		got := rep.Sites[0]
		if got.Checks != 20 || got.Failures != 2 || got.Responses != 18 {
			t.Errorf("checks %d failures %d responses %d, want 20, 2, 18 (both regions)", got.Checks, got.Failures, got.Responses)
		}
		if got.Up != sec(480) || got.Down != sec(120) || got.DownPeriods != 1 {
			t.Errorf("up %v down %v down periods %d, want 480 s, 120 s, 1", got.Up, got.Down, got.DownPeriods)
		}
	})
}

func ptr[T any](v T) *T { return &v }
