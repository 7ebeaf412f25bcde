package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/history"
)

// The read methods below serve the status page, the badges and the API
// (package web) from the tables of migration 000004. Each is one query,
// whatever the number of URLs it covers. A nil urls means every URL.

// Latest returns the latest check and failure of urls (all when nil), in
// URL order.
func (s *Store) Latest(ctx context.Context, urls []string) ([]history.Latest, error) {
	// The open incident (incidents_open: at most one a URL, its partial
	// unique index) makes the site down whatever its latest check says.
	// With urls, the latest check's certificate expiry too (index
	// check_results_url_checked_at, one probe a URL).
	tls, where := "NULL::timestamptz", ""
	var args []any
	if urls != nil {
		tls = "(SELECT r.tls_not_after FROM check_results r WHERE r.url = s.url AND r.checked_at = s.last_checked_at ORDER BY r.tls_not_after NULLS LAST LIMIT 1)"
		where = ` WHERE s.url = ANY($1)`
		args = append(args, urls)
	}
	q := `SELECT s.url, s.last_checked_at, s.last_outcome, s.last_status_code, s.last_error_kind, s.last_error_message,
       s.last_failure_at, s.last_failure_status_code, s.last_failure_kind, s.last_failure_message, o.started_at, ` + tls + `
  FROM site_status s LEFT JOIN incidents_open o ON o.url = s.url` + where
	rows, err := s.pool.Query(ctx, q+` ORDER BY s.url`, args...)
	if err != nil {
		return nil, fmt.Errorf("read site status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (history.Latest, error) {
		var l history.Latest
		var checkedAt, failedAt *time.Time
		var outcome, kind, msg, fkind, fmsg *string
		var code, fcode *int16
		if err := r.Scan(&l.URL, &checkedAt, &outcome, &code, &kind, &msg, &failedAt, &fcode, &fkind, &fmsg, &l.IncidentSince, &l.TLSNotAfter); err != nil {
			return l, err
		}
		l.IncidentSince, l.TLSNotAfter = utcPtr(l.IncidentSince), utcPtr(l.TLSNotAfter)
		if checkedAt != nil {
			l.CheckedAt = checkedAt.UTC()
		}
		l.Outcome, l.StatusCode, l.ErrorKind, l.ErrorMessage = deref(outcome), int(deref(code)), deref(kind), deref(msg)
		if failedAt != nil {
			l.Failure = &history.Failure{CheckedAt: failedAt.UTC(), StatusCode: int(deref(fcode)), ErrorKind: deref(fkind), ErrorMessage: deref(fmsg)}
		}
		return l, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read site status: %w", err)
	}
	return out, nil
}

// Stats returns the sums of urls (all when nil) over the last 24 hours,
// 7 days and 30 days before now (see history.Stats), from the hourly and
// daily rollups: at most 24 + 30 rows per URL.
func (s *Store) Stats(ctx context.Context, urls []string, now time.Time) (map[string]history.Stats, error) {
	hourFrom, dayFrom7, dayFrom30 := history.StatsBounds(now)
	filter, args := "", []any{hourFrom, dayFrom7, dayFrom30}
	if urls != nil {
		filter, args = " AND url = ANY($4)", append(args, urls)
	}
	// One pass over the hours and one over the days: 7 d and 30 d come
	// from the same rows (FILTER), the overview's largest read.
	q := `SELECT url, 0, sum(checks), sum(failures), sum(responses), coalesce(sum(response_p95_sum_ms), 0), 0, 0, 0, 0
  FROM check_windows_hourly WHERE hour >= $1` + filter + ` GROUP BY url
UNION ALL
SELECT url, 1, coalesce(sum(checks) FILTER (WHERE day >= $2), 0), coalesce(sum(failures) FILTER (WHERE day >= $2), 0),
       coalesce(sum(responses) FILTER (WHERE day >= $2), 0), coalesce(sum(response_p95_sum_ms) FILTER (WHERE day >= $2), 0),
       sum(checks), sum(failures), sum(responses), coalesce(sum(response_p95_sum_ms), 0)
  FROM check_windows_daily WHERE day >= $3` + filter + ` GROUP BY url`
	rows, err := s.pool.Query(ctx, q, args...)
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
// [from, to), by URL and day. Days without checks have no row.
func (s *Store) Daily(ctx context.Context, urls []string, from, to time.Time) ([]history.Day, error) {
	q := `SELECT url, day, checks, failures, responses, coalesce(response_p95_sum_ms, 0)
  FROM check_windows_daily WHERE day >= $1 AND day < $2`
	args := []any{from, to}
	if urls != nil {
		q += ` AND url = ANY($3)`
		args = append(args, urls)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY url, day`, args...)
	if err != nil {
		return nil, fmt.Errorf("read daily uptime: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (history.Day, error) {
		var d history.Day
		err := r.Scan(&d.URL, &d.Day, &d.Checks, &d.Failures, &d.Responses, &d.P95SumMS)
		d.Day = d.Day.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("read daily uptime: %w", err)
	}
	return out, nil
}

// Windows returns url's five-minute windows starting in [from, to), oldest
// first, each over every region (check_windows_all_regions: counts summed,
// the worst region's percentiles; the primary key's range per region).
func (s *Store) Windows(ctx context.Context, url string, from, to time.Time) ([]history.Window, error) {
	return s.windows(ctx, `SELECT '', window_start, window_end, checks, failures, responses,
       response_avg_ms, worst_p50_ms, worst_p95_ms, worst_p99_ms, response_max_ms
  FROM check_windows_all_regions WHERE url = $1 AND window_start >= $2 AND window_start < $3
 ORDER BY window_start`, url, from, to)
}

// RegionWindows returns url's five-minute windows starting in [from, to)
// as each region saw them, ordered by start, then region (the primary
// key's range per region).
func (s *Store) RegionWindows(ctx context.Context, url string, from, to time.Time) ([]history.Window, error) {
	return s.windows(ctx, `SELECT region, window_start, window_end, checks, failures, responses,
       response_avg_ms, response_p50_ms, response_p95_ms, response_p99_ms, response_max_ms
  FROM check_windows WHERE url = $1 AND window_start >= $2 AND window_start < $3
 ORDER BY window_start, region COLLATE "C"`, url, from, to)
}

// RegionLatest returns each region's newest check of url at or after
// since, by region (index check_results_url_region_checked_at: one probe a
// region).
func (s *Store) RegionLatest(ctx context.Context, url string, since time.Time) ([]history.RegionCheck, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (region COLLATE "C") region, checked_at, outcome, status_code,
       coalesce(error_kind, ''), coalesce(error_message, '')
  FROM check_results WHERE url = $1 AND checked_at >= $2
 ORDER BY region COLLATE "C", checked_at DESC`, url, since)
	if err != nil {
		return nil, fmt.Errorf("read each region's latest check: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (history.RegionCheck, error) {
		var c history.RegionCheck
		var code int16
		err := r.Scan(&c.Region, &c.CheckedAt, &c.Outcome, &code, &c.ErrorKind, &c.ErrorMessage)
		c.CheckedAt, c.StatusCode = c.CheckedAt.UTC(), int(code)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read each region's latest check: %w", err)
	}
	return out, nil
}

func (s *Store) windows(ctx context.Context, q, url string, from, to time.Time) ([]history.Window, error) {
	rows, err := s.pool.Query(ctx, q, url, from, to)
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (history.Window, error) {
		var w history.Window
		err := r.Scan(&w.Region, &w.Start, &w.End, &w.Checks, &w.Failures, &w.Responses, &w.AvgMS, &w.P50MS, &w.P95MS, &w.P99MS, &w.MaxMS)
		w.Start, w.End = w.Start.UTC(), w.End.UTC()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	return out, nil
}

// Phases returns the mean phase timings of url's checks in [from, to) per
// five-minute bucket (aligned on the Unix epoch, as the windows are).
func (s *Store) Phases(ctx context.Context, url string, from, to time.Time) ([]history.Phases, error) {
	rows, err := s.pool.Query(ctx, `SELECT to_timestamp(floor(extract(epoch FROM checked_at) / 300) * 300) AS b, count(*),
       avg(dns_ms), avg(connect_ms), avg(tls_ms), avg(ttfb_ms), avg(transfer_ms)
  FROM check_results WHERE url = $1 AND checked_at >= $2 AND checked_at < $3
 GROUP BY b ORDER BY b`, url, from, to)
	if err != nil {
		return nil, fmt.Errorf("read phases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (history.Phases, error) {
		var p history.Phases
		err := r.Scan(&p.Start, &p.Checks, &p.DNSMS, &p.ConnectMS, &p.TLSMS, &p.TTFBMS, &p.TransferMS)
		p.Start = p.Start.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read phases: %w", err)
	}
	return out, nil
}

// Failures returns url's newest failed checks, at most limit.
func (s *Store) Failures(ctx context.Context, url string, limit int) ([]history.Failure, error) {
	rows, err := s.pool.Query(ctx, `SELECT checked_at, status_code, error_kind, coalesce(error_message, ''), response_time_ms
  FROM check_results WHERE url = $1 AND outcome = 'down'
 ORDER BY checked_at DESC LIMIT $2`, url, limit)
	if err != nil {
		return nil, fmt.Errorf("read failed checks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (history.Failure, error) {
		var f history.Failure
		var code int16
		err := r.Scan(&f.CheckedAt, &code, &f.ErrorKind, &f.ErrorMessage, &f.ResponseTimeMS)
		f.CheckedAt, f.StatusCode = f.CheckedAt.UTC(), int(code)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("read failed checks: %w", err)
	}
	return out, nil
}

// incidentsQuery reads the incidents table (migration 000003, kept by
// the processor's sink-incidents from status_changes): the incidents
// overlapping [$1, $2), newest first, at most $3. While an incident is open
// its failed checks are counted on from check_results (the row holds the
// run that opened it until the up change closes it), for the rows picked
// only (index check_results_url_failures). %s is the URL and open filter.
const incidentsQuery = `SELECT url, started_at, ended_at, coalesce(cause_kind, ''), coalesce(cause_message, ''),
       CASE WHEN ended_at IS NULL
            THEN GREATEST(failed_checks, (SELECT count(*) FROM check_results r
                                          WHERE r.url = i.url AND r.outcome = 'down' AND r.checked_at >= i.started_at))
            ELSE failed_checks END
  FROM (SELECT url, started_at, ended_at, cause_kind, cause_message, failed_checks FROM incidents
         WHERE started_at < $2 AND (ended_at IS NULL OR ended_at > $1) %s
         ORDER BY started_at DESC, url LIMIT $3) i
 ORDER BY started_at DESC, url`

// Incidents returns the incidents q selects, newest first.
func (s *Store) Incidents(ctx context.Context, q history.IncidentQuery) ([]history.Incident, error) {
	filter, args := "", []any{q.From, q.To, q.Limit}
	if q.URL != "" {
		filter, args = "AND url = $4", append(args, q.URL)
	}
	if q.OpenOnly {
		filter += " AND ended_at IS NULL" // the partial index incidents_open_url
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf(incidentsQuery, filter), args...)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (history.Incident, error) {
		var in history.Incident
		err := r.Scan(&in.URL, &in.StartedAt, &in.EndedAt, &in.CauseKind, &in.CauseMessage, &in.FailedChecks)
		in.StartedAt = in.StartedAt.UTC()
		if in.EndedAt != nil {
			t := in.EndedAt.UTC()
			in.EndedAt = &t
		}
		return in, err
	})
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	return out, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
