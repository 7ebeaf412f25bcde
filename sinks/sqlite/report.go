package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sitewatch/sitewatch/report"
)

var _ report.Source = (*Store)(nil)

// reportChecks is sinks/postgres's query of the same name in SQLite's
// dialect: times are fixed-width text, so text comparison is time order.
const reportChecks = `SELECT url, region, scheduled_at, checked_at, outcome = 'up', response_time_ms, coalesce(error_kind, '')
  FROM check_results
 WHERE scheduled_at >= ? AND scheduled_at < ?
 ORDER BY url, scheduled_at, region, checked_at`

// ScanChecks implements report.Source with one query, streaming the rows.
func (s *Store) ScanChecks(ctx context.Context, from, to time.Time, fn func(report.Check) error) error {
	rows, err := s.db.QueryContext(ctx, reportChecks, formatTime(from), formatTime(to))
	if err != nil {
		return fmt.Errorf("read check_results: %w", err)
	}
	defer rows.Close()
	var c report.Check
	var scheduled, checked string
	var rt sql.NullFloat64
	for rows.Next() {
		if err := rows.Scan(&c.URL, &c.Region, &scheduled, &checked, &c.Up, &rt, &c.ErrorKind); err != nil {
			return fmt.Errorf("read check_results: %w", err)
		}
		if c.ScheduledAt, err = time.Parse(time.RFC3339Nano, scheduled); err != nil {
			return fmt.Errorf("read check_results: scheduled_at %q: %w", scheduled, err)
		}
		if c.CheckedAt, err = time.Parse(time.RFC3339Nano, checked); err != nil {
			return fmt.Errorf("read check_results: checked_at %q: %w", checked, err)
		}
		c.ScheduledAt, c.CheckedAt = c.ScheduledAt.UTC(), c.CheckedAt.UTC()
		c.ResponseTimeMS, c.HasResponse = rt.Float64, rt.Valid
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

// CountIncidents implements report.IncidentCounter, as sinks/postgres's.
func (s *Store) CountIncidents(ctx context.Context, from, to time.Time) (map[string]int64, bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'incidents'`).Scan(&n); err != nil {
		return nil, false, fmt.Errorf("look for incidents: %w", err)
	}
	if n == 0 {
		return nil, false, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT url, count(*) FROM incidents
 WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?)
 GROUP BY url`, formatTime(to), formatTime(from))
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
