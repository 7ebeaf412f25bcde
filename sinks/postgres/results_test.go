package postgres

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

var t0 = time.Date(2030, 3, 10, 12, 0, 0, 0, time.UTC)

func TestWriteResultsRoundTripAndIdempotent(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	if err := s.MaintainPartitions(ctx, t0, 1, 0); err != nil {
		t.Fatal(err)
	}
	rs := results("ev", 200, t0)
	// Every optional field set, nanoseconds included (PostgreSQL keeps
	// microseconds).
	full := upResult("full", "https://full.example/", t0.Add(90*time.Minute+123456*time.Nanosecond), 42.125)
	full.TLSMS = ptr(3.5)
	full.Regexp = ptr("Example Domain")
	full.RegexpMatched = ptr(true)
	full.Region = "eu-west-1"
	notAfter := t0.Add(90*24*time.Hour + 999*time.Nanosecond)
	full.TLSNotAfter = &notAfter
	// The same rows, alone in a batch, go by the plain COPY; the batch
	// below, with a duplicate inside, by the deduplicating path: both
	// write every column alike.
	byCopy := *full
	byCopy.EventID = "full-copy"
	down := *rs[4]
	down.EventID = "down-copy"
	if rej, err := s.WriteResults(ctx, []*codecs.Result{&byCopy, &down}); err != nil || len(rej) != 0 {
		t.Fatalf("WriteResults = %v, %v", rej, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	fallbacks := func() float64 { return testkit.Metric(t, reg, "sitewatch_store_results_copy_fallbacks_total") }
	if n := fallbacks(); n != 0 {
		t.Fatalf("a batch of new rows fell back from the plain COPY %v times", n)
	}
	rs = append(rs, full, rs[3]) // and a duplicate inside the batch

	for round := range 2 {
		rej, err := s.WriteResults(ctx, rs)
		if err != nil || len(rej) != 0 {
			t.Fatalf("round %d: WriteResults = %v, %v", round, rej, err)
		}
	}
	conn := connect(t, url)
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results"); n != 203 {
		t.Fatalf("rows after writing the batch twice = %d, want 203", n)
	}
	if n := fallbacks(); n != 2 {
		t.Errorf("the batches with duplicates fell back %v times, want 2", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results_default"); n != 0 {
		t.Fatalf("%d rows in the default partition, want all in the day's partition", n)
	}

	rows, err := conn.Query(ctx, "SELECT "+resultColumnList+" FROM check_results WHERE event_id = ANY($1) ORDER BY event_id",
		[]string{"full", "ev-4", "full-copy", "down-copy"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (codecs.Result, error) {
		var r codecs.Result
		var code int16
		err := row.Scan(&r.EventID, &r.URL, &r.ScheduledAt, &r.CheckedAt, &r.Outcome, &code,
			&r.ResponseTimeMS, &r.DNSMS, &r.ConnectMS, &r.TLSMS, &r.TTFBMS, &r.TransferMS,
			&r.BodyBytes, &r.Regexp, &r.RegexpMatched, &r.ErrorKind, &r.ErrorMessage, &r.Checker, &r.TLSNotAfter, &r.Region)
		r.StatusCode = int(code)
		if r.TLSNotAfter != nil {
			na := r.TLSNotAfter.UTC()
			r.TLSNotAfter = &na
		}
		r.V = codecs.Version
		r.ScheduledAt, r.CheckedAt = r.ScheduledAt.UTC(), r.CheckedAt.UTC()
		return r, err
	})
	if err != nil {
		t.Fatal(err)
	}
	stored := func(r codecs.Result) codecs.Result { // PostgreSQL keeps microseconds
		r.CheckedAt = r.CheckedAt.Truncate(time.Microsecond)
		r.ScheduledAt = r.ScheduledAt.Truncate(time.Microsecond)
		if r.TLSNotAfter != nil {
			na := r.TLSNotAfter.Truncate(time.Microsecond)
			r.TLSNotAfter = &na
		}
		return r
	}
	if len(got) != 4 {
		t.Fatalf("read back %d rows, want 4", len(got))
	}
	for _, want := range []codecs.Result{*rs[4], stored(*full), stored(byCopy), down} {
		want.Region = codecs.RegionOrDefault(want.Region) // a result made without one is stored as default
		var found bool
		for _, g := range got {
			if g.EventID == want.EventID {
				found = true
				if !reflect.DeepEqual(g, want) {
					t.Errorf("stored row differs:\n got %+v\nwant %+v", g, want)
				}
			}
		}
		if !found {
			t.Errorf("event %s not stored", want.EventID)
		}
	}
}

// An event whose day has no partition (a replay of old events, a clock
// years off) is stored in the default partition and found by URL.
func TestWriteResultsWithoutPartition(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	if err := s.MaintainPartitions(ctx, t0, 2, 0); err != nil {
		t.Fatal(err)
	}
	rs := []*codecs.Result{
		upResult("future", "https://skew.example/", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), 5),
		upResult("past", "https://skew.example/", time.Date(2001, 9, 1, 0, 0, 0, 0, time.UTC), 5),
		upResult("today", "https://skew.example/", t0, 5),
	}
	if rej, err := s.WriteResults(ctx, rs); err != nil || len(rej) != 0 {
		t.Fatalf("WriteResults = %v, %v", rej, err)
	}
	conn := connect(t, url)
	rows, err := conn.Query(ctx, `SELECT event_id, tableoid::regclass::text FROM check_results
WHERE url = $1 AND checked_at BETWEEN $2 AND $3 ORDER BY checked_at`,
		"https://skew.example/", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	type placed struct{ ID, Table string }
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[placed])
	if err != nil {
		t.Fatal(err)
	}
	want := []placed{{"past", "check_results_default"}, {"today", "check_results_p20300310"}, {"future", "check_results_default"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
}

// Rows PostgreSQL refuses are reported by index with the server's reason,
// and every other row of the batch is written.
func TestWriteResultsRejectsInvalidRows(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	if err := s.MaintainPartitions(ctx, t0, 1, 0); err != nil {
		t.Fatal(err)
	}
	bad := map[int]struct {
		spoil func(*codecs.Result)
		why   string // in the reason
	}{
		3:   {func(r *codecs.Result) { r.ErrorMessage = ptr("bad\x00byte") }, "0x00"},
		17:  {func(r *codecs.Result) { r.StatusCode = 70000 }, "smallint out of range"},
		18:  {func(r *codecs.Result) { r.URL = "https://\xff.example/" }, "invalid byte sequence"},
		60:  {func(r *codecs.Result) { r.ResponseTimeMS = ptr(math.NaN()) }, "check_results_response_time_ms_range"},
		61:  {func(r *codecs.Result) { r.Outcome = "sideways" }, "check_results_outcome_valid"},
		99:  {func(r *codecs.Result) { r.Checker = "" }, "check_results_checker_nonempty"},
		100: {nil, "nil result"},
	}
	rs := results("mix", 120, t0)
	for i, b := range bad {
		if b.spoil == nil {
			rs[i] = nil
			continue
		}
		b.spoil(rs[i])
	}

	for round := range 2 { // a retried batch rejects the same rows again
		rej, err := s.WriteResults(ctx, rs)
		if err != nil {
			t.Fatalf("round %d: WriteResults: %v", round, err)
		}
		if len(rej) != len(bad) {
			t.Fatalf("round %d: rejected %v, want indices of %d bad rows", round, rej, len(bad))
		}
		for k, r := range rej {
			if round == 0 {
				t.Logf("row %d rejected: %s", r.Index, r.Reason)
			}
			b, ok := bad[r.Index]
			if !ok {
				t.Errorf("round %d: row %d rejected but valid: %s", round, r.Index, r.Reason)
				continue
			}
			if !strings.Contains(r.Reason, b.why) {
				t.Errorf("row %d: reason %q does not mention %q", r.Index, r.Reason, b.why)
			}
			if k > 0 && rej[k-1].Index >= r.Index {
				t.Errorf("rejections not in batch order: %v", rej)
			}
		}
	}
	conn := connect(t, url)
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results"); n != int64(len(rs)-len(bad)) {
		t.Fatalf("stored %d rows, want the %d good ones", n, len(rs)-len(bad))
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results WHERE event_id = ANY($1)", []string{"mix-3", "mix-17", "mix-60"}); n != 0 {
		t.Fatalf("bad rows stored: %d", n)
	}
}

// A failure that is not the rows' fault (here a statement timeout behind a
// lock) fails the whole batch, writes nothing, and a retry writes it all.
func TestWriteResultsNonDataErrorWritesNothing(t *testing.T) {
	t.Parallel()
	url, s := migratedStore(t, Options{StatementTimeout: 300 * time.Millisecond})
	ctx := testCtx(t)
	if err := s.MaintainPartitions(ctx, t0, 1, 0); err != nil {
		t.Fatal(err)
	}
	rs := results("locked", 50, t0)
	rs[7].ErrorMessage = ptr("\x00") // a bad row must not turn this into a rejection

	locker := connect(t, url)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE check_results IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	rej, err := s.WriteResults(ctx, rs)
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "57014" || rej != nil {
		t.Fatalf("WriteResults behind a lock = %v, %v; want a statement timeout error and no rejections", rej, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, url)
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results"); n != 0 {
		t.Fatalf("failed batch left %d rows", n)
	}
	rej, err = s.WriteResults(ctx, rs)
	if err != nil || len(rej) != 1 || rej[0].Index != 7 {
		t.Fatalf("retry = %v, %v; want row 7 rejected", rej, err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM check_results"); n != 49 {
		t.Fatalf("retry stored %d rows, want 49", n)
	}
}

func TestWriteResultsCancelled(t *testing.T) {
	t.Parallel()
	_, s := migratedStore(t, Options{})
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if _, err := s.WriteResults(ctx, results("c", 3, t0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteResults with a cancelled context = %v", err)
	}
}
