package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// windowSize is the -window-size of the end-to-end tests: short, so that
// windows close within seconds instead of five minutes.
const windowSize = 2 * time.Second

func TestRestartContinuesHistorySQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	dataDir := t.TempDir()
	testRestart(t, dataDir, nil, func() *store {
		return openStore(t, "sqlite", "file:"+filepath.Join(dataDir, "sitewatch.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	})
	if _, err := os.Stat(filepath.Join(dataDir, "sitewatch.db")); err != nil {
		t.Errorf("no SQLite database in the data directory: %v", err)
	}
}

func TestRestartContinuesHistoryPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	dbURL := testkit.Postgres(t)
	dataDir := t.TempDir()
	testRestart(t, dataDir, []string{"-database-url", dbURL}, func() *store { return openStore(t, "pgx", dbURL) })
	if _, err := os.Stat(filepath.Join(dataDir, "sitewatch.db")); !os.IsNotExist(err) {
		t.Errorf("a SQLite database was created although -database-url was given (stat: %v)", err)
	}
}

// testRestart runs sitewatch on local sites with the embedded Kafka until
// every site has closed windows, stops it, runs it again on the same data
// directory until more windows close, stops it, and checks that the
// history continued: every result on Kafka stored exactly once, no slot
// checked twice, and every window equal to what the raw rows say.
func testRestart(t *testing.T, dataDir string, extra []string, open func() *store) {
	sitesFile, sites := sitesFixture(t)
	args := append([]string{
		"-sites", sitesFile, "-data-dir", dataDir, "-window-size", windowSize.String(),
		"-flush-interval", "200ms", "-table", "off", "-log-level", "debug",
	}, extra...)
	db := open()

	// closedSince counts, per URL, the stored windows starting at or
	// after since.
	closedSince := func(since time.Time) map[string]int {
		m := map[string]int{}
		ws, _ := db.tryWindows() // fails until the program has made the tables
		for _, w := range ws {
			if !w.Start.Before(since) {
				m[w.URL]++
			}
		}
		return m
	}
	waitWindows := func(since time.Time, want int, logs *syncBuffer) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			m := closedSince(since)
			ok := true
			for _, s := range sites {
				ok = ok && m[s.url] >= want
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("windows since %v per site: %v, want %d each; logs:\n%s", since, m, want, logs.String())
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	start1 := time.Now().UTC()
	stop, _, logs := startSitewatch(t, args...)
	waitWindows(start1.Add(-windowSize), 2, logs)
	if code := stop(); code != 0 {
		t.Fatalf("first run: exit status %d; logs:\n%s", code, logs.String())
	}
	first := db.results(t)
	stopped := time.Now().UTC()
	// Without the table, sites going down are log lines.
	for _, s := range sites {
		got := false
		for _, l := range strings.Split(logs.String(), "\n") {
			got = got || strings.Contains(l, `msg="site down" component=dashboard`) && strings.Contains(l, " url="+s.url+" ")
		}
		if got == s.up {
			t.Errorf("%s: site-down log line present=%v, want %v", s.url, got, !s.up)
		}
	}
	if !strings.Contains(logs.String(), "processor caught up") {
		t.Errorf("first run did not wait for the processor to store everything; logs:\n%s", logs.String())
	}

	stop, _, logs = startSitewatch(t, args...)
	waitWindows(stopped, 2, logs)
	if code := stop(); code != 0 {
		t.Fatalf("second run: exit status %d; logs:\n%s", code, logs.String())
	}
	results := db.results(t)
	ws := db.windows(t)
	if len(results) <= len(first) {
		t.Fatalf("second run stored nothing: %d results after it, %d after the first", len(results), len(first))
	}

	// Every result on Kafka is stored exactly once, and nothing else.
	inKafka := kafkaEventIDs(t, filepath.Join(dataDir, "kafka"))
	stored := map[string]int{}
	for _, r := range results {
		stored[r.EventID]++
	}
	for id, n := range inKafka {
		if n != 1 {
			t.Errorf("event %s on Kafka %d times", id, n)
		}
		if stored[id] != 1 {
			t.Errorf("event %s on Kafka stored %d times", id, stored[id])
		}
	}
	for id := range stored {
		if inKafka[id] == 0 {
			t.Errorf("stored event %s is not on Kafka", id)
		}
	}
	if len(stored) != len(results) {
		t.Errorf("%d rows for %d event ids", len(results), len(stored))
	}
	for _, r := range first {
		if stored[r.EventID] != 1 {
			t.Errorf("first run's event %s lost after the restart", r.EventID)
		}
	}

	// Each site: checked in both runs, each slot once, the right outcome,
	// and as many checks as requests that reached it.
	byURL := map[string][]rawResult{}
	for _, r := range results {
		byURL[r.URL] = append(byURL[r.URL], r)
	}
	for _, s := range sites {
		rs := byURL[s.url]
		slots := map[time.Time]bool{}
		var before, after int
		for _, r := range rs {
			if slots[r.ScheduledAt] {
				t.Errorf("%s: slot %v checked twice", s.url, r.ScheduledAt)
			}
			slots[r.ScheduledAt] = true
			if r.CheckedAt.Before(stopped) {
				before++
			} else {
				after++
			}
			if (r.Outcome == codecs.OutcomeUp) != s.up {
				t.Errorf("%s: outcome %s, want up=%v", s.url, r.Outcome, s.up)
			}
			if !s.up && (r.ErrorKind == nil || *r.ErrorKind != s.kind) {
				t.Errorf("%s: error_kind %v, want %s", s.url, r.ErrorKind, s.kind)
			}
			if (r.ResponseMS == nil) != s.noResp {
				t.Errorf("%s: response_time_ms %v, want present=%v", s.url, r.ResponseMS, !s.noResp)
			}
		}
		if before == 0 || after == 0 {
			t.Errorf("%s: %d checks before the restart and %d after; want both", s.url, before, after)
		}
		if hits := s.hits.Load(); !s.noResp && hits != int64(len(rs)) {
			t.Errorf("%s: %d requests reached the site for %d stored checks", s.url, hits, len(rs))
		}
	}

	// Windows: every row equals the raw rows it covers, and every window
	// that the newest check of its site has closed is stored, the one
	// across the restart included.
	type key struct {
		url   string
		start time.Time
	}
	raw := map[key][]rawResult{}
	newest := map[string]time.Time{}
	for _, r := range results {
		k := key{r.URL, r.CheckedAt.Truncate(windowSize)}
		raw[k] = append(raw[k], r)
		if r.CheckedAt.After(newest[r.URL]) {
			newest[r.URL] = r.CheckedAt
		}
	}
	got := map[key]windowRow{}
	for _, w := range ws {
		k := key{w.URL, w.Start}
		if _, dup := got[k]; dup {
			t.Errorf("window %v stored twice", k)
		}
		got[k] = w
		if !w.End.Equal(w.Start.Add(windowSize)) || !w.Start.Equal(w.Start.Truncate(windowSize)) {
			t.Errorf("window %v–%v is not an aligned %v window", w.Start, w.End, windowSize)
		}
		compareWindow(t, w, recompute(raw[k]))
	}
	var acrossRestart int
	for k, rs := range raw {
		if k.start.Add(windowSize).After(newest[k.url]) {
			continue // still open when the program stopped
		}
		if _, ok := got[k]; !ok {
			t.Errorf("window %s %v with %d checks was never stored", k.url, k.start, len(rs))
		}
		if k.start.Before(stopped) && !k.start.Add(windowSize).Before(stopped) {
			acrossRestart++
		}
	}
	t.Logf("%d results (%d in the first run), %d windows, %d windows open across the restart", len(results), len(first), len(ws), acrossRestart)
}

// compareWindow checks a stored window against the one computed from the
// raw rows: counts exact, min/max/avg to rounding, percentiles exact
// (percentile_cont within 0.001 ms) up to codecs.MaxExactResponses
// responses, within the histogram's 1% above.
func compareWindow(t *testing.T, got, want windowRow) {
	t.Helper()
	id := fmt.Sprintf("%s %v", got.URL, got.Start)
	if got.Checks != want.Checks || got.Failures != want.Failures || got.Responses != want.Responses || got.RegexpFailures != want.RegexpFailures {
		t.Errorf("%s: checks/failures/responses/regexp_failures %d/%d/%d/%d, raw rows say %d/%d/%d/%d", id,
			got.Checks, got.Failures, got.Responses, got.RegexpFailures, want.Checks, want.Failures, want.Responses, want.RegexpFailures)
	}
	if fmt.Sprint(got.StatusCounts) != fmt.Sprint(want.StatusCounts) {
		t.Errorf("%s: status_counts %v, raw rows say %v", id, got.StatusCounts, want.StatusCounts)
	}
	if !got.Exact && want.Responses <= codecs.MaxExactResponses {
		t.Errorf("%s: percentiles_exact false with %d responses", id, want.Responses)
	}
	pctRel, pctAbs := 0.01, 1e-9
	if got.Exact {
		pctRel, pctAbs = 0, 0.001
	}
	for _, c := range []struct {
		name      string
		got, want *float64
		rel, abs  float64
	}{
		{"min", got.MinMS, want.MinMS, 1e-9, 1e-9}, {"max", got.MaxMS, want.MaxMS, 1e-9, 1e-9}, {"avg", got.AvgMS, want.AvgMS, 1e-9, 1e-9},
		{"p50", got.P50MS, want.P50MS, pctRel, pctAbs}, {"p95", got.P95MS, want.P95MS, pctRel, pctAbs}, {"p99", got.P99MS, want.P99MS, pctRel, pctAbs},
	} {
		switch {
		case (c.got == nil) != (c.want == nil):
			t.Errorf("%s: %s %v, raw rows say %v", id, c.name, c.got, c.want)
		case c.got != nil && math.Abs(*c.got-*c.want) > c.rel*math.Abs(*c.want)+c.abs:
			t.Errorf("%s: %s %v, raw rows say %v", id, c.name, *c.got, *c.want)
		}
	}
}

func TestTableModeLogsToFile(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	sitesFile, _ := sitesFixture(t)
	dataDir := t.TempDir()
	metricsAddr := freeAddr(t)
	stop, stdout, stderr := startSitewatch(t, "-sites", sitesFile, "-data-dir", dataDir, "-table", "on", "-table-refresh", "100ms",
		"-metrics-addr", metricsAddr)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(lastFrame(stdout.String()), "5 sites: 2 up, 3 down") {
		if time.Now().After(deadline) {
			t.Fatalf("table never showed every site checked; last frame:\n%s\nstderr: %s", lastFrame(stdout.String()), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	frame := lastFrame(stdout.String())
	logPath := filepath.Join(dataDir, "sitewatch.log")
	if !strings.Contains(frame, "logs: "+logPath) {
		t.Errorf("table does not say where the logs go (%s):\n%s", logPath, frame)
	}
	if first := strings.SplitN(frame, "\n", 2)[0]; !regexp.MustCompile(`Kafka 127\.0\.0\.1:\d+ `).MatchString(first) {
		t.Errorf("first line %q does not say where the embedded Kafka listens", first)
	}
	if !strings.Contains(frame, "stored after") {
		t.Errorf("table does not say when the window in progress is stored:\n%s", frame)
	}
	for _, want := range []string{"fast and fine", "nothing listens here", "connection refused", "status 503", "never-there"} {
		if !strings.Contains(frame, want) {
			t.Errorf("table lacks %q:\n%s", want, frame)
		}
	}
	// The emitter's and the processor's metrics share one registry. The
	// processor's parts register theirs as they start, which on a loaded
	// machine can be after the table shows every site: poll, bounded.
	names := []string{"sitewatch_checks_total", "sitewatch_schedule_sites", "sitewatch_windows_events_consumed_total", "sitewatch_sink_rows_written_total",
		`sitewatch_sink_dead_letters_total{reason="decode",sink="results"} 0`}
	var lacking []string
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		body = scrape(t, metricsAddr)
		lacking = lacking[:0]
		for _, name := range names {
			if !strings.Contains(body, "\n"+name) {
				lacking = append(lacking, name)
			}
		}
		if len(lacking) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(lacking) > 0 {
		t.Errorf("/metrics lacks %v", lacking)
	}
	// Every metric says what it counts in its own words.
	helps := map[string]string{}
	for _, l := range strings.Split(body, "\n") {
		if h, ok := strings.CutPrefix(l, "# HELP "); ok {
			name, text, _ := strings.Cut(h, " ")
			if other, dup := helps[text]; dup {
				t.Errorf("%s and %s share the HELP text %q", other, name, text)
			}
			helps[text] = name
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
	}
	if stderr.String() != "" {
		t.Errorf("logs went to stderr while the table was on:\n%s", stderr.String())
	}
	logs, err := os.ReadFile(logPath)
	if err != nil || !strings.Contains(string(logs), "emitter starting") || !strings.Contains(string(logs), "embedded kafka stopped") {
		t.Errorf("log file %s lacks the run's logs (%v):\n%s", logPath, err, logs)
	}
	if !strings.Contains(stdout.String(), "sitewatch stopped; the history is kept in "+dataDir) {
		out := stdout.String()
		t.Errorf("no closing line on stdout: %q", out[max(0, len(out)-200):])
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lastFrame is the last complete table drawn (between two cursor-home
// sequences), without the terminal's control sequences.
func lastFrame(out string) string {
	frames := strings.Split(out, "\x1b[H")
	f := frames[len(frames)-1]
	if i := strings.Index(f, "\x1b[J"); i >= 0 {
		f = f[:i]
	} else if len(frames) > 1 {
		f = frames[len(frames)-2]
	}
	return strings.ReplaceAll(f, "\x1b[K", "")
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", "sites:\n  - url: ftp://example.com/\n")
	good := write("good.yaml", "sites:\n  - url: http://127.0.0.1:1/\n")
	aFile := write("file", "not a directory")

	held := filepath.Join(dir, "held")
	lock, err := app.OpenDataDir(held)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad sites file", []string{"-sites", bad, "-data-dir", filepath.Join(dir, "d1")}, 2, bad + ":2:"},
		// Without -sites the all-in-one runs on the registry's sites
		// (TestAllInOneWithoutSitesFile); a -sites that is not there is
		// still a mistake.
		{"missing sites file", []string{"-sites", filepath.Join(dir, "nope.yaml"), "-data-dir", filepath.Join(dir, "d2")}, 2, filepath.Join(dir, "nope.yaml")},
		{"unknown flag", []string{"-frobnicate"}, 2, "-frobnicate: no such flag (-h lists them)"},
		{"misspelt flag", []string{"-site", good}, 2, "-site: no such flag; did you mean -sites?"},
		{"duration without unit", []string{"-sites", good, "-window-size", "60"}, 2, `-window-size: "60" has no unit; write e.g. 60s or 60ms`},
		{"bad table mode", []string{"-sites", good, "-table", "sometimes"}, 2, "-table"},
		{"data dir under a file", []string{"-sites", good, "-data-dir", filepath.Join(aFile, "data")}, 1, "-data-dir " + filepath.Join(aFile, "data") + ": cannot create it: not a directory"},
		{"data dir in use", []string{"-sites", good, "-data-dir", held}, 1, "-data-dir " + held + ": in use by another sitewatch (pid " + fmt.Sprint(os.Getpid()) + ")"},
		{"database url of another database", []string{"-sites", good, "-data-dir", filepath.Join(dir, "d3"), "-database-url", "mysql://u:secret@127.0.0.1/db"},
			2, `-database-url: "mysql://": unsupported scheme; use postgres:// or sqlite://`},
		{"database that does not answer", []string{"-sites", good, "-data-dir", filepath.Join(dir, "d4"), "-database-url", "postgres://postgres@" + freeAddr(t) + "/x?sslmode=disable"},
			1, "-database-url: postgresql: connect: "},
		{"sqlite in a missing directory", []string{"-sites", good, "-data-dir", filepath.Join(dir, "d5"), "-database-url", "sqlite://" + filepath.Join(dir, "nowhere", "x.db")},
			1, "directory " + filepath.Join(dir, "nowhere") + " does not exist"},
		{"kafka-listen with brokers", []string{"-sites", good, "-brokers", "127.0.0.1:1", "-kafka-listen", "127.0.0.1:0"}, 2, "-kafka-listen: only for the embedded Kafka"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", "")
			t.Setenv("DATABASE_URL", "")
			t.Setenv("SITEWATCH_SITES", "")
			var stdout, stderr syncBuffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			out := stderr.String()
			if !strings.HasPrefix(out, "sitewatch: ") || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
				t.Errorf("stderr %q: want one line mentioning %q", out, tc.want)
			}
			if strings.Contains(out, "secret") || strings.Contains(out, "migrate: migrate:") {
				t.Errorf("stderr %q: a password or a repeated prefix", out)
			}
		})
	}
	// Nothing was started for a bad sites file: no data directory made.
	if _, err := os.Stat(filepath.Join(dir, "d1")); !os.IsNotExist(err) {
		t.Errorf("data directory created for a bad sites file (stat: %v)", err)
	}
	// A store that cannot be used is found before the embedded Kafka
	// starts (it would make its directory).
	for _, d := range []string{"d3", "d4", "d5"} {
		if _, err := os.Stat(filepath.Join(dir, d, "kafka")); !os.IsNotExist(err) {
			t.Errorf("embedded Kafka started although the store was unusable (%s; stat: %v)", d, err)
		}
	}
}

// TestVersion: -version prints one line on stdout and exits 0 without a
// sites file and without touching the data directory.
func TestVersion(t *testing.T) {
	t.Setenv("SITEWATCH_SITES", "")
	dataDir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"-version", "-data-dir", dataDir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d, want 0; stderr %q", code, stderr.String())
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "sitewatch ") || strings.Count(out, "\n") != 1 || stderr.String() != "" {
		t.Errorf("stdout %q, stderr %q: want one line \"sitewatch <version>\" on stdout only", out, stderr.String())
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("-version created the data directory (stat: %v)", err)
	}
}
