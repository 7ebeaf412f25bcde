package postgres

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// TestStatementTimeoutFromURLOptions: a statement_timeout given in the
// database URL the libpq way, ?options=-c statement_timeout=..., must be
// the one in force. The store used to add its 30 s default as a startup
// parameter of its own, which PostgreSQL applies after options, so the
// URL's setting was silently ignored (found by test/faults).
func TestStatementTimeoutFromURLOptions(t *testing.T) {
	t.Parallel()
	dbURL := testkit.Postgres(t)
	for _, tc := range []struct{ query, want string }{
		{"options=-c%20statement_timeout%3D1234", "1234ms"},
		{"statement_timeout=2345", "2345ms"},
		{"", "30s"},
	} {
		u := dbURL
		if tc.query != "" {
			u += "&" + tc.query
		}
		s, err := Open(testCtx(t), u, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("Open %s: %v", tc.query, err)
		}
		var got string
		err = s.pool.QueryRow(testCtx(t), "SHOW statement_timeout").Scan(&got)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("URL with %q: statement_timeout %s, want %s", tc.query, got, tc.want)
		}
	}
}

// TestWriteResultsReportsAlreadyStoredAndDefaultPartition: rows that were
// already stored (a redelivery) and rows no daily partition covers (a
// scheduled_at in 2090 or 1999) are written as the contract says, skipped
// and kept in the default partition, and each is also logged and counted,
// so that an operator sees them (found by test/faults: both were silent).
func TestWriteResultsReportsAlreadyStoredAndDefaultPartition(t *testing.T) {
	t.Parallel()
	var logs testkit.SyncBuffer
	_, s := migratedStore(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := testCtx(t)
	now := time.Now().UTC()
	if err := s.MaintainPartitions(ctx, now, 1, 0); err != nil {
		t.Fatal(err)
	}
	// Noon: at the start of the hour after midnight, scheduled_at (a
	// second before checked_at) fell on yesterday, in the default
	// partition.
	today := results("today", 3, now.Truncate(24*time.Hour).Add(12*time.Hour))
	skewed := results("skewed", 2, time.Date(2090, 1, 2, 3, 4, 5, 0, time.UTC))
	skewed[1].ScheduledAt = time.Date(1999, 12, 31, 23, 0, 0, 0, time.UTC)
	skewed[1].CheckedAt = skewed[1].ScheduledAt
	if rej, err := s.WriteResults(ctx, append(append([]*codecs.Result{}, today[:2]...), skewed...)); err != nil || len(rej) > 0 {
		t.Fatalf("first write: %v %v", rej, err)
	}
	if rej, err := s.WriteResults(ctx, today); err != nil || len(rej) > 0 {
		t.Fatalf("second write: %v %v", rej, err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
	}
	if v := got["sitewatch_store_results_already_stored_total"]; v != 2 {
		t.Errorf("already stored counter %v, want 2", v)
	}
	if v := got["sitewatch_store_results_default_partition_total"]; v != 2 {
		t.Errorf("default partition counter %v, want 2", v)
	}
	// The first write went in by the plain COPY (its default-partition
	// rows counted all the same), the second, a redelivery, by the
	// deduplicating path.
	if v := got["sitewatch_store_results_copy_fallbacks_total"]; v != 1 {
		t.Errorf("copy fallbacks %v, want 1", v)
	}
	var inDefault, total int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM check_results_default), (SELECT count(*) FROM check_results)`).Scan(&inDefault, &total); err != nil {
		t.Fatal(err)
	}
	if inDefault != 2 || total != 5 {
		t.Errorf("%d rows in the default partition and %d in all, want 2 and 5", inDefault, total)
	}
	out := logs.String()
	for _, want := range []string{"results already stored, skipped", "rows=2", "default partition",
		"scheduled_at_from=1999-12-31T23:00:00.000Z", "scheduled_at_to=2090-01-02T03:04:04.000Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestPoolMaxConnsFromURL: a pool_max_conns in the database URL is the
// pool's size; Options.MaxConns and then DefaultMaxConns apply only when
// the URL says nothing. The store used to overwrite the URL's setting.
func TestPoolMaxConnsFromURL(t *testing.T) {
	t.Parallel()
	dbURL := testkit.Postgres(t)
	for _, tc := range []struct {
		name  string
		query string
		opt   int32
		want  int32
	}{
		{"url", "pool_max_conns=7", 0, 7},
		{"url wins over the option", "pool_max_conns=9", 3, 9},
		{"option", "", 3, 3},
		{"default", "", 0, DefaultMaxConns},
	} {
		u := dbURL
		if tc.query != "" {
			u += "&" + tc.query
		}
		s, err := Open(testCtx(t), u, Options{MaxConns: tc.opt, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("%s: Open: %v", tc.name, err)
		}
		got := s.pool.Config().MaxConns
		s.Close()
		if got != tc.want {
			t.Errorf("%s: pool of %d connections, want %d", tc.name, got, tc.want)
		}
	}
}

// TestWriteResultsMixedRedelivery: a batch of rows partly stored already
// (a redelivery overlapping new events) is refused by the plain COPY and
// written by the deduplicating path: every event once, none lost.
func TestWriteResultsMixedRedelivery(t *testing.T) {
	t.Parallel()
	_, s := migratedStore(t, Options{})
	ctx := testCtx(t)
	now := time.Now().UTC()
	if err := s.MaintainPartitions(ctx, now, 1, 0); err != nil {
		t.Fatal(err)
	}
	rs := results("mixed", 6, now.Truncate(time.Hour))
	if rej, err := s.WriteResults(ctx, rs[:4]); err != nil || len(rej) > 0 {
		t.Fatalf("first write: %v %v", rej, err)
	}
	if rej, err := s.WriteResults(ctx, rs[2:]); err != nil || len(rej) > 0 {
		t.Fatalf("overlapping write: %v %v", rej, err)
	}
	var n, distinct int
	if err := s.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id) FROM check_results`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 6 || distinct != 6 {
		t.Fatalf("%d rows, %d distinct events; want 6 and 6", n, distinct)
	}
}
