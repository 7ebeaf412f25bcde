package postgres

import (
	"io/fs"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/migrations"
)

// Migration 000004 upgrades a database that already holds checks and
// windows: site_status and the rollups start from what is stored, and the
// down migration removes them.
func TestMigrationWebUpgradesData(t *testing.T) {
	t.Parallel()
	url := testkit.Postgres(t)
	ctx := testCtx(t)
	names, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	before := historytest.BeforeWeb(t, names)
	if err := runMigrations(ctx, url, testLogger(t), func(m *migrate.Migrate) error { return m.Migrate(before) }); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	execAll(t, conn, historytest.LegacyRegionColumns)
	sc := historytest.Seed(t, s, time.Now())
	s.Close()
	execAll(t, conn, historytest.DropLegacyRegionColumns)
	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatalf("upgrade a database with data: %v", err)
	}
	s, err = Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	historytest.CheckUpgraded(t, s, sc)
	if err := runMigrations(ctx, url, testLogger(t), func(m *migrate.Migrate) error { return m.Migrate(before) }); err != nil {
		t.Fatalf("down to %d: %v", before, err)
	}
	if got := existing(t, url, "site_status", "check_windows_hourly", "check_windows_daily", "check_windows_down", "check_results_url_failures"); len(got) != 0 {
		t.Errorf("after down: %v still there", got)
	}
}

// execAll runs statements on conn, failing the test on the first error.
func execAll(t *testing.T, conn *pgx.Conn, stmts []string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := conn.Exec(testCtx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
