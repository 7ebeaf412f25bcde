package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"log/slog"
	pathpkg "path"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	msqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/sitewatch/sitewatch/history/historytest"
)

// Migration 000004 upgrades a file that already holds checks and windows:
// site_status and the rollups start from what is stored.
func TestMigrationWebUpgradesData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	src, err := iofs.New(migrationsFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	drv, err := msqlite.WithInstance(db, &msqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(migrationsFS, "migrations/*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	for i := range names {
		names[i] = pathpkg.Base(names[i])
	}
	if err := m.Migrate(historytest.BeforeWeb(t, names)); err != nil {
		t.Fatal(err)
	}
	old := &Store{db: db, logger: slog.New(slog.DiscardHandler), writer: make(chan struct{}, 1)}
	execAll(t, db, historytest.LegacyRegionColumns)
	sc := historytest.Seed(t, old, time.Now())
	execAll(t, db, historytest.DropLegacyRegionColumns)
	db.Close()

	s, err := Open(ctx, path, nil) // migrates up
	if err != nil {
		t.Fatalf("upgrade a file with data: %v", err)
	}
	defer s.Close()
	historytest.CheckUpgraded(t, s, sc)
}

// execAll runs statements on db, failing the test on the first error.
func execAll(t *testing.T, db *sql.DB, stmts []string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
