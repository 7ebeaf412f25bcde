package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

// The read methods below are sinks/postgres's (read.go there) in SQLite's
// dialect, over the same tables (migration 000004): the status page reads
// either store through them. A URL list is passed as one JSON array and
// read with json_each, SQLite having no array parameters. A nil urls means
// every URL.

func urlFilter(urls []string) (string, string, error) {
	if urls == nil {
		return "", "", nil
	}
	b, err := json.Marshal(urls)
	if err != nil {
		return "", "", fmt.Errorf("encode urls: %w", err)
	}
	return ` AND url IN (SELECT value FROM json_each(?))`, string(b), nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseNullTime(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	return &t, err
}

// Latest returns the latest check and failure of urls (all when nil), in
// URL order.
func (s *Store) Latest(ctx context.Context, urls []string) ([]history.Latest, error) {
	filter, arg, err := urlFilter(urls)
	if err != nil {
		return nil, err
	}
	var args []any
	if filter != "" {
		args = append(args, arg)
	}
	// The open incident makes the site down, and with urls the latest
	// check's certificate expiry comes too (see sinks/postgres).
	tls := "NULL"
	if urls != nil {
		tls = "(SELECT r.tls_not_after FROM check_results r WHERE r.url = s.url AND r.checked_at = s.last_checked_at ORDER BY r.tls_not_after IS NULL LIMIT 1)"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT s.url, s.last_checked_at, coalesce(s.last_outcome, ''), coalesce(s.last_status_code, 0),
       coalesce(s.last_error_kind, ''), coalesce(s.last_error_message, ''),
       s.last_failure_at, coalesce(s.last_failure_status_code, 0), coalesce(s.last_failure_kind, ''), coalesce(s.last_failure_message, ''),
       o.started_at, `+tls+`
  FROM site_status s LEFT JOIN incidents_open o ON o.url = s.url WHERE true`+strings.ReplaceAll(filter, " url IN", " s.url IN")+` ORDER BY s.url`, args...)
	if err != nil {
		return nil, fmt.Errorf("read site status: %w", err)
	}
	defer rows.Close()
	var out []history.Latest
	for rows.Next() {
		var l history.Latest
		var checkedAt, failedAt, incidentSince, notAfter sql.NullString
		var f history.Failure
		if err := rows.Scan(&l.URL, &checkedAt, &l.Outcome, &l.StatusCode, &l.ErrorKind, &l.ErrorMessage,
			&failedAt, &f.StatusCode, &f.ErrorKind, &f.ErrorMessage, &incidentSince, &notAfter); err != nil {
			return nil, fmt.Errorf("read site status: %w", err)
		}
		if l.IncidentSince, err = parseNullTime(incidentSince); err == nil {
			l.TLSNotAfter, err = parseNullTime(notAfter)
		}
		if err != nil {
			return nil, fmt.Errorf("read site status: %w", err)
		}
		if t, err := parseNullTime(checkedAt); err != nil {
			return nil, fmt.Errorf("read site status: %w", err)
		} else if t != nil {
			l.CheckedAt = *t
		}
		if t, err := parseNullTime(failedAt); err != nil {
			return nil, fmt.Errorf("read site status: %w", err)
		} else if t != nil {
			f.CheckedAt = *t
			l.Failure = &f
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read site status: %w", err)
	}
	return out, nil
}

// Stats returns the sums of urls (all when nil) over the periods of
// history.Stats, from the hourly and daily rollups.
func (s *Store) Stats(ctx context.Context, urls []string, now time.Time) (map[string]history.Stats, error) {
	hourFrom, dayFrom7, dayFrom30 := history.StatsBounds(now)
	filter, arg, err := urlFilter(urls)
	if err != nil {
		return nil, err
	}
	args := []any{formatTime(hourFrom)}
	if filter != "" {
		args = append(args, arg)
	}
	args = append(args, formatTime(dayFrom7), formatTime(dayFrom30))
	if filter != "" {
		args = append(args, arg)
	}
	// One pass over the hours and one over the days (7 d with FILTER).
	q := `SELECT url, 0, sum(checks), sum(failures), sum(responses), coalesce(sum(response_p95_sum_ms), 0), 0, 0, 0, 0
  FROM check_windows_hourly WHERE hour >= ?` + filter + ` GROUP BY url
UNION ALL
SELECT url, 1, coalesce(sum(checks) FILTER (WHERE day >= from7), 0), coalesce(sum(failures) FILTER (WHERE day >= from7), 0),
       coalesce(sum(responses) FILTER (WHERE day >= from7), 0), coalesce(sum(response_p95_sum_ms) FILTER (WHERE day >= from7), 0),
       sum(checks), sum(failures), sum(responses), coalesce(sum(response_p95_sum_ms), 0)
  FROM (SELECT *, ? AS from7 FROM check_windows_daily) WHERE day >= ?` + filter + ` GROUP BY url`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read uptime: %w", err)
	}
	defer rows.Close()
	out := map[string]history.Stats{}
	for rows.Next() {
		var url string
		var days int
		var c, c30 history.Counts
		if err := rows.Scan(&url, &days, &c.Checks, &c.Failures, &c.Responses, &c.P95SumMS,
			&c30.Checks, &c30.Failures, &c30.Responses, &c30.P95SumMS); err != nil {
			return nil, fmt.Errorf("read uptime: %w", err)
		}
		history.SetStats(out, url, days == 1, c, c30)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read uptime: %w", err)
	}
	return out, nil
}

// Daily returns the daily sums of urls (all when nil) for the UTC days in
// [from, to), by URL and day.
func (s *Store) Daily(ctx context.Context, urls []string, from, to time.Time) ([]history.Day, error) {
	filter, arg, err := urlFilter(urls)
	if err != nil {
		return nil, err
	}
	args := []any{formatTime(from), formatTime(to)}
	if filter != "" {
		args = append(args, arg)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT url, day, checks, failures, responses, coalesce(response_p95_sum_ms, 0)
  FROM check_windows_daily WHERE day >= ? AND day < ?`+filter+` ORDER BY url, day`, args...)
	if err != nil {
		return nil, fmt.Errorf("read daily uptime: %w", err)
	}
	defer rows.Close()
	var out []history.Day
	for rows.Next() {
		var d history.Day
		var day string
		if err := rows.Scan(&d.URL, &day, &d.Checks, &d.Failures, &d.Responses, &d.P95SumMS); err != nil {
			return nil, fmt.Errorf("read daily uptime: %w", err)
		}
		if d.Day, err = parseTime(day); err != nil {
			return nil, fmt.Errorf("read daily uptime: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read daily uptime: %w", err)
	}
	return out, nil
}

// Windows returns url's five-minute windows starting in [from, to), oldest
// first, each over every region (check_windows_all_regions: counts summed,
// the worst region's percentiles).
func (s *Store) Windows(ctx context.Context, url string, from, to time.Time) ([]history.Window, error) {
	return s.windows(ctx, `SELECT '', window_start, window_end, checks, failures, responses,
       response_avg_ms, worst_p50_ms, worst_p95_ms, worst_p99_ms, response_max_ms
  FROM check_windows_all_regions WHERE url = ? AND window_start >= ? AND window_start < ?
 ORDER BY window_start`, url, from, to)
}

// RegionWindows returns url's five-minute windows starting in [from, to)
// as each region saw them, ordered by start, then region.
func (s *Store) RegionWindows(ctx context.Context, url string, from, to time.Time) ([]history.Window, error) {
	return s.windows(ctx, `SELECT region, window_start, window_end, checks, failures, responses,
       response_avg_ms, response_p50_ms, response_p95_ms, response_p99_ms, response_max_ms
  FROM check_windows WHERE url = ? AND window_start >= ? AND window_start < ?
 ORDER BY window_start, region`, url, from, to)
}

// RegionLatest returns each region's newest check of url at or after
// since, by region. SQLite takes the bare columns of a max() aggregate
// from the row holding the maximum: the newest check's.
func (s *Store) RegionLatest(ctx context.Context, url string, since time.Time) ([]history.RegionCheck, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT region, max(checked_at), outcome, status_code,
       coalesce(error_kind, ''), coalesce(error_message, '')
  FROM check_results WHERE url = ? AND checked_at >= ?
 GROUP BY region ORDER BY region`, url, formatTime(since))
	if err != nil {
		return nil, fmt.Errorf("read each region's latest check: %w", err)
	}
	defer rows.Close()
	var out []history.RegionCheck
	for rows.Next() {
		var c history.RegionCheck
		var at string
		if err := rows.Scan(&c.Region, &at, &c.Outcome, &c.StatusCode, &c.ErrorKind, &c.ErrorMessage); err != nil {
			return nil, fmt.Errorf("read each region's latest check: %w", err)
		}
		if c.CheckedAt, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("read each region's latest check: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read each region's latest check: %w", err)
	}
	return out, nil
}

func (s *Store) windows(ctx context.Context, q, url string, from, to time.Time) ([]history.Window, error) {
	rows, err := s.db.QueryContext(ctx, q, url, formatTime(from), formatTime(to))
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	defer rows.Close()
	var out []history.Window
	for rows.Next() {
		var w history.Window
		var start, end string
		if err := rows.Scan(&w.Region, &start, &end, &w.Checks, &w.Failures, &w.Responses, &w.AvgMS, &w.P50MS, &w.P95MS, &w.P99MS, &w.MaxMS); err != nil {
			return nil, fmt.Errorf("read windows: %w", err)
		}
		if w.Start, err = parseTime(start); err == nil {
			w.End, err = parseTime(end)
		}
		if err != nil {
			return nil, fmt.Errorf("read windows: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	return out, nil
}

// Phases returns the mean phase timings of url's checks in [from, to) per
// five-minute bucket aligned on the Unix epoch.
func (s *Store) Phases(ctx context.Context, url string, from, to time.Time) ([]history.Phases, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT (unixepoch(checked_at) / 300) * 300 AS b, count(*),
       avg(dns_ms), avg(connect_ms), avg(tls_ms), avg(ttfb_ms), avg(transfer_ms)
  FROM check_results WHERE url = ? AND checked_at >= ? AND checked_at < ?
 GROUP BY b ORDER BY b`, url, formatTime(from), formatTime(to))
	if err != nil {
		return nil, fmt.Errorf("read phases: %w", err)
	}
	defer rows.Close()
	var out []history.Phases
	for rows.Next() {
		var p history.Phases
		var b int64
		if err := rows.Scan(&b, &p.Checks, &p.DNSMS, &p.ConnectMS, &p.TLSMS, &p.TTFBMS, &p.TransferMS); err != nil {
			return nil, fmt.Errorf("read phases: %w", err)
		}
		p.Start = time.Unix(b, 0).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read phases: %w", err)
	}
	return out, nil
}

// Failures returns url's newest failed checks, at most limit.
func (s *Store) Failures(ctx context.Context, url string, limit int) ([]history.Failure, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT checked_at, status_code, error_kind, coalesce(error_message, ''), response_time_ms
  FROM check_results WHERE url = ? AND outcome = 'down'
 ORDER BY checked_at DESC LIMIT ?`, url, limit)
	if err != nil {
		return nil, fmt.Errorf("read failed checks: %w", err)
	}
	defer rows.Close()
	var out []history.Failure
	for rows.Next() {
		var f history.Failure
		var at string
		if err := rows.Scan(&at, &f.StatusCode, &f.ErrorKind, &f.ErrorMessage, &f.ResponseTimeMS); err != nil {
			return nil, fmt.Errorf("read failed checks: %w", err)
		}
		if f.CheckedAt, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("read failed checks: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read failed checks: %w", err)
	}
	return out, nil
}

// incidentsQuery is sinks/postgres's (see there for the rules) in
// SQLite's dialect. %s is the URL and open filter.
const incidentsQuery = `SELECT url, started_at, ended_at, coalesce(cause_kind, ''), coalesce(cause_message, ''),
       CASE WHEN ended_at IS NULL
            THEN max(failed_checks, (SELECT count(*) FROM check_results r
                                     WHERE r.url = i.url AND r.outcome = 'down' AND r.checked_at >= i.started_at))
            ELSE failed_checks END
  FROM (SELECT url, started_at, ended_at, cause_kind, cause_message, failed_checks FROM incidents
         WHERE started_at < ?2 AND (ended_at IS NULL OR ended_at > ?1) %s
         ORDER BY started_at DESC, url LIMIT ?3) i
 ORDER BY started_at DESC, url`

// Incidents returns the incidents q selects, newest first.
func (s *Store) Incidents(ctx context.Context, q history.IncidentQuery) ([]history.Incident, error) {
	filter, args := "", []any{formatTime(q.From), formatTime(q.To), q.Limit}
	if q.URL != "" {
		filter, args = "AND url = ?4", append(args, q.URL)
	}
	if q.OpenOnly {
		filter += " AND ended_at IS NULL" // the partial index incidents_open_url
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(incidentsQuery, filter), args...)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var out []history.Incident
	for rows.Next() {
		var in history.Incident
		var started string
		var ended sql.NullString
		if err := rows.Scan(&in.URL, &started, &ended, &in.CauseKind, &in.CauseMessage, &in.FailedChecks); err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		if in.StartedAt, err = parseTime(started); err == nil {
			in.EndedAt, err = parseNullTime(ended)
		}
		if err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	return out, nil
}
