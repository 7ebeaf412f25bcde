package postgres

import (
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// TestUpgradeToOneRowPerSlot upgrades a database at version 1 that holds
// data, as an existing installation does, to the current schema: a slot
// stored twice (the same event_id with two checked_at, on two days and in
// two windows) keeps its first check only, rows in daily and default
// partitions are kept and land in the partitions of their scheduled_at
// day, the windows that counted the second check equal the rows again, the
// others are kept as they were, and the views, partition upkeep and the
// idempotent insert work on the upgraded table.
func TestUpgradeToOneRowPerSlot(t *testing.T) {
	t.Parallel()
	url := testkit.Postgres(t)
	ctx := testCtx(t)
	if err := runMigrations(ctx, url, testLogger(t), func(m *migrate.Migrate) error { return m.Migrate(1) }); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	conn := connect(t, url)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Version 1: daily partitions by checked_at.
	exec(`CREATE TABLE check_results_p20300309 PARTITION OF check_results FOR VALUES FROM ('2030-03-09T00:00:00Z') TO ('2030-03-10T00:00:00Z')`)
	exec(`CREATE TABLE check_results_p20300310 PARTITION OF check_results FOR VALUES FROM ('2030-03-10T00:00:00Z') TO ('2030-03-11T00:00:00Z')`)
	exec(`CREATE TABLE check_results_p20300311 PARTITION OF check_results FOR VALUES FROM ('2030-03-11T00:00:00Z') TO ('2030-03-12T00:00:00Z')`) // made ahead, empty
	const insert = `INSERT INTO check_results (event_id, url, scheduled_at, checked_at, outcome, status_code, response_time_ms, body_bytes, checker)
VALUES ($1, $2, $3, $4, 'up', 200, $5, 10, $6)`
	u := "https://a.example/"
	slot := time.Date(2030, 3, 9, 23, 59, 59, 0, time.UTC)
	rows := []struct {
		id                 string
		scheduled, checked time.Time
		ms                 float64
		checker            string
	}{
		{"twice", slot, slot.Add(500 * time.Millisecond), 10, "first"}, // 2030-03-09, window 23:55
		{"twice", slot, slot.Add(7 * time.Minute), 99, "again"},        // 2030-03-10, window 00:05
		{"twice-same-window", slot.Add(-4 * time.Minute), slot.Add(-3*time.Minute - 50*time.Second), 20, "first"},
		{"twice-same-window", slot.Add(-4 * time.Minute), slot.Add(-3*time.Minute - 10*time.Second), 21, "again"},
		{"once", slot.Add(-time.Minute), slot.Add(-time.Minute + time.Second), 30, "first"},
		{"next-day", slot.Add(11 * time.Minute), slot.Add(11*time.Minute + time.Second), 40, "first"},
		{"stray", time.Date(2031, 1, 1, 12, 0, 0, 0, time.UTC), time.Date(2031, 1, 1, 12, 0, 1, 0, time.UTC), 50, "first"},
	}
	for _, r := range rows {
		exec(insert, r.id, u, r.scheduled, r.checked, r.ms, r.checker)
	}
	// The windows as the version-1 processor stored them: it counted the
	// repeat of "twice" in the next window (00:05), and one check of
	// "twice-same-window".
	const insertWindow = `INSERT INTO check_windows (url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision)
VALUES ($1, $2::timestamptz, $2::timestamptz + interval '5 minutes', $3::int, 0, $3::int, $4, $4, $4, $4, $4, $4, $5::jsonb, 0, $3::int)`
	exec(insertWindow, u, time.Date(2030, 3, 9, 23, 55, 0, 0, time.UTC), 3, 20.0, `{"200": 3}`)
	exec(insertWindow, u, time.Date(2030, 3, 10, 0, 5, 0, 0, time.UTC), 1, 99.0, `{"200": 1}`)
	exec(insertWindow, u, time.Date(2030, 3, 10, 0, 10, 0, 0, time.UTC), 1, 40.0, `{"200": 1}`)
	exec(insertWindow, "https://untouched.example/", time.Date(2030, 3, 9, 12, 0, 0, 0, time.UTC), 1, 7.0, `{"200": 1}`)

	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatalf("upgrade: %v", err)
	}

	stored, err := testkit.StoredEventCounts(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if d := testkit.ExactlyOnce(stored, map[string]bool{"twice": true, "twice-same-window": true, "once": true, "next-day": true, "stray": true}); d != "" {
		t.Fatalf("after the upgrade: %s", d)
	}
	if got := placement(t, conn); got["twice"] != "check_results_p20300309" || got["next-day"] != "check_results_p20300310" ||
		got["once"] != "check_results_p20300309" || got["stray"] != "check_results_default" {
		t.Errorf("rows by partition after the upgrade: %v", got)
	}
	if got := partitionNames(t, conn); len(got) != 4 || got[3] != "check_results_p20300311" {
		t.Errorf("partitions after the upgrade: %v, want default and 2030-03-09 to 11", got)
	}
	for _, id := range []string{"twice", "twice-same-window"} {
		var checker string
		if err := conn.QueryRow(ctx, "SELECT checker FROM check_results WHERE event_id = $1", id).Scan(&checker); err != nil || checker != "first" {
			t.Errorf("%s: kept the row of %q (%v), want the first check", id, checker, err)
		}
	}

	// The windows that had counted a repeat equal the rows kept; the
	// window that held only the repeat is gone; the others are as they were.
	untouched := func(url string, start time.Time) bool {
		return url == "https://untouched.example/" || start.Equal(time.Date(2030, 3, 10, 0, 10, 0, 0, time.UTC))
	}
	cmp, err := testkit.CompareWindows(ctx, conn, time.Date(2030, 3, 10, 0, 10, 0, 0, time.UTC), untouched)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.String() != "" || cmp.Compared != 1 || cmp.Closed != 1 {
		t.Errorf("windows after the upgrade (%d compared, %d closed):\n%s", cmp.Compared, cmp.Closed, cmp)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_windows WHERE window_start = '2030-03-10T00:05:00Z'"); n != 0 {
		t.Errorf("the window of the repeat alone is still there")
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM check_windows WHERE NOT percentiles_exact AND checks = 1 AND response_p50_ms IN (7, 40)`); n != 2 {
		t.Errorf("%d untouched windows kept as they were (sketched percentiles), want 2", n)
	}

	// The views read the new table.
	if n := queryInt(t, conn, "SELECT checks FROM latency_daily WHERE url = $1 AND day = '2030-03-09T00:00:00Z'", u); n != 3 {
		t.Errorf("latency_daily on 2030-03-09: %d checks, want 3", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM uptime_hourly"); n != 3 { // a 23:00 and 00:00, untouched 12:00
		t.Errorf("uptime_hourly: %d rows, want 3", n)
	}

	// Upkeep and writes on the upgraded table: a repeat of a stored slot
	// adds no row, and a partition made by upkeep takes its default rows.
	s, err := Open(ctx, url, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	repeat := upResult("twice", u, slot.Add(9*time.Minute), 5)
	repeat.ScheduledAt = slot
	if rej, err := s.WriteResults(ctx, []*codecs.Result{repeat}); err != nil || len(rej) != 0 {
		t.Fatal(rej, err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results WHERE event_id = 'twice'"); n != 1 {
		t.Errorf("a repeat written after the upgrade: %d rows of its slot", n)
	}
	if err := s.MaintainPartitions(ctx, time.Date(2031, 1, 1, 13, 0, 0, 0, time.UTC), 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := placement(t, conn)["stray"]; got != "check_results_p20310101" {
		t.Errorf("stray row in %s after upkeep, want check_results_p20310101", got)
	}

	// And back down to version 1 and up again, keeping every row.
	if err := runMigrations(ctx, url, testLogger(t), func(m *migrate.Migrate) error { return m.Migrate(1) }); err != nil {
		t.Fatalf("migrate down to 1: %v", err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results"); n != 5 {
		t.Errorf("after down to 1: %d rows, want 5", n)
	}
	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results"); n != 5 {
		t.Errorf("after up again: %d rows, want 5", n)
	}
}
