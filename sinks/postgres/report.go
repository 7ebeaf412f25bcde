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
// daily partitions. COLLATE "C" orders URLs byte by byte, as the report
// (and SQLite) compare them, whatever the database's collation.
const reportChecks = `SELECT url, region, scheduled_at, checked_at, outcome = 'up', response_time_ms, coalesce(error_kind, '')
  FROM check_results
 WHERE scheduled_at >= $1 AND scheduled_at < $2
 ORDER BY url COLLATE "C", scheduled_at, region COLLATE "C", checked_at`

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
		if err := rows.Scan(&c.URL, &c.Region, &c.ScheduledAt, &c.CheckedAt, &c.Up, &rt, &c.ErrorKind); err != nil {
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

var _ report.IncidentCounter = (*Store)(nil)

// CountIncidents implements report.IncidentCounter: the incidents table
// comes with migration 000003; without it ok is false and the report
// counts down periods instead.
func (s *Store) CountIncidents(ctx context.Context, from, to time.Time) (map[string]int64, bool, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('incidents') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, false, fmt.Errorf("look for incidents: %w", err)
	}
	if !exists {
		return nil, false, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT url, count(*) FROM incidents
 WHERE started_at < $2 AND (ended_at IS NULL OR ended_at > $1)
 GROUP BY url`, from, to)
	if err != nil {
		return nil, false, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	counts, err := report.ScanCounts(rows)
	if err != nil {
		return nil, false, fmt.Errorf("read incidents: %w", err)
	}
	return counts, true, nil
}
