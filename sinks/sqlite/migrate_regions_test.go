package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	msqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/sitewatch/sitewatch/history/historytest"
)

// Migration 000005 upgrades a file holding data to regions, and goes down
// and up again (historytest.RegionsUpgradeTest).
func TestMigrationRegionsUpgradesData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	toBefore := func(t *testing.T) {
		t.Helper()
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
		if err := m.Migrate(historytest.RegionsMigration - 1); err != nil {
			t.Fatalf("migrate to %d: %v", historytest.RegionsMigration-1, err)
		}
	}
	toBefore(t)
	old := &Store{db: db, logger: slog.New(slog.DiscardHandler), writer: make(chan struct{}, 1)}
	execAll(t, db, historytest.LegacyRegionColumns)
	sc := historytest.Seed(t, old, time.Now())
	execAll(t, db, historytest.DropLegacyRegionColumns)

	historytest.RegionsUpgradeTest(t, historytest.RegionsUpgrade{
		Scenario: sc,
		Up: func(t *testing.T) (historytest.RegionStore, func()) {
			s, err := Open(ctx, path, nil) // migrates up
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			return s, func() { s.Close() }
		},
		Down: toBefore,
		Count: func(t *testing.T, q string) int64 {
			var n int64
			if err := db.QueryRow(q).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n
		},
	})
}
