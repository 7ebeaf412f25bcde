package postgres

import (
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"

	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// Migration 000005 upgrades a database holding data to regions, and goes
// down and up again (historytest.RegionsUpgradeTest).
func TestMigrationRegionsUpgradesData(t *testing.T) {
	t.Parallel()
	url := testkit.Postgres(t)
	ctx := testCtx(t)
	before := uint(historytest.RegionsMigration - 1)
	toBefore := func(t *testing.T) {
		t.Helper()
		if err := runMigrations(ctx, url, testLogger(t), func(m *migrate.Migrate) error { return m.Migrate(before) }); err != nil {
			t.Fatalf("migrate to %d: %v", before, err)
		}
	}
	toBefore(t)
	conn := connect(t, url)
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	execAll(t, conn, historytest.LegacyRegionColumns)
	sc := historytest.Seed(t, s, time.Now())
	s.Close()
	execAll(t, conn, historytest.DropLegacyRegionColumns)

	historytest.RegionsUpgradeTest(t, historytest.RegionsUpgrade{
		Scenario: sc,
		Up: func(t *testing.T) (historytest.RegionStore, func()) {
			if err := Migrate(ctx, url, testLogger(t)); err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			s, err := Open(ctx, url, Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s, s.Close
		},
		Down:  toBefore,
		Count: func(t *testing.T, sql string) int64 { return queryInt(t, conn, sql) },
	})
}
