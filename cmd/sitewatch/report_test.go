package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/report"
	"github.com/sitewatch/sitewatch/report/reporttest"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
)

func reportCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dropIncidents removes the incidents table where migration 000003 made
// one: the outputs below are those of a store without it, whose incidents
// are the down periods (report's tests cover the table).
func dropIncidents[R any](t *testing.T, exec func(context.Context, string, ...any) (R, error)) {
	t.Helper()
	for _, q := range []string{"DROP VIEW IF EXISTS incidents_open", "DROP TABLE IF EXISTS incidents"} {
		if _, err := exec(reportCtx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func seedStore(t *testing.T, s sinks.Store) {
	t.Helper()
	if rej, err := s.WriteResults(reportCtx(t), reporttest.Results()); err != nil || len(rej) > 0 {
		t.Fatalf("seed: %v %v", rej, err)
	}
}

// reportDataDir is a data directory whose SQLite database holds the
// seeded checks, and a sites file naming two of the sites.
func reportDataDir(t *testing.T) (dir, sitesFile string) {
	t.Helper()
	dir = t.TempDir()
	s, err := sqlite.Open(reportCtx(t), filepath.Join(dir, "sitewatch.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	seedStore(t, s)
	dropIncidents(t, s.DB().ExecContext)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sitesFile = filepath.Join(dir, "sites.yaml")
	if err := os.WriteFile(sitesFile, []byte(reporttest.SitesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, sitesFile
}

func reportCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("DATABASE_URL", "")
	t.Setenv("SITEWATCH_DATA_DIR", "")
	var out, errOut syncBuffer
	code = run(reportCtx(t), append([]string{"report"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

var seededRange = []string{"-from", "2026-11-01", "-to", "2026-11-01T01:00:00Z"}

const wantTable = `Report 2026-11-01T00:00:00Z to 2026-11-01T01:00:00Z (1h), 4 sites, SLO 80%
Unknown is time without checks (the monitor was not checking): not down.

UPTIME                     CHECKS  FAILED  BY CHECKS   BY TIME    UNKNOWN
Alpha                          51       6    88.235%   89.000%        10m
Charlie                         0       0          -         -         1h
https://b.example/              4       1    75.000%   75.000%        52m
https://d.example/              0       0          -    0.000%     59m20s

LATENCY (ms)                  P50      P95      P99  FAILURES BY KIND
Alpha                        42.0     68.7    554.0  timeout 3, status 2, conne…
Charlie                         -        -        -  -
https://b.example/          200.0    380.0    396.0  dns 1
https://d.example/              -        -        -  -

DOWNTIME                 INCIDENTS     DOWN  LONGEST  ALLOWED     LEFT   LEFT %
Alpha                            2    5m30s    4m30s      10m    4m30s    45.0%
Charlie                          0       0s       0s       0s       0s        -
https://b.example/               1       2m       2m    1m36s     -24s   -25.0%
https://d.example/               1      40s      40s       8s     -32s  -400.0%
Incidents are the down periods (no incidents table in this store).
`

func TestReportTable(t *testing.T) {
	dir, sitesFile := reportDataDir(t)
	code, out, errOut := reportCmd(t, append(seededRange, "-data-dir", dir, "-sites", sitesFile, "-slo", "80")...)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if out != wantTable {
		t.Errorf("table:\n%s\nwant:\n%s", out, wantTable)
	}
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("%d columns: %q", n, line)
		}
	}
}

func TestReportCSV(t *testing.T) {
	dir, sitesFile := reportDataDir(t)
	code, out, errOut := reportCmd(t, append(seededRange, "-data-dir", dir, "-sites", sitesFile, "-slo", "80", "-format", "csv")...)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		"url,name,interval,interval_source,checks,failures,uptime_checks_percent,uptime_time_percent,up_seconds,down_seconds,unknown_seconds,responses,p50_ms,p95_ms,p99_ms,failures_by_kind,incidents,incidents_source,down_periods,longest_down_seconds,slo_percent,budget_allowed_seconds,budget_left_seconds,budget_left_percent,from,to",
		"https://a.example/,Alpha,1m,sites_file,51,6,88.23529411764706,89,2670,330,600,47,42,68.69999999999999,553.9999999999999,connect=1;status=2;timeout=3,2,down_periods,2,270,80,600,270,45,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z",
		"https://c.example/,Charlie,30s,sites_file,0,0,,,0,0,3600,0,,,,,0,down_periods,0,0,80,0,0,,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z",
		"https://b.example/,https://b.example/,2m,inferred,4,1,75,75,360,120,3120,3,200,380,396,dns=1,1,down_periods,1,120,80,96,-24,-25,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z",
		"https://d.example/,https://d.example/,1m,default,0,0,,0,0,40,3560,0,,,,,1,down_periods,1,40,80,8,-32,-400,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("csv:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
}

// The JSON is the same from SQLite and PostgreSQL, and the API answers
// the same bytes for the same range.
func TestReportJSONSameOnBothStoresAndAPI(t *testing.T) {
	dir, sitesFile := reportDataDir(t)
	args := append(seededRange, "-sites", sitesFile, "-slo", "99.9", "-format", "json")
	code, fromSQLite, errOut := reportCmd(t, append(args, "-data-dir", dir)...)
	if code != 0 || errOut != "" {
		t.Fatalf("sqlite: exit %d, stderr %q", code, errOut)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(fromSQLite), &rep); err != nil {
		t.Fatalf("decode %s: %v", fromSQLite, err)
	}
	a := rep.Sites[0]
	// 99.9 % of Alpha's 3000 known seconds allow 3 s; 330 s were down.
	if a.Name != "Alpha" || a.Budget == nil || a.Budget.Allowed != report.Seconds(3*time.Second) || a.Budget.Left != report.Seconds(-327*time.Second) || *a.Budget.LeftPercent != -10900 {
		t.Errorf("Alpha's budget: %+v", a.Budget)
	}
	if !strings.Contains(fromSQLite, `"up_seconds": 2670,`) || !strings.Contains(fromSQLite, `"uptime_checks_percent": null,`) {
		t.Errorf("json lacks exact seconds or nulls:\n%s", fromSQLite)
	}

	pgURL, pg := reporttest.OpenPostgres(t)
	ctx := reportCtx(t)
	seedStore(t, pg)
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	dropIncidents(t, conn.Exec)
	code, fromPG, errOut := reportCmd(t, append(args, "-database-url", pgURL)...)
	if code != 0 || errOut != "" {
		t.Fatalf("postgres: exit %d, stderr %q", code, errOut)
	}
	if fromPG != fromSQLite {
		t.Errorf("postgres:\n%s\nsqlite:\n%s", fromPG, fromSQLite)
	}

	api := httptest.NewServer(report.Handler(report.HandlerConfig{Source: pg, Sites: func() []report.Site { return reporttest.Sites }}))
	defer api.Close()
	resp, err := http.Get(api.URL + "/api/v1/report?" + url.Values{"from": {"2026-11-01"}, "to": {"2026-11-01T01:00:00Z"}, "slo": {"99.9"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || string(body) != fromSQLite {
		t.Errorf("API %d %s:\n%s\nwant the command's:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body, fromSQLite)
	}
}

func TestReportAPIErrorsNameTheField(t *testing.T) {
	api := httptest.NewServer(report.Handler(report.HandlerConfig{Source: nil}))
	defer api.Close()
	for _, c := range []struct{ query, field, msg string }{
		{"month=2026-13", "month", `"2026-13": want YYYY-MM`},
		{"from=2026-11-02&to=2026-11-01", "to", "is not after from"},
		{"from=yesterday", "from", "want an RFC 3339 time"},
		{"month=2026-11&slo=101", "slo", "at most 100"},
		{"month=2026-11&slo=abc", "slo", "want a percentage"},
		{"from=2026-01-01&to=2026-03-01", "to", "range longer than"},
		{"month=2026-11&color=red", "color", "unknown parameter"},
	} {
		resp, err := http.Get(api.URL + "/api/v1/report?" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error, Field string }
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 400 || e.Field != c.field || !strings.Contains(e.Error, c.msg) {
			t.Errorf("%s: %d %+v (%v), want 400 field %q with %q", c.query, resp.StatusCode, e, err, c.field, c.msg)
		}
	}
}

func TestReportBadInput(t *testing.T) {
	dir, _ := reportDataDir(t)
	empty := t.TempDir()
	badSites := filepath.Join(empty, "bad.yaml")
	if err := os.WriteFile(badSites, []byte("sites:\n  - url: ftp://x/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A closed port: the connection fails, and the password must not show.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hostPort := strings.TrimPrefix(closed.URL, "http://")
	const secret = "s3cr3t-pw"
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad month", []string{"-month", "2026-13", "-data-dir", dir}, 2, `-month: "2026-13": want YYYY-MM, e.g. 2026-11`},
		{"month and from", []string{"-month", "2026-11", "-from", "2026-11-01", "-data-dir", dir}, 2, "-month: give a month or from/to, not both"},
		{"from after to", []string{"-from", "2026-11-02", "-to", "2026-11-01", "-data-dir", dir}, 2, "-to: 2026-11-01T00:00:00Z is not after from 2026-11-02T00:00:00Z"},
		{"from equals to", []string{"-from", "2026-11-01", "-to", "2026-11-01T00:00:00Z", "-data-dir", dir}, 2, "-to: "},
		{"bad from", []string{"-from", "last tuesday", "-data-dir", dir}, 2, `-from: "last tuesday": want an RFC 3339 time`},
		{"to without from", []string{"-to", "2026-11-01", "-data-dir", dir}, 2, "-from: missing (to is given)"},
		{"unknown format", []string{"-format", "xml", "-data-dir", dir}, 2, `-format: "xml": want table, csv, json`},
		{"bad slo", []string{"-slo", "99.99.9", "-data-dir", dir}, 2, `-slo: "99.99.9": want a percentage such as 99.9`},
		{"slo too precise", []string{"-slo", "99.12345678", "-data-dir", dir}, 2, "-slo: \"99.12345678\": at most six decimals"},
		{"unsupported scheme", []string{"-database-url", "mysql://root:" + secret + "@db/x"}, 2, `-database-url: "mysql://": unsupported scheme`},
		{"unparseable url", []string{"-database-url", "postgres://u:" + secret + "@host:notaport/db"}, 2, "-database-url: not a valid PostgreSQL URL"},
		{"unreachable postgres", []string{"-database-url", "postgres://u:" + secret + "@" + hostPort + "/db?sslmode=disable&connect_timeout=5"}, 1, "postgresql: open database"},
		{"missing sqlite", []string{"-database-url", "sqlite://" + filepath.Join(empty, "none.db")}, 2, "-database-url: sqlite database " + filepath.Join(empty, "none.db") + " does not exist"},
		{"empty data dir", []string{"-data-dir", empty}, 2, "-data-dir " + empty + ": no sitewatch database in it"},
		{"bad sites file", []string{"-sites", badSites, "-data-dir", dir}, 2, "-sites: " + badSites + ":2:"},
		{"stray argument", []string{"-data-dir", dir, "extra"}, 2, `unexpected argument "extra"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := reportCmd(t, c.args...)
			if code != c.code || out != "" {
				t.Errorf("exit %d (stdout %q), want %d", code, out, c.code)
			}
			if !strings.HasPrefix(errOut, "sitewatch report: ") || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr %q: want one line with %q", errOut, c.want)
			}
			if strings.Contains(errOut, secret) {
				t.Errorf("stderr shows the password: %q", errOut)
			}
		})
	}
}
