package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
)

// upsertWindow stores one window emission unless a newer revision of the
// same window is already stored: windows are re-emitted when late events
// change them, and Kafka may deliver an older emission after a newer one
// (a replay), so the highest revision wins, not the last write. An equal
// revision leaves the stored row as it is (the first stored wins, as for
// results, and as in the SQLite store): a re-sent emission is a no-op.
//
// Counts are sent as bigint and narrowed by the server, so that a value out
// of range is refused for this row alone instead of failing to encode.
const upsertWindow = `INSERT INTO check_windows (
    url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms,
    response_p50_ms, response_p95_ms, response_p99_ms, percentiles_exact,
    status_counts, regexp_failures, revision, region)
VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::bigint,
    $7, $8, $9, $10, $11, $12, $13,
    $14::jsonb, $15::bigint, $16::bigint, $17)
ON CONFLICT (url, region, window_start) DO UPDATE SET
    window_end      = EXCLUDED.window_end,
    checks          = EXCLUDED.checks,
    failures        = EXCLUDED.failures,
    responses       = EXCLUDED.responses,
    response_min_ms = EXCLUDED.response_min_ms,
    response_avg_ms = EXCLUDED.response_avg_ms,
    response_max_ms = EXCLUDED.response_max_ms,
    response_p50_ms = EXCLUDED.response_p50_ms,
    response_p95_ms = EXCLUDED.response_p95_ms,
    response_p99_ms = EXCLUDED.response_p99_ms,
    percentiles_exact = EXCLUDED.percentiles_exact,
    status_counts   = EXCLUDED.status_counts,
    regexp_failures = EXCLUDED.regexp_failures,
    revision        = EXCLUDED.revision
WHERE check_windows.revision < EXCLUDED.revision`

// WriteWindows stores a batch of window aggregates in check_windows, in one
// transaction, keeping for each (url, region, window_start) the emission with the
// highest revision. Rows PostgreSQL refuses as invalid are returned as
// Rejected and the others are written; a non-nil error means nothing was
// written and the batch may be retried.
func (s *Store) WriteWindows(ctx context.Context, ws []*codecs.Window) ([]Rejected, error) {
	var nilRows []Rejected
	all := make([]int, 0, len(ws))
	for i, w := range ws {
		if w == nil {
			nilRows = append(nilRows, Rejected{Index: i, Reason: "nil window"})
			continue
		}
		all = append(all, i)
	}
	if len(all) == 0 {
		return nilRows, nil
	}

	var rejected []Rejected
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rejected = rejected[:0]
		pending := append([]int(nil), all...)
		// Each round sends every pending row in one pipelined batch
		// inside a savepoint. When a row is refused the server skips the
		// rest, so roll back to the savepoint, drop that row and send
		// the others again: k bad rows cost k extra round trips.
		for len(pending) > 0 {
			failed, err := sendWindows(ctx, tx, ws, pending)
			if err == nil {
				return nil
			}
			pgErr, ok := rowError(err)
			if !ok || failed < 0 {
				return err
			}
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT sitewatch_windows"); err != nil {
				return fmt.Errorf("rollback to savepoint: %w", err)
			}
			rejected = append(rejected, Rejected{Index: pending[failed], Reason: reason(pgErr)})
			pending = append(pending[:failed], pending[failed+1:]...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write windows: %w", err)
	}
	return sortedRejected(append(nilRows, rejected...)), nil
}

// sendWindows upserts ws[pending] in one batch under the savepoint
// sitewatch_windows. On failure it returns the position in pending of the
// row that failed, or -1 when the failure was not a row's.
func sendWindows(ctx context.Context, tx pgx.Tx, ws []*codecs.Window, pending []int) (failed int, err error) {
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT sitewatch_windows")
	for _, i := range pending {
		w := ws[i]
		counts := w.StatusCounts
		if counts == nil {
			// A nil map would encode as JSON null, not an empty object.
			counts = map[string]int64{}
		}
		b.Queue(upsertWindow,
			w.URL, w.WindowStart, w.WindowEnd, w.Checks, w.Failures, w.Responses,
			w.ResponseMinMS, w.ResponseAvgMS, w.ResponseMaxMS,
			w.ResponseP50MS, w.ResponseP95MS, w.ResponseP99MS, w.PercentilesExact,
			counts, w.RegexpFailures, w.Revision, codecs.RegionOrDefault(w.Region))
	}
	b.Queue("RELEASE SAVEPOINT sitewatch_windows")

	br := tx.SendBatch(ctx, b)
	failed, err = -1, nil
	if _, e := br.Exec(); e != nil {
		err = fmt.Errorf("savepoint: %w", e)
	}
	for pos := range pending {
		if err != nil {
			break
		}
		if _, e := br.Exec(); e != nil {
			failed, err = pos, fmt.Errorf("upsert window: %w", e)
		}
	}
	if err == nil {
		if _, e := br.Exec(); e != nil {
			err = fmt.Errorf("release savepoint: %w", e)
		}
	}
	if e := br.Close(); e != nil && err == nil {
		err = fmt.Errorf("send windows: %w", e)
	}
	return failed, err
}
