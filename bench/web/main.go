// Command web is the benchmark of the status page's server time with many
// sites: it seeds a fresh PostgreSQL database with -sites sites × -days
// days of five-minute windows (generate_series in SQL, then the rollups
// and site_status as the triggers would have kept them, and 24 h of raw
// checks for the site whose page is timed), and a SQLite file with
// -sqlite-sites sites, then times each page through the real HTTP server
// and reports the median and worst of -n requests, and how many queries
// each page made. The same pages over a store of -baseline-sites sites,
// measured in the same run, are the baseline: a ratio near 1 means a page
// costs the same whatever the number of sites.
//
//	go run ./bench/web                              # 10,000 sites × 30 days; SQLite 1,000
//	go run ./bench/web -sites 1000 -days 7 -sqlite-sites 200
//
// The goals of the issue: overview under 300 ms, a site page under 100 ms
// with 10,000 sites. It prints figures; it never fails on speed. The
// database server is SITEWATCH_TEST_DATABASE_URL, or the local one.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/history"
	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/sinks/postgres"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
	"github.com/sitewatch/sitewatch/web"
)

type options struct {
	sites, sqliteSites, baseline, days, n int
}

func main() {
	var o options
	flag.IntVar(&o.sites, "sites", 10000, "sites seeded into PostgreSQL")
	flag.IntVar(&o.sqliteSites, "sqlite-sites", 1000, "sites seeded into SQLite (0: skip)")
	flag.IntVar(&o.baseline, "baseline-sites", 100, "sites of the baseline stores")
	flag.IntVar(&o.days, "days", 30, "days of windows per site")
	flag.IntVar(&o.n, "n", 15, "timed requests per page")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/web:", err)
		os.Exit(1)
	}
}

func siteURL(i int) string { return fmt.Sprintf("https://site-%d.example/", i) }

// timedSite is the site whose page is timed: one of the down ones, with
// raw checks, failures and an open incident.
const timedSite = 100

func run(ctx context.Context, o options) error {
	end := time.Now().UTC().Truncate(5 * time.Minute)
	fmt.Printf("bench/web: %d days of windows, %d timed requests per page, %d CPUs\n\n", o.days, o.n, runtime.NumCPU())

	type result struct {
		store string
		sites int
		pages map[string]timing
	}
	var results []result
	measurePG := func(sites int) error {
		dbURL, drop, err := testkit.CreateDatabase(ctx, "sw_bench_web_")
		if err != nil {
			return err
		}
		defer func() {
			if err := drop(); err != nil {
				fmt.Fprintln(os.Stderr, "bench/web:", err)
			}
		}()
		if err := postgres.Migrate(ctx, dbURL, nil); err != nil {
			return err
		}
		start := time.Now()
		if err := seedPostgres(ctx, dbURL, sites, o.days, end); err != nil {
			return fmt.Errorf("seed postgresql: %w", err)
		}
		fmt.Printf("postgresql: seeded %d sites × %d days (%d windows) in %s\n", sites, o.days, sites*o.days*288, time.Since(start).Round(time.Second))
		st, err := postgres.Open(ctx, dbURL, postgres.Options{})
		if err != nil {
			return err
		}
		defer st.Close()
		pages, err := measure(ctx, st, sites, end, o.n)
		if err != nil {
			return err
		}
		results = append(results, result{"postgresql", sites, pages})
		return nil
	}
	measureSQLite := func(sites int) error {
		dir, err := os.MkdirTemp("", "sw-bench-web-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		st, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"), nil)
		if err != nil {
			return err
		}
		defer st.Close()
		start := time.Now()
		if err := seedSQLite(ctx, st.DB(), sites, o.days, end); err != nil {
			return fmt.Errorf("seed sqlite: %w", err)
		}
		fmt.Printf("sqlite: seeded %d sites × %d days (%d windows) in %s\n", sites, o.days, sites*o.days*288, time.Since(start).Round(time.Second))
		pages, err := measure(ctx, st, sites, end, o.n)
		if err != nil {
			return err
		}
		results = append(results, result{"sqlite", sites, pages})
		return nil
	}
	if err := measurePG(o.baseline); err != nil {
		return err
	}
	if err := measurePG(o.sites); err != nil {
		return err
	}
	if o.sqliteSites > 0 {
		if err := measureSQLite(o.baseline); err != nil {
			return err
		}
		if err := measureSQLite(o.sqliteSites); err != nil {
			return err
		}
	}

	fmt.Printf("\n%-10s %-7s %-40s %9s %9s %8s %9s\n", "store", "sites", "page", "median", "worst", "queries", "vs base")
	base := map[string]map[string]timing{}
	for _, r := range results {
		if base[r.store] == nil {
			base[r.store] = r.pages
		}
		for _, p := range pageNames {
			t := r.pages[p]
			ratio := float64(t.median) / float64(base[r.store][p].median)
			fmt.Printf("%-10s %-7d %-40s %9s %9s %8d %8.1fx\n", r.store, r.sites, p, ms(t.median), ms(t.worst), t.queries, ratio)
		}
	}
	fmt.Println("\ngoals (PostgreSQL, 10,000 sites): overview / under 300 ms, a site page under 100 ms (server time: request to last byte on loopback).")
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

var pageNames = []string{"/", "/?page=2", "/?q=site-42", "/sites/{down site}", "/sites/{up site}", "/api/v1/sites", "/api/v1/sites/{id}", "/api/v1/incidents?open=true", "/badge/{id}/uptime.svg?period=90d"}

type timing struct {
	median, worst time.Duration
	queries       int64
}

func measure(ctx context.Context, r web.Reader, n int, now time.Time, reps int) (map[string]timing, error) {
	sites := make([]web.Site, 0, n)
	for i := 1; i <= n; i++ {
		sites = append(sites, web.Site{URL: siteURL(i), Name: fmt.Sprintf("Site %d", i), Interval: time.Minute, Timeout: 10 * time.Second})
	}
	c := &historytest.Counting{Reader: r}
	srv, err := web.New(web.Config{Reader: c, Sites: func() []web.Site { return sites }, Now: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	down, up := history.SiteID(siteURL(timedSite)), history.SiteID(siteURL(timedSite+1))
	paths := map[string]string{
		"/": "/", "/?page=2": "/?page=2", "/?q=site-42": "/?q=site-42",
		"/sites/{down site}": "/sites/" + down, "/sites/{up site}": "/sites/" + up,
		"/api/v1/sites": "/api/v1/sites", "/api/v1/sites/{id}": "/api/v1/sites/" + down,
		"/api/v1/incidents?open=true":       "/api/v1/incidents?open=true",
		"/badge/{id}/uptime.svg?period=90d": "/badge/" + down + "/uptime.svg?period=90d",
	}
	out := map[string]timing{}
	for _, name := range pageNames {
		var ds []time.Duration
		var queries int64
		for i := range reps + 2 {
			c.Reset()
			start := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+paths[name], nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d := time.Since(start)
			if resp.StatusCode != 200 {
				return nil, fmt.Errorf("%s: status %d", paths[name], resp.StatusCode)
			}
			queries = c.Reset()
			if i >= 2 { // two warm-up requests
				ds = append(ds, d)
			}
		}
		slices.Sort(ds)
		out[name] = timing{median: ds[len(ds)/2], worst: ds[len(ds)-1], queries: queries}
	}
	return out, nil
}

// The seeded windows: five checks each; failures 5 in the last 30 minutes
// of every hundredth site (down now: an open incident), 5 in about one
// window in a thousand (short incidents), 1 in about one in fifty.
const (
	pgFailures = `CASE WHEN s % 100 = 0 AND w >= $3::timestamptz - interval '30 minutes' THEN 5
             WHEN (s * 7919 + (extract(epoch FROM w)::bigint / 300)) % 997 = 0 THEN 5
             WHEN (s + (extract(epoch FROM w)::bigint / 300)) % 53 = 0 THEN 1
             ELSE 0 END`
)

func seedPostgres(ctx context.Context, dbURL string, sites, days int, end time.Time) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	start := end.AddDate(0, 0, -days)
	steps := []string{
		// A bench database: no WAL, and the indexes built once at the end.
		`ALTER TABLE check_windows SET UNLOGGED`,
		`ALTER TABLE check_windows DISABLE TRIGGER check_windows_rollup`,
		`ALTER TABLE check_windows DROP CONSTRAINT check_windows_pkey`,
		`DROP INDEX check_windows_window_start`,
		`DROP INDEX check_windows_down`,
		`INSERT INTO check_windows (url, window_start, window_end, checks, failures, responses,
		     response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
		     status_counts, regexp_failures, revision)
		 SELECT 'https://site-' || s || '.example/', w, w + interval '5 minutes', 5, f, 5 - f,
		        CASE WHEN f < 5 THEN 8 END, CASE WHEN f < 5 THEN 20 + s % 7 END, CASE WHEN f < 5 THEN 90 END,
		        CASE WHEN f < 5 THEN 18 + s % 7 END, CASE WHEN f < 5 THEN 40 + (s + extract(epoch FROM w)::bigint / 300) % 13 END,
		        CASE WHEN f < 5 THEN 70 END, '{}', 0, 1
		   FROM generate_series(1, $1::int) s,
		        generate_series($2::timestamptz, $3::timestamptz - interval '5 minutes', interval '5 minutes') w,
		        LATERAL (SELECT ` + pgFailures + ` AS f) x`,
		`ALTER TABLE check_windows ADD CONSTRAINT check_windows_pkey PRIMARY KEY (url, region, window_start)`,
		`CREATE INDEX check_windows_window_start ON check_windows (window_start)`,
		`CREATE INDEX check_windows_down ON check_windows (url, window_start) WHERE failures * 2 > checks`,
		`INSERT INTO check_windows_hourly (url, hour, checks, failures, responses, response_p95_sum_ms)
		 SELECT url, date_trunc('hour', window_start, 'UTC'), sum(checks), sum(failures), sum(responses), sum(response_p95_ms * responses)
		   FROM check_windows GROUP BY 1, 2`,
		`INSERT INTO check_windows_daily (url, day, checks, failures, responses, response_p95_sum_ms)
		 SELECT url, date_trunc('day', hour, 'UTC'), sum(checks), sum(failures), sum(responses), sum(response_p95_sum_ms)
		   FROM check_windows_hourly GROUP BY 1, 2`,
		`ALTER TABLE check_windows ENABLE TRIGGER check_windows_rollup`,
		// The latest check of every site, as the results trigger keeps it.
		`INSERT INTO site_status (url, last_checked_at, last_outcome, last_status_code, last_error_kind, last_error_message,
		     last_failure_at, last_failure_status_code, last_failure_kind, last_failure_message)
		 SELECT 'https://site-' || s || '.example/', $3::timestamptz - interval '20 seconds',
		        CASE WHEN s % 100 = 0 THEN 'down' ELSE 'up' END, CASE WHEN s % 100 = 0 THEN 0 ELSE 200 END,
		        CASE WHEN s % 100 = 0 THEN 'timeout' END, CASE WHEN s % 100 = 0 THEN 'timeout after 10s' END,
		        $3::timestamptz - (s % 5000) * interval '1 minute', 503, 'status', 'status 503, want 2xx or 3xx'
		   FROM generate_series(1, $1::int) s WHERE $2::timestamptz IS NOT NULL`,
		// 24 h of raw checks, one a minute, of the timed sites.
		`INSERT INTO check_results (event_id, url, scheduled_at, checked_at, outcome, status_code, response_time_ms,
		     dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms, body_bytes, error_kind, error_message, checker)
		 SELECT u || t, u, t, t, CASE WHEN down THEN 'down' ELSE 'up' END, CASE WHEN down THEN 0 ELSE 200 END,
		        CASE WHEN down THEN NULL ELSE 20 END, 1, 2, CASE WHEN down THEN NULL ELSE 5 END,
		        CASE WHEN down THEN NULL ELSE 10 END, CASE WHEN down THEN NULL ELSE 2 END, 100,
		        CASE WHEN down THEN 'timeout' END, CASE WHEN down THEN 'timeout after 10s' END, 'bench'
		   FROM unnest(ARRAY['https://site-100.example/', 'https://site-101.example/']) u,
		        generate_series($3::timestamptz - interval '24 hours', $3::timestamptz - interval '1 minute', interval '1 minute') t,
		        LATERAL (SELECT u = 'https://site-100.example/' AND t >= $3::timestamptz - interval '30 minutes' AS down) d
		  WHERE $1::int > 0 AND $2::timestamptz IS NOT NULL`,
		`ANALYZE`,
	}
	for _, q := range steps {
		var args []any
		if containsArg(q) {
			args = []any{sites, start, end}
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("%.60s…: %w", q, err)
		}
	}
	return nil
}

func containsArg(q string) bool {
	for i := 0; i+1 < len(q); i++ {
		if q[i] == '$' && q[i+1] >= '1' && q[i+1] <= '3' {
			return true
		}
	}
	return false
}

func seedSQLite(ctx context.Context, db *sql.DB, sites, days int, end time.Time) error {
	start := end.AddDate(0, 0, -days)
	const ts = `strftime('%Y-%m-%dT%H:%M:%S.000000000Z', t, 'unixepoch')`
	steps := []string{
		`DROP TRIGGER check_windows_rollup_insert`,
		`DROP TRIGGER check_windows_rollup_update`,
		`DROP INDEX check_windows_window_start`,
		`DROP INDEX check_windows_down`,
		`WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?1),
		 w(t) AS (SELECT ?2 UNION ALL SELECT t + 300 FROM w WHERE t + 300 < ?3)
		 INSERT INTO check_windows (url, window_start, window_end, checks, failures, responses,
		     response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
		     status_counts, regexp_failures, revision)
		 SELECT 'https://site-' || n || '.example/', ` + ts + `, strftime('%Y-%m-%dT%H:%M:%S.000000000Z', t + 300, 'unixepoch'),
		        5, f, 5 - f, 8, 20 + n % 7, 90, 18 + n % 7, 40 + (n + t / 300) % 13, 70, '{}', 0, 1
		   FROM (SELECT n, t, CASE WHEN n % 100 = 0 AND t >= ?3 - 1800 THEN 5
		                           WHEN (n * 7919 + t / 300) % 997 = 0 THEN 5
		                           WHEN (n + t / 300) % 53 = 0 THEN 1 ELSE 0 END AS f
		           FROM s, w ORDER BY n, t)`,
		`CREATE INDEX check_windows_window_start ON check_windows (window_start)`,
		`CREATE INDEX check_windows_down ON check_windows (url, window_start) WHERE failures * 2 > checks`,
		`INSERT INTO check_windows_hourly (url, hour, checks, failures, responses, response_p95_sum_ms)
		 SELECT url, strftime('%Y-%m-%dT%H:00:00.000000000Z', window_start) AS h, sum(checks), sum(failures), sum(responses), sum(response_p95_ms * responses)
		   FROM check_windows GROUP BY url, h`,
		`INSERT INTO check_windows_daily (url, day, checks, failures, responses, response_p95_sum_ms)
		 SELECT url, strftime('%Y-%m-%dT00:00:00.000000000Z', hour) AS d, sum(checks), sum(failures), sum(responses), sum(response_p95_sum_ms)
		   FROM check_windows_hourly GROUP BY url, d`,
		`WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?1)
		 INSERT INTO site_status (url, last_checked_at, last_outcome, last_status_code, last_error_kind, last_error_message,
		     last_failure_at, last_failure_status_code, last_failure_kind, last_failure_message)
		 SELECT 'https://site-' || n || '.example/', strftime('%Y-%m-%dT%H:%M:%S.000000000Z', ?3 - 20, 'unixepoch'),
		        CASE WHEN n % 100 = 0 THEN 'down' ELSE 'up' END, CASE WHEN n % 100 = 0 THEN 0 ELSE 200 END,
		        CASE WHEN n % 100 = 0 THEN 'timeout' END, CASE WHEN n % 100 = 0 THEN 'timeout after 10s' END,
		        strftime('%Y-%m-%dT%H:%M:%S.000000000Z', ?3 - (n % 5000) * 60, 'unixepoch'), 503, 'status', 'status 503, want 2xx or 3xx'
		   FROM s WHERE ?2 IS NOT NULL`,
		`WITH RECURSIVE m(t) AS (SELECT ?3 - 86400 UNION ALL SELECT t + 60 FROM m WHERE t + 60 < ?3),
		 u(url) AS (VALUES ('https://site-100.example/'), ('https://site-101.example/'))
		 INSERT INTO check_results (event_id, url, scheduled_at, checked_at, outcome, status_code, response_time_ms,
		     dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms, body_bytes, error_kind, error_message, checker)
		 SELECT url || t, url, ` + ts + `, ` + ts + `, CASE WHEN down THEN 'down' ELSE 'up' END, CASE WHEN down THEN 0 ELSE 200 END,
		        CASE WHEN down THEN NULL ELSE 20 END, 1, 2, CASE WHEN down THEN NULL ELSE 5 END,
		        CASE WHEN down THEN NULL ELSE 10 END, CASE WHEN down THEN NULL ELSE 2 END, 100,
		        CASE WHEN down THEN 'timeout' END, CASE WHEN down THEN 'timeout after 10s' END, 'bench'
		   FROM (SELECT url, t, url = 'https://site-100.example/' AND t >= ?3 - 1800 AS down FROM u, m WHERE ?1 > 0 AND ?2 IS NOT NULL)`,
		`ANALYZE`,
	}
	for _, q := range steps {
		var args []any
		if containsQ(q) {
			args = []any{sites, start.Unix(), end.Unix()}
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("%.60s…: %w", q, err)
		}
	}
	return nil
}

func containsQ(q string) bool {
	for i := 0; i+1 < len(q); i++ {
		if q[i] == '?' && q[i+1] >= '1' && q[i+1] <= '3' {
			return true
		}
	}
	return false
}
