package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
)

// The common batch is new rows only: re-deliveries (a crash or rebalance
// before the offsets were committed) and invalid rows are rare. So a batch
// is first written by one plain COPY into check_results, which costs what
// COPY costs. When that meets anything, a unique violation above all, its
// transaction rolls back whole and the batch is written again by the
// deduplicating path (staging table, INSERT ... ON CONFLICT DO NOTHING,
// bisection of invalid rows), whose unique key is the table's own: nothing
// is lost or stored twice either way.

// defaultRowsOfThisTx counts, after the COPY and in its transaction, the
// rows that went to check_results_default (no daily partition covers
// them), for the same log and metric as the deduplicating path. The rows a
// transaction inserted carry its id in xmin; the default partition is
// small (partition upkeep moves its rows out), so the scan is short.
const defaultRowsOfThisTx = `SELECT count(*), min(scheduled_at), max(scheduled_at)
FROM check_results_default WHERE xmin = pg_current_xact_id()::xid`

// copyResults writes rs[idx] by one COPY into check_results in its own
// transaction. It reports false, with the transaction rolled back, when
// the COPY did not go through; the caller then takes the deduplicating
// path (which also tells a store outage from a refused row).
func (s *Store) copyResults(ctx context.Context, rs []*codecs.Result, idx []int) (insertStats, bool) {
	var st insertStats
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n, err := copyResultRows(ctx, tx, rs, idx, false)
		if err != nil {
			return fmt.Errorf("copy into check_results: %w", err)
		}
		st = insertStats{staged: int64(len(idx)), inserted: n}
		var from, to *time.Time
		if err := tx.QueryRow(ctx, defaultRowsOfThisTx).Scan(&st.toDefault, &from, &to); err != nil {
			return fmt.Errorf("count rows in the default partition: %w", err)
		}
		if from != nil && to != nil {
			st.defaultFrom, st.defaultTo = from.UTC(), to.UTC()
		}
		return nil
	})
	if err != nil {
		s.m.copyFallbacks.Inc()
		if !errors.Is(err, context.Canceled) {
			s.logger.Debug("plain COPY of a results batch refused; writing it by the deduplicating path", "rows", len(idx), "err", err)
		}
		return insertStats{}, false
	}
	return st, true
}
