package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/sitewatch/sitewatch/report"
)

var _ report.Source = (*Store)(nil)

// reportChecks is report.Source's one query: every check of the range,
// in the order the report walks them; the scheduled_at range prunes the
// daily partitions.
const reportChecks = `SELECT url, scheduled_at, checked_at, outcome = 'up', response_time_ms, coalesce(error_kind, '')
  FROM check_results
 WHERE scheduled_at >= $1 AND scheduled_at < $2
 ORDER BY url, scheduled_at, checked_at`

// ScanChecks implements report.Source with one query, streaming the rows.
func (s *Store) ScanChecks(ctx context.Context, from, to time.Time, fn func(report.Check) error) error {
	rows, err := s.pool.Query(ctx, reportChecks, from, to)
	if err != nil {
		return fmt.Errorf("read check_results: %w", err)
	}
	defer rows.Close()
	var c report.Check
	var rt *float64
	for rows.Next() {
		if err := rows.Scan(&c.URL, &c.ScheduledAt, &c.CheckedAt, &c.Up, &rt, &c.ErrorKind); err != nil {
			return fmt.Errorf("read check_results: %w", err)
		}
		c.ScheduledAt, c.CheckedAt = c.ScheduledAt.UTC(), c.CheckedAt.UTC()
		c.HasResponse = rt != nil
		c.ResponseTimeMS = 0
		if rt != nil {
			c.ResponseTimeMS = *rt
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read check_results: %w", err)
	}
	return nil
}
