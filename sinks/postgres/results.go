package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
)

// The staging table takes a batch by COPY, the fastest way in, and then
// one INSERT ... SELECT moves it into check_results with ON CONFLICT, which
// COPY cannot do. Each transaction creates it if its server session lacks
// it, and every commit empties it (ON COMMIT DELETE ROWS): creating and
// dropping it per transaction churned the catalog, and a batch of 1000 took
// about a fifth longer. Created "if not exists" in every transaction, it
// also works behind a transaction-pooling PgBouncer. Its integer columns
// are bigint whatever the Go value, so that every value encodes on the
// client and an out-of-range one is refused by the server, for one row,
// rather than failing the whole COPY before it is sent.
const (
	createStaging = `CREATE TEMP TABLE IF NOT EXISTS sitewatch_staged_results_v3 (
    pos              bigint,
    event_id         text,
    url              text,
    scheduled_at     timestamptz,
    checked_at       timestamptz,
    outcome          text,
    status_code      bigint,
    response_time_ms double precision,
    dns_ms           double precision,
    connect_ms       double precision,
    tls_ms           double precision,
    ttfb_ms          double precision,
    transfer_ms      double precision,
    body_bytes       bigint,
    regexp           text,
    regexp_matched   boolean,
    error_kind       text,
    error_message    text,
    checker          text,
    tls_not_after    timestamptz,
    region           text
) ON COMMIT DELETE ROWS`

	resultColumnList = `event_id, url, scheduled_at, checked_at, outcome, status_code,
    response_time_ms, dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms,
    body_bytes, regexp, regexp_matched, error_kind, error_message, checker,
    tls_not_after, region`

	// ON CONFLICT DO NOTHING on the idempotency key (event_id,
	// scheduled_at) skips a row whose event_id is already stored, whatever
	// its checked_at (a slot checked again after a crash), including a
	// duplicate earlier in the same batch: the first stored wins. The
	// staged rows are inserted in batch order (pos), which is the order of
	// their partition, so that the one kept is the one the windows
	// processor counts. The rows inserted are counted, and those that no
	// daily partition took (they landed in the default one) counted and
	// their scheduled_at range returned, for the log and the metrics.
	insertStaged = `WITH ins AS (
INSERT INTO check_results (` + resultColumnList + `)
SELECT ` + resultColumnList + ` FROM sitewatch_staged_results_v3 ORDER BY pos
ON CONFLICT (event_id, scheduled_at) DO NOTHING
RETURNING tableoid, scheduled_at)
SELECT count(*),
       count(*) FILTER (WHERE tableoid = 'check_results_default'::regclass),
       min(scheduled_at) FILTER (WHERE tableoid = 'check_results_default'::regclass),
       max(scheduled_at) FILTER (WHERE tableoid = 'check_results_default'::regclass)
FROM ins`

	clearStaging = `TRUNCATE sitewatch_staged_results_v3`
)

// stagedResultsTable is named for its shape: a session that made an older
// shape (a pooled connection outliving an upgrade) does not reuse it.
var stagedResultsTable = pgx.Identifier{"sitewatch_staged_results_v3"}

// WriteResults stores a batch of check results in check_results, in one
// transaction. An event already stored (same event_id, whatever its
// checked_at) is skipped, and of two in the batch the first is kept, so
// writing a batch twice stores it once and a slot checked twice is one row. Rows PostgreSQL refuses
// as invalid are returned as Rejected and the others are written; a non-nil
// error means nothing was written and the batch may be retried.
func (s *Store) WriteResults(ctx context.Context, rs []*codecs.Result) ([]Rejected, error) {
	var rejected []Rejected
	idx := make([]int, 0, len(rs))
	for i, r := range rs {
		if r == nil {
			rejected = append(rejected, Rejected{Index: i, Reason: "nil result"})
			continue
		}
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return rejected, nil
	}

	// The common case: new rows only, one plain COPY (results_copy.go).
	if st, ok := s.copyResults(ctx, rs, idx); ok {
		s.reportInsert(st)
		return rejected, nil
	}

	// Deduplicating path: the whole batch in one COPY and one INSERT.
	var st insertStats
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		st = insertStats{}
		if _, err := tx.Exec(ctx, createStaging); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		return stageAndInsert(ctx, tx, rs, idx, &st)
	})
	if err == nil {
		s.reportInsert(st)
		return rejected, nil
	}
	if _, ok := rowError(err); !ok {
		return nil, fmt.Errorf("write results: %w", err)
	}

	// Some row is invalid: write again, splitting the batch in halves
	// under savepoints until every bad row stands alone.
	var bad []Rejected
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		bad = bad[:0]
		st = insertStats{}
		if _, err := tx.Exec(ctx, createStaging); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		return bisectResults(ctx, tx, rs, idx, &bad, &st)
	})
	if err != nil {
		return nil, fmt.Errorf("write results: %w", err)
	}
	s.reportInsert(st)
	return sortedRejected(append(rejected, bad...)), nil
}

// bisectResults writes rs[idx] under a savepoint; when a row is refused, it
// rolls back and tries each half, so a batch of n rows with one bad row
// costs about 2·log2(n) attempts rather than n round trips per row.
func bisectResults(ctx context.Context, tx pgx.Tx, rs []*codecs.Result, idx []int, bad *[]Rejected, st *insertStats) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	var part insertStats
	err = stageAndInsert(ctx, sp, rs, idx, &part)
	if err == nil {
		st.add(part)
		if _, err := sp.Exec(ctx, clearStaging); err != nil {
			return fmt.Errorf("clear staging table: %w", err)
		}
		if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	pgErr, ok := rowError(err)
	if !ok {
		return err
	}
	if err := sp.Rollback(ctx); err != nil {
		return fmt.Errorf("rollback to savepoint: %w", err)
	}
	if len(idx) == 1 {
		*bad = append(*bad, Rejected{Index: idx[0], Reason: reason(pgErr)})
		return nil
	}
	mid := len(idx) / 2
	if err := bisectResults(ctx, tx, rs, idx[:mid], bad, st); err != nil {
		return err
	}
	return bisectResults(ctx, tx, rs, idx[mid:], bad, st)
}

// insertStats is what one write did with its rows.
type insertStats struct {
	staged, inserted int64
	// toDefault rows went to check_results_default, with scheduled_at
	// from defaultFrom to defaultTo.
	toDefault              int64
	defaultFrom, defaultTo time.Time
}

func (a *insertStats) add(b insertStats) {
	a.staged += b.staged
	a.inserted += b.inserted
	if b.toDefault > 0 {
		if a.toDefault == 0 || b.defaultFrom.Before(a.defaultFrom) {
			a.defaultFrom = b.defaultFrom
		}
		if a.toDefault == 0 || b.defaultTo.After(a.defaultTo) {
			a.defaultTo = b.defaultTo
		}
		a.toDefault += b.toDefault
	}
}

// reportInsert logs and counts, once the transaction committed, the rows
// that were already stored (a redelivery: skipped, as they must be) and
// those no daily partition took.
func (s *Store) reportInsert(st insertStats) {
	if dup := st.staged - st.inserted; dup > 0 {
		s.m.alreadyStored.Add(float64(dup))
		s.logger.Info("results already stored, skipped (a redelivery after a crash or rebalance)",
			"rows", dup, "batch", st.staged)
	}
	if st.toDefault > 0 {
		s.m.toDefault.Add(float64(st.toDefault))
		s.logger.Warn("results stored in the default partition: no daily partition covers their scheduled_at "+
			"(late, replayed or clock-skewed events); partition upkeep moves rows of days within the retention into their own partition and deletes older ones",
			"rows", st.toDefault, "scheduled_at_from", st.defaultFrom, "scheduled_at_to", st.defaultTo)
	}
}

// stageAndInsert copies rs[idx] into the staging table and moves them into
// check_results, adding to st what became of them.
func stageAndInsert(ctx context.Context, tx pgx.Tx, rs []*codecs.Result, idx []int, st *insertStats) error {
	if _, err := copyResultRows(ctx, tx, rs, idx, true); err != nil {
		return fmt.Errorf("copy to staging table: %w", err)
	}
	var from, to *time.Time
	var part insertStats
	if err := tx.QueryRow(ctx, insertStaged).Scan(&part.inserted, &part.toDefault, &from, &to); err != nil {
		return fmt.Errorf("insert into check_results: %w", err)
	}
	part.staged = int64(len(idx))
	if from != nil && to != nil {
		part.defaultFrom, part.defaultTo = from.UTC(), to.UTC()
	}
	st.add(part)
	return nil
}
