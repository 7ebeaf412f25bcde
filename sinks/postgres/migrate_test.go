package postgres

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"

	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/migrations"
)

// schemaObjects is everything the migrations create that users rely on.
var schemaObjects = []string{
	"check_results", "check_results_default", "check_windows",
	"uptime_hourly", "uptime_daily", "latency_hourly", "latency_daily",
	"check_windows_recomputed", "incidents", "incidents_open",
}

func existing(t *testing.T, url string, names ...string) []string {
	t.Helper()
	conn := connect(t, url)
	var found []string
	for _, n := range names {
		var ok bool
		if err := conn.QueryRow(testCtx(t), "SELECT to_regclass($1) IS NOT NULL", n).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			found = append(found, n)
		}
	}
	return found
}

// latestVersion is the number of the newest embedded migration.
func latestVersion(t *testing.T) int64 {
	t.Helper()
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil || len(ups) == 0 {
		t.Fatalf("embedded migrations: %v %v", ups, err)
	}
	slices.Sort(ups)
	v, err := strconv.ParseInt(strings.SplitN(ups[len(ups)-1], "_", 2)[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func schemaVersion(t *testing.T, url string) (int64, bool) {
	t.Helper()
	conn := connect(t, url)
	var v int64
	var dirty bool
	if err := conn.QueryRow(testCtx(t), "SELECT version, dirty FROM schema_migrations").Scan(&v, &dirty); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return v, dirty
}

func TestMigrateUpAndDown(t *testing.T) {
	t.Parallel()
	url := testkit.Postgres(t)
	ctx := testCtx(t)
	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatalf("Migrate on an empty database: %v", err)
	}
	if got := existing(t, url, schemaObjects...); len(got) != len(schemaObjects) {
		t.Fatalf("after up: found %v, want all of %v", got, schemaObjects)
	}
	if v, dirty := schemaVersion(t, url); v != latestVersion(t) || dirty {
		t.Fatalf("schema version = %d dirty=%v, want %d clean", v, dirty, latestVersion(t))
	}
	// A second start finds nothing to do.
	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatalf("Migrate on a current schema: %v", err)
	}
	// Daily partitions made later must go with the schema too.
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2031, 7, 1, 12, 0, 0, 0, time.UTC)
	if err := s.MaintainPartitions(ctx, now, 1, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()

	err = runMigrations(ctx, url, testLogger(t), func(m *migrate.Migrate) error { return m.Down() })
	if err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	if got := existing(t, url, append(schemaObjects, "check_results_p20310701", "check_results_p20310702")...); len(got) != 0 {
		t.Fatalf("after down, still there: %v", got)
	}
	// And up again from nothing.
	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatalf("Migrate after down: %v", err)
	}
	if got := existing(t, url, schemaObjects...); len(got) != len(schemaObjects) {
		t.Fatalf("after up again: found %v", got)
	}
}

// Several processors starting at once on an empty database: each returns
// without error and the schema is applied exactly once.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	url := testkit.Postgres(t)
	ctx := testCtx(t)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = Migrate(ctx, url, testLogger(t)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	if v, dirty := schemaVersion(t, url); v != latestVersion(t) || dirty {
		t.Fatalf("schema version = %d dirty=%v, want %d clean", v, dirty, latestVersion(t))
	}
	if got := existing(t, url, schemaObjects...); len(got) != len(schemaObjects) {
		t.Fatalf("found %v, want all of %v", got, schemaObjects)
	}
}

// A processor told to stop while another one is migrating returns at once
// instead of waiting for the lock.
func TestMigrateCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	url := testkit.Postgres(t)
	holder := connect(t, url)
	if _, err := holder.Exec(testCtx(t), "SELECT pg_advisory_lock($1)", migrateLockID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	err := Migrate(ctx, url, testLogger(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Migrate while another holds the lock = %v, want a deadline error", err)
	}
	if got := existing(t, url, "check_results"); len(got) != 0 {
		t.Fatalf("schema applied without the lock")
	}
}

// An interrupted migration is reported with the way out, not golang-migrate's
// bare "Dirty database version 1. Fix and force version."
func TestMigrateDirty(t *testing.T) {
	t.Parallel()
	url := testkit.Postgres(t)
	ctx := testCtx(t)
	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	if _, err := conn.Exec(ctx, "UPDATE schema_migrations SET version = 1, dirty = true"); err != nil {
		t.Fatal(err)
	}
	err := Migrate(ctx, url, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "dirty") ||
		!(strings.Contains(err.Error(), "DELETE FROM schema_migrations") || strings.Contains(err.Error(), "UPDATE schema_migrations SET version")) {
		t.Fatalf("Migrate on a dirty schema = %v, want an error saying how to fix it", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	// Nothing listens on port 1; the password must not leak into the error.
	_, err := Open(ctx, "postgres://sitewatch:s3cret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", Options{})
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	err = Migrate(ctx, "postgres://sitewatch:s3cret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", testLogger(t))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Migrate on a closed port = %v, want an error without the password", err)
	}
}

// TestMigrateAlertsOnData upgrades a database holding results from before
// 000003: its rows keep a NULL tls_not_after and incidents starts empty.
func TestMigrateAlertsOnData(t *testing.T) {
	t.Parallel()
	url := testkit.Postgres(t)
	ctx := testCtx(t)
	err := runMigrations(ctx, url, testLogger(t), func(m *migrate.Migrate) error { return m.Migrate(1) })
	if err != nil {
		t.Fatalf("migrate to 1: %v", err)
	}
	conn := connect(t, url)
	if _, err := conn.Exec(ctx, `INSERT INTO check_results (event_id, url, scheduled_at, checked_at, outcome, status_code, body_bytes, checker)
VALUES ('old-1', 'https://a.example/', now(), now(), 'up', 200, 10, 'c')`); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatalf("Migrate on a database with data: %v", err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results WHERE event_id = 'old-1' AND tls_not_after IS NULL"); n != 1 {
		t.Errorf("old row with NULL tls_not_after: %d, want 1", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM incidents_open"); n != 0 {
		t.Errorf("open incidents after the upgrade: %d", n)
	}
	// And back down to 1: the old row stays.
	err = runMigrations(ctx, url, testLogger(t), func(m *migrate.Migrate) error { return m.Migrate(1) })
	if err != nil {
		t.Fatalf("migrate down to 1: %v", err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results WHERE event_id = 'old-1'"); n != 1 {
		t.Errorf("old row after down: %d, want 1", n)
	}
}
