package historytest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/web"
)

// SecondRegion is the region SeedSecondRegion writes.
const SecondRegion = "eu"

// SecondRegionWindow is the start of the window SeedSecondRegion fills:
// an hour before the scenario's Now, a window UpURL has in the default
// region too.
func SecondRegionWindow(sc Scenario) time.Time { return sc.Now.Add(-time.Hour) }

// SeedSecondRegion writes region SecondRegion's view of UpURL for one
// window (SecondRegionWindow): three checks, one failed, through the
// store's write path, results and window. It returns the checks and
// failures added.
func SeedSecondRegion(t testing.TB, st sinks.Store, sc Scenario) (checks, failures int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := SecondRegionWindow(sc)
	var rs []*codecs.Result
	for i := range 3 {
		at := start.Add(time.Duration(i)*time.Minute + 7*time.Second)
		r := &codecs.Result{EventID: fmt.Sprintf("%s@%d@%s", UpURL, at.UnixNano(), SecondRegion), URL: UpURL, Region: SecondRegion,
			ScheduledAt: at, CheckedAt: at, Outcome: codecs.OutcomeUp, StatusCode: 200, ResponseTimeMS: f(80), BodyBytes: 100, Checker: "seed-eu"}
		if i == 2 {
			r.Outcome, r.StatusCode, r.ErrorKind, r.ErrorMessage, r.ResponseTimeMS = codecs.OutcomeDown, 0, s(codecs.ErrTimeout), s("timeout"), nil
		}
		rs = append(rs, r)
	}
	w := &codecs.Window{V: 1, URL: UpURL, Region: SecondRegion, WindowStart: start, WindowEnd: start.Add(5 * time.Minute),
		Checks: 3, Failures: 1, Responses: 2, ResponseMinMS: f(80), ResponseAvgMS: f(80), ResponseMaxMS: f(80),
		ResponseP50MS: f(80), ResponseP95MS: f(80), ResponseP99MS: f(80), PercentilesExact: true,
		StatusCounts: map[string]int64{"200": 2, "0": 1}, Revision: 1}
	write(ctx, t, st, rs, []*codecs.Window{w})
	return 3, 1
}

// RegionStore is a store with its read side.
type RegionStore interface {
	sinks.Store
	web.Reader
}

// RegionsUpgrade is what RegionsUpgradeTest needs of a store; the SQL it
// runs through Count is the same in PostgreSQL and SQLite.
type RegionsUpgrade struct {
	// Scenario is what the store, at the version before
	// RegionsMigration, was seeded with (see LegacyRegionColumns).
	Scenario Scenario
	// Up migrates to the newest version and opens the store; close
	// closes it.
	Up func(t *testing.T) (st RegionStore, close func())
	// Down migrates down to the version before RegionsMigration (the
	// store from Up closed first).
	Down func(t *testing.T)
	// Count runs a query answering one integer.
	Count func(t *testing.T, sql string) int64
}

// RegionsUpgradeTest upgrades a store holding data to regions, writes a
// second region, goes down and up again: rows stored before regions are
// region 'default' and read as before; two regions' windows of one slot
// are two rows, summed by check_windows_all_regions and by the rollups;
// down merges them into one row per window with the same sums; up again
// works on that.
func RegionsUpgradeTest(t *testing.T, h RegionsUpgrade) {
	sc := h.Scenario
	results, windows := h.Count(t, "SELECT count(*) FROM check_results"), h.Count(t, "SELECT count(*) FROM check_windows")
	st, closeStore := h.Up(t)
	if n := h.Count(t, "SELECT count(*) FROM check_results WHERE region = 'default'"); n != results {
		t.Errorf("after the upgrade: %d of %d results in region default", n, results)
	}
	if n := h.Count(t, "SELECT count(*) FROM check_windows WHERE region = 'default'"); n != windows {
		t.Errorf("after the upgrade: %d of %d windows in region default", n, windows)
	}
	CheckUpgraded(t, st, sc)

	checks, failures := SeedSecondRegion(t, st, sc)
	const twoRowWindows = "SELECT count(*) FROM (SELECT url, window_start FROM check_windows GROUP BY url, window_start HAVING count(*) > 1) x"
	if n := h.Count(t, twoRowWindows); n != 1 {
		t.Errorf("%d windows with a row per region, want 1", n)
	}
	if n := h.Count(t, "SELECT checks FROM check_windows_all_regions WHERE regions = 2"); n != 5+checks {
		t.Errorf("check_windows_all_regions: %d checks over two regions, want %d", n, 5+checks)
	}
	if n := h.Count(t, "SELECT count(*) FROM check_windows_recomputed WHERE region = 'eu' AND checks = 3 AND failures = 1"); n != 1 {
		t.Errorf("check_windows_recomputed has %d rows for region eu's window, want 1", n)
	}
	checkTwoRegions(t, st, sc, checks, failures)
	hourly := h.Count(t, "SELECT sum(checks) FROM check_windows_hourly")
	closeStore()

	h.Down(t)
	if n := h.Count(t, twoRowWindows); n != 0 {
		t.Errorf("after down: %d windows with more than one row", n)
	}
	if n := h.Count(t, "SELECT max(checks) FROM check_windows"); n != 5+checks {
		t.Errorf("after down: the merged window has %d checks, want %d", n, 5+checks)
	}
	if n := h.Count(t, "SELECT sum(checks) FROM check_windows_hourly"); n != hourly {
		t.Errorf("after down: hourly rollups count %d checks, want %d as before", n, hourly)
	}
	if n := h.Count(t, "SELECT count(*) FROM check_results"); n != results+3 {
		t.Errorf("after down: %d results, want %d", n, results+3)
	}

	st, closeStore = h.Up(t)
	defer closeStore()
	if n := h.Count(t, "SELECT count(*) FROM check_windows WHERE region <> 'default'"); n != 0 {
		t.Errorf("up again: %d windows outside region default", n)
	}
	checkTwoRegions(t, st, sc, checks, failures)
}

// checkTwoRegions: UpURL's figures over the last 24 h count the checks of
// both regions.
func checkTwoRegions(t *testing.T, r web.Reader, sc Scenario, checks, failures int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stats, err := r.Stats(ctx, nil, sc.Now)
	if err != nil {
		t.Fatal(err)
	}
	if c := stats[UpURL].Last24h; c.Checks != sc.ChecksUp24h+checks || c.Failures != failures {
		t.Errorf("UpURL over 24 h with two regions: %+v, want %d checks, %d failures", c, sc.ChecksUp24h+checks, failures)
	}
}
