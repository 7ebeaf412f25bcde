// Command report measures `sitewatch report` on PostgreSQL: it seeds a
// fresh database with raw checks (generate_series: -sites sites, one check
// every -interval for -days days, in daily partitions, about 1% down, a
// one-hour outage of every tenth site) and times report.Build over the
// whole range, the same code the command and the API run. As baselines in
// the same run it times the report's one query alone (rows streamed and
// dropped) and PostgreSQL computing counts and percentile_cont per URL
// over the same rows in SQL.
//
//	go run ./bench/report                          # 100 sites × 7 days at 60 s ≈ 1M rows
//	go run ./bench/report -sites 200 -days 30
//
// The database is dropped at the end; everything stops within -timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/report"
	"github.com/sitewatch/sitewatch/sinks/postgres"
)

func main() { os.Exit(run()) }

type options struct {
	sites, days, runs int
	interval          time.Duration
	timeout           time.Duration
}

func run() int {
	var o options
	flag.IntVar(&o.sites, "sites", 100, "sites")
	flag.IntVar(&o.days, "days", 7, "days of checks")
	flag.DurationVar(&o.interval, "interval", time.Minute, "time between two checks of a site")
	flag.IntVar(&o.runs, "runs", 3, "timed repetitions of each measurement (the best is reported)")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if err := bench(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/report:", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, o options) error {
	dbURL, drop, err := testkit.CreateDatabase(ctx, "sw_bench_")
	if err != nil {
		return err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench/report:", err)
		}
	}()
	logger := slog.New(slog.DiscardHandler)
	if err := postgres.Migrate(ctx, dbURL, logger); err != nil {
		return err
	}
	// The report's own statement timeout is the store's default; a longer
	// benchmark range may need more.
	store, err := postgres.Open(ctx, dbURL, postgres.Options{StatementTimeout: -1})
	if err != nil {
		return err
	}
	defer store.Close()

	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, o.days)
	if err := store.MaintainPartitions(ctx, from, o.days, 0); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	perSite := int(to.Sub(from) / o.interval)
	start := time.Now()
	// Every 100th check is down (timeout, no response); every tenth site
	// is also down for the hour from 36 h on. Response times vary.
	tag, err := conn.Exec(ctx, `
INSERT INTO check_results (event_id, url, scheduled_at, checked_at, outcome, status_code,
                           response_time_ms, body_bytes, error_kind, error_message, checker)
SELECT s || '-' || k, 'https://site' || s || '.example/', t, t + interval '40 ms',
       CASE WHEN down THEN 'down' ELSE 'up' END, CASE WHEN down THEN 0 ELSE 200 END,
       CASE WHEN down THEN NULL ELSE 5 + ((s * 7919 + k * 104729) % 100000) / 1000.0 END,
       CASE WHEN down THEN 0 ELSE 1024 END,
       CASE WHEN down THEN 'timeout' END, CASE WHEN down THEN 'timed out' END, 'bench'
  FROM generate_series(0, $1 - 1) s,
       generate_series(0, $2 - 1) k,
       LATERAL (SELECT $3::timestamptz + k * $4::interval + (s % 60) * interval '1 second' AS t) tt,
       LATERAL (SELECT (s * 31 + k) % 100 = 0
                    OR (s % 10 = 0 AND k * $4::interval >= interval '36 hours'
                                   AND k * $4::interval <  interval '37 hours') AS down) dd`,
		o.sites, perSite, from, o.interval)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE check_results"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	rows := tag.RowsAffected()
	fmt.Printf("seeded %d sites × %d days at %s: %d rows in %s\n", o.sites, o.days, o.interval, rows, time.Since(start).Round(time.Millisecond))

	sites := make([]report.Site, o.sites)
	for i := range sites {
		sites[i] = report.Site{URL: fmt.Sprintf("https://site%d.example/", i), Name: fmt.Sprintf("site %d", i), Interval: o.interval}
	}
	slo, _ := report.ParseSLO("slo", "99.9")
	opts := report.Options{From: from, To: to, SLO: slo, Sites: sites}

	var rep *report.Report
	full, err := best(o.runs, func() error {
		var err error
		rep, err = report.Build(ctx, store, opts)
		return err
	})
	if err != nil {
		return err
	}
	var scanned int64
	scan, err := best(o.runs, func() error {
		scanned = 0
		return store.ScanChecks(ctx, from.Add(-report.Lookback), to, func(report.Check) error { scanned++; return nil })
	})
	if err != nil {
		return err
	}
	sqlAgg, err := best(o.runs, func() error {
		_, err := conn.Exec(ctx, `SELECT url, count(*), count(*) FILTER (WHERE outcome = 'down'),
		        percentile_cont(0.50) WITHIN GROUP (ORDER BY response_time_ms),
		        percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms),
		        percentile_cont(0.99) WITHIN GROUP (ORDER BY response_time_ms)
		   FROM check_results WHERE scheduled_at >= $1 AND scheduled_at < $2 GROUP BY url`, from, to)
		return err
	})
	if err != nil {
		return err
	}
	var checks, failures int64
	for _, s := range rep.Sites {
		checks += s.Checks
		failures += s.Failures
	}
	fmt.Printf("report: %d sites, %d checks, %d failures; site 0: uptime %.4f%% by time, %d down periods, longest %s\n",
		len(rep.Sites), checks, failures, *rep.Sites[0].UptimeTimePercent, rep.Sites[0].DownPeriods, time.Duration(rep.Sites[0].LongestDown))
	fmt.Printf("report.Build (one query + Go figures):      %8s  (%.0f rows/s)\n", full.Round(time.Millisecond), float64(scanned)/full.Seconds())
	fmt.Printf("baseline: its query alone (%d rows):       %8s  report/query = %.2f\n", scanned, scan.Round(time.Millisecond), full.Seconds()/scan.Seconds())
	fmt.Printf("baseline: SQL counts + percentile_cont per URL: %8s  report/SQL = %.2f\n", sqlAgg.Round(time.Millisecond), full.Seconds()/sqlAgg.Seconds())

	// The query's order is (url, scheduled_at): with an index in that
	// order PostgreSQL can merge the partitions' index scans instead of
	// sorting the range.
	if _, err := conn.Exec(ctx, "CREATE INDEX check_results_url_scheduled_at ON check_results (url, scheduled_at)"); err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE check_results"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	indexed, err := best(o.runs, func() error {
		_, err := report.Build(ctx, store, opts)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("report.Build with an index on (url, scheduled_at): %8s  indexed/unindexed = %.2f\n", indexed.Round(time.Millisecond), indexed.Seconds()/full.Seconds())
	return nil
}

// best runs f n times and returns its shortest duration.
func best(n int, f func() error) (time.Duration, error) {
	var b time.Duration
	for i := range max(n, 1) {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		if d := time.Since(start); i == 0 || d < b {
			b = d
		}
	}
	return b, nil
}
