package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
)

const (
	// openIncident stores a down change as an open incident. ON CONFLICT
	// without a target skips both a change stored before (the alerts
	// processor re-sends a change it may have lost in a crash, same
	// change_id) and a second open incident for the URL (the partial
	// unique index incidents_open_url).
	openIncident = `INSERT INTO incidents (url, started_at, cause_kind, cause_message, failed_checks, down_change_id)
VALUES ($1, $2, $3, $4, $5::bigint, $6)
ON CONFLICT DO NOTHING`

	// closeIncident closes the URL's open incident with an up change: the
	// incident ends at the up change's since (the first good check), and
	// its failed checks become those stored in check_results for the
	// period when there are more than the run that opened it. An up
	// change seen before finds nothing open (or only a later incident,
	// which started after it) and changes nothing.
	closeIncident = `UPDATE incidents SET
    ended_at      = $2,
    up_change_id  = $3,
    failed_checks = GREATEST(failed_checks, (SELECT count(*) FROM check_results r
        WHERE r.url = incidents.url AND r.outcome = 'down'
        AND r.checked_at >= incidents.started_at AND r.checked_at < $2))
WHERE url = $1 AND ended_at IS NULL AND started_at <= $2`
)

// WriteChanges applies status changes to incidents in one transaction, in
// slice order; see sinks.IncidentStore. Changes of other kinds than down and up
// are accepted and change nothing. A change PostgreSQL refuses as invalid
// is returned as Rejected (each change runs under its own savepoint); a
// non-nil error means nothing was written.
func (s *Store) WriteChanges(ctx context.Context, cs []*codecs.StatusChange) ([]Rejected, error) {
	var rejected []Rejected
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rejected = rejected[:0]
		for i, c := range cs {
			if c == nil {
				rejected = append(rejected, Rejected{Index: i, Reason: "nil change"})
				continue
			}
			var query string
			var args []any
			switch c.Kind {
			case codecs.ChangeDown:
				query, args = openIncident, []any{c.URL, c.Since, c.ErrorKind, c.ErrorMessage, int64(c.Consecutive), c.ChangeID}
			case codecs.ChangeUp:
				query, args = closeIncident, []any{c.URL, c.Since, c.ChangeID}
			default:
				continue
			}
			sp, err := tx.Begin(ctx)
			if err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			if _, err := sp.Exec(ctx, query, args...); err != nil {
				pgErr, ok := rowError(err)
				if !ok {
					return fmt.Errorf("%s change %s: %w", c.Kind, c.ChangeID, err)
				}
				if err := sp.Rollback(ctx); err != nil {
					return fmt.Errorf("rollback to savepoint: %w", err)
				}
				rejected = append(rejected, Rejected{Index: i, Reason: reason(pgErr)})
				continue
			}
			if err := sp.Commit(ctx); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write changes: %w", err)
	}
	return rejected, nil
}

// OpenIncidents counts the incidents still open.
func (s *Store) OpenIncidents(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM incidents_open").Scan(&n); err != nil {
		return 0, fmt.Errorf("count open incidents: %w", err)
	}
	return n, nil
}
