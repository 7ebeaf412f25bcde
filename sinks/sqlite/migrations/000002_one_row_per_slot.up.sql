-- Mirrors migrations/000002_one_row_per_slot.up.sql. check_results is
-- already one row per event_id here (UNIQUE (event_id); SQLite has no
-- partitions), so only check_windows changes: percentiles_exact says
-- whether the window's percentiles are percentile_cont of its response
-- times (up to 4096 per window) or come from the 1 % sketch (above that,
-- and for rows written before this migration).

ALTER TABLE check_windows ADD COLUMN percentiles_exact INTEGER NOT NULL DEFAULT 0
    CONSTRAINT check_windows_percentiles_exact_bool CHECK (percentiles_exact IN (0, 1));

DROP VIEW check_windows_recomputed;

-- What check_windows should hold, computed from check_results: windows are
-- aligned on the Unix epoch and cut by checked_at, status_counts counts
-- every check by status_code ("0" for no response), regexp_failures counts
-- checks that failed on their regexp (error_kind = 'regexp', as in
-- PostgreSQL and the windows processor: 000001 counted regexp_matched = 0,
-- which also took checks that failed on their status first), and the
-- percentiles are percentile_cont. Filter it by url.
CREATE VIEW check_windows_recomputed AS
WITH b AS (
    SELECT r.*,
           strftime('%Y-%m-%dT%H:%M:%S.000000000Z', (unixepoch(checked_at) / 300) * 300, 'unixepoch') AS window_start
    FROM check_results r
),
agg AS (
    SELECT url, window_start,
           count(*)                                   AS checks,
           count(*) FILTER (WHERE outcome = 'down')   AS failures,
           count(response_time_ms)                    AS responses,
           min(response_time_ms)                      AS response_min_ms,
           avg(response_time_ms)                      AS response_avg_ms,
           max(response_time_ms)                      AS response_max_ms,
           count(*) FILTER (WHERE error_kind = 'regexp') AS regexp_failures
    FROM b
    GROUP BY url, window_start
),
codes AS (
    SELECT url, window_start, json_group_object(code, n) AS status_counts
    FROM (SELECT url, window_start, CAST(status_code AS TEXT) AS code, count(*) AS n
          FROM b
          GROUP BY url, window_start, status_code)
    GROUP BY url, window_start
),
ranked AS (
    SELECT url, window_start, response_time_ms AS v,
           row_number() OVER w - 1                        AS i,
           count(*) OVER (PARTITION BY url, window_start) AS n,
           lead(response_time_ms) OVER w                  AS v_next
    FROM b
    WHERE response_time_ms IS NOT NULL
    WINDOW w AS (PARTITION BY url, window_start ORDER BY response_time_ms)
),
-- percentile_cont(p): the value at rank floor(p * (n - 1)), interpolated
-- towards the next one.
pct AS (
    SELECT url, window_start,
           max(CASE WHEN i = CAST(0.50 * (n - 1) AS INTEGER) THEN v + (0.50 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p50_ms,
           max(CASE WHEN i = CAST(0.95 * (n - 1) AS INTEGER) THEN v + (0.95 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p95_ms,
           max(CASE WHEN i = CAST(0.99 * (n - 1) AS INTEGER) THEN v + (0.99 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p99_ms
    FROM ranked
    GROUP BY url, window_start
)
SELECT agg.url,
       agg.window_start,
       strftime('%Y-%m-%dT%H:%M:%S.000000000Z', unixepoch(agg.window_start) + 300, 'unixepoch') AS window_end,
       checks, failures, responses,
       response_min_ms, response_avg_ms, response_max_ms,
       response_p50_ms, response_p95_ms, response_p99_ms,
       codes.status_counts,
       regexp_failures
FROM agg
JOIN codes ON codes.url = agg.url AND codes.window_start = agg.window_start
LEFT JOIN pct ON pct.url = agg.url AND pct.window_start = agg.window_start;
