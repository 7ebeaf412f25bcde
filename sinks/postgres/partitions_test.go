package postgres

import (
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
)

func TestPartitionNames(t *testing.T) {
	t.Parallel()
	plus2 := time.FixedZone("+02", 2*3600)
	for _, c := range []struct {
		name string
		at   time.Time
		want string
		sql  string
	}{
		{"utc midnight", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), "check_results_p20240501",
			`CREATE TABLE "check_results_p20240501" PARTITION OF check_results FOR VALUES FROM ('2024-05-01T00:00:00Z') TO ('2024-05-02T00:00:00Z')`},
		{"local time is the UTC day", time.Date(2024, 5, 2, 1, 0, 0, 0, plus2), "check_results_p20240501", ""},
		{"year end", time.Date(2024, 12, 31, 23, 59, 59, 999, time.UTC), "check_results_p20241231",
			`CREATE TABLE "check_results_p20241231" PARTITION OF check_results FOR VALUES FROM ('2024-12-31T00:00:00Z') TO ('2025-01-01T00:00:00Z')`},
	} {
		p, err := dailyPartition(c.at)
		if err != nil || p.name != c.want {
			t.Errorf("%s: dailyPartition = %q, %v; want %q", c.name, p.name, err, c.want)
		}
		if c.sql != "" && p.createSQL() != c.sql {
			t.Errorf("%s: createSQL =\n%s\nwant\n%s", c.name, p.createSQL(), c.sql)
		}
		if back, ok := parsePartition(p.name); !ok || back != p {
			t.Errorf("%s: parsePartition(%q) = %v, %v", c.name, p.name, back, ok)
		}
	}
	if _, err := dailyPartition(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("dailyPartition accepted year 10000")
	}
	for _, name := range []string{"check_results_default", "check_results_p20241301", "check_results_p2024050", "check_results_p20240501; DROP TABLE x", "Check_results_p20240501", "check_results_p20240230"} {
		if _, ok := parsePartition(name); ok {
			t.Errorf("parsePartition accepted %q", name)
		}
	}
}

func partitionNames(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(testCtx(t), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'check_results'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func placement(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	rows, err := conn.Query(testCtx(t), "SELECT event_id, tableoid::regclass::text FROM check_results")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var id, table string
		if err := rows.Scan(&id, &table); err != nil {
			t.Fatal(err)
		}
		out[id] = table
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMaintainPartitions(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	conn := connect(t, url)
	day := func(m time.Month, d, h int) time.Time { return time.Date(2030, m, d, h, 0, 0, 0, time.UTC) }
	const retention = 10 * 24 * time.Hour

	// Three weeks ago: partitions for the day before, that day and the
	// next.
	if err := s.MaintainPartitions(ctx, day(2, 20, 12), 1, retention); err != nil {
		t.Fatal(err)
	}
	if got, want := partitionNames(t, conn), []string{"check_results_default", "check_results_p20300219", "check_results_p20300220", "check_results_p20300221"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("partitions = %v, want %v", got, want)
	}
	write := func(rs ...*codecs.Result) {
		t.Helper()
		if rej, err := s.WriteResults(ctx, rs); err != nil || len(rej) != 0 {
			t.Fatalf("WriteResults = %v, %v", rej, err)
		}
	}
	write(
		upResult("expired-partition", "https://a.example/", day(2, 20, 13), 1),
		upResult("tomorrow", "https://a.example/", day(3, 11, 10), 1),      // no partition yet
		upResult("late", "https://a.example/", day(3, 5, 8), 1),            // a replayed event
		upResult("late-2", "https://b.example/", day(3, 5, 23), 1),         // same day
		upResult("expired-default", "https://a.example/", day(2, 5, 8), 1), // older than retention
		upResult("skewed", "https://a.example/", time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), 1),
	)

	now := day(3, 10, 12)  // retention reaches back to 2030-02-28 12:00
	for round := range 2 { // the second run has nothing to do
		if err := s.MaintainPartitions(ctx, now, 2, retention); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		want := []string{"check_results_default", "check_results_p20300305", "check_results_p20300309", "check_results_p20300310", "check_results_p20300311", "check_results_p20300312"}
		if got := partitionNames(t, conn); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: partitions = %v, want %v", round, got, want)
		}
		wantRows := map[string]string{
			"tomorrow": "check_results_p20300311",
			"late":     "check_results_p20300305",
			"late-2":   "check_results_p20300305",
			"skewed":   "check_results_default",
		}
		if got := placement(t, conn); !reflect.DeepEqual(got, wantRows) {
			t.Fatalf("round %d: rows = %v, want %v", round, got, wantRows)
		}
	}
	// Last evening's events, read just after midnight (a backlog), go
	// straight into their day's partition.
	write(upResult("last-evening", "https://a.example/", day(3, 9, 22), 1))
	if got := placement(t, conn)["last-evening"]; got != "check_results_p20300309" {
		t.Fatalf("an event of yesterday stored in %s, want yesterday's partition", got)
	}
	// A moved event written again is still stored once.
	write(upResult("tomorrow", "https://a.example/", day(3, 11, 10), 1))
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results WHERE event_id = 'tomorrow'"); n != 1 {
		t.Fatalf("event stored %d times after its move and a replay", n)
	}
	// Partitions made by upkeep carry the table's indexes.
	want := queryInt(t, conn, "SELECT count(*) FROM pg_indexes WHERE tablename = 'check_results'")
	if n := queryInt(t, conn, "SELECT count(*) FROM pg_indexes WHERE tablename = 'check_results_p20300305'"); n != want || n < 3 {
		t.Fatalf("new partition has %d indexes, want the table's %d (unique key, url+time, brin, and later migrations')", n, want)
	}
}

// Two processors running upkeep at once both succeed.
func TestMaintainPartitionsConcurrent(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	if rej, err := s.WriteResults(ctx, []*codecs.Result{upResult("x", "https://a.example/", t0.AddDate(0, 0, -3), 1)}); err != nil || len(rej) != 0 {
		t.Fatal(rej, err)
	}
	other, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, st := range []*Store{s, other} {
		wg.Go(func() { errs[i] = st.MaintainPartitions(ctx, t0, 3, 30*24*time.Hour) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	got := partitionNames(t, conn)
	want := []string{"check_results_default", "check_results_p20300307", "check_results_p20300309", "check_results_p20300310", "check_results_p20300311", "check_results_p20300312", "check_results_p20300313"}
	if !slices.Equal(got, want) {
		t.Fatalf("partitions = %v, want %v", got, want)
	}
	if got := placement(t, conn); got["x"] != "check_results_p20300307" || len(got) != 1 {
		t.Fatalf("rows = %v", got)
	}
}
