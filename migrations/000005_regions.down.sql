-- Undoes 000005_regions.up.sql. The windows of several regions become one
-- row per URL and window again, as check_windows_all_regions sums them
-- (the worst region's percentiles, not exact); the rows of check_results
-- stay, each region's checks of a slot being rows with their own event_id.

DROP INDEX IF EXISTS check_results_url_region_checked_at;
DROP INDEX IF EXISTS check_windows_url_window_start;

CREATE TEMP TABLE sitewatch_v5_merged ON COMMIT DROP AS
SELECT a.url, a.window_start, a.window_end, a.checks, a.failures, a.responses,
       a.response_min_ms, a.response_avg_ms, a.response_max_ms,
       a.worst_p50_ms AS response_p50_ms, a.worst_p95_ms AS response_p95_ms, a.worst_p99_ms AS response_p99_ms,
       a.status_counts, a.regexp_failures,
       (SELECT max(w.revision) FROM check_windows w WHERE w.url = a.url AND w.window_start = a.window_start) AS revision
  FROM check_windows_all_regions a
 WHERE a.regions > 1;

DROP VIEW check_windows_all_regions;
DROP VIEW check_windows_recomputed;

DELETE FROM check_windows w
 USING sitewatch_v5_merged m
 WHERE w.url = m.url AND w.window_start = m.window_start;

ALTER TABLE check_windows DROP CONSTRAINT check_windows_pkey,
    ADD CONSTRAINT check_windows_pkey PRIMARY KEY (url, window_start);

-- uptime_* as 000001 made them (one row per window again).
CREATE OR REPLACE VIEW uptime_hourly AS
SELECT url,
       date_trunc('hour', window_start, 'UTC')                                AS hour,
       count(*)                                                               AS windows,
       sum(checks)                                                            AS checks,
       sum(failures)                                                          AS failures,
       round(100.0 * (sum(checks) - sum(failures)) / NULLIF(sum(checks), 0), 3) AS uptime_percent,
       sum(responses)                                                         AS responses,
       min(response_min_ms)                                                   AS response_min_ms,
       sum(response_avg_ms * responses)
           / NULLIF(sum(responses) FILTER (WHERE response_avg_ms IS NOT NULL), 0) AS response_avg_ms,
       max(response_p95_ms)                                                   AS response_p95_max_ms,
       max(response_max_ms)                                                   AS response_max_ms
FROM check_windows
GROUP BY url, date_trunc('hour', window_start, 'UTC');

CREATE OR REPLACE VIEW uptime_daily AS
SELECT url,
       date_trunc('day', window_start, 'UTC')                                 AS day,
       count(*)                                                               AS windows,
       sum(checks)                                                            AS checks,
       sum(failures)                                                          AS failures,
       round(100.0 * (sum(checks) - sum(failures)) / NULLIF(sum(checks), 0), 3) AS uptime_percent,
       sum(responses)                                                         AS responses,
       min(response_min_ms)                                                   AS response_min_ms,
       sum(response_avg_ms * responses)
           / NULLIF(sum(responses) FILTER (WHERE response_avg_ms IS NOT NULL), 0) AS response_avg_ms,
       max(response_p95_ms)                                                   AS response_p95_max_ms,
       max(response_max_ms)                                                   AS response_max_ms
FROM check_windows
GROUP BY url, date_trunc('day', window_start, 'UTC');

ALTER TABLE check_windows DROP COLUMN region;

-- The merged windows; the rollup trigger recomputes their hours, to the
-- same sums.
INSERT INTO check_windows (url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision, percentiles_exact)
SELECT url, window_start, window_end, checks, failures, responses,
       response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
       status_counts, regexp_failures, revision, false
  FROM sitewatch_v5_merged;

COMMENT ON TABLE check_windows IS
    'One row per URL and five-minute window [window_start, window_end) of checked_at; counts, min, avg and max equal check_windows_recomputed for the same URL and window, and so do the percentiles where percentiles_exact.';

ALTER TABLE check_results DROP COLUMN region;

-- As 000002 made it, but naming the columns it reads rather than r.*, so
-- that it depends on no column a down migration before this one drops.
CREATE VIEW check_windows_recomputed AS
SELECT b.url,
       b.window_start,
       b.window_start + interval '5 minutes'                                  AS window_end,
       count(*)                                                               AS checks,
       count(*) FILTER (WHERE b.outcome = 'down')                             AS failures,
       count(b.response_time_ms)                                              AS responses,
       min(b.response_time_ms)                                                AS response_min_ms,
       avg(b.response_time_ms)                                                AS response_avg_ms,
       max(b.response_time_ms)                                                AS response_max_ms,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY b.response_time_ms)       AS response_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY b.response_time_ms)       AS response_p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY b.response_time_ms)       AS response_p99_ms,
       (SELECT jsonb_object_agg(c.code, c.n)
          FROM (SELECT s.status_code::text AS code, count(*) AS n
                  FROM check_results s
                 WHERE s.url = b.url
                   AND s.checked_at >= b.window_start
                   AND s.checked_at <  b.window_start + interval '5 minutes'
                 GROUP BY s.status_code) c)                                   AS status_counts,
       count(*) FILTER (WHERE b.error_kind = 'regexp')                        AS regexp_failures
FROM (SELECT r.url, r.outcome, r.response_time_ms, r.error_kind,
             to_timestamp(floor(extract(epoch FROM r.checked_at) / 300) * 300) AS window_start
        FROM check_results r) b
GROUP BY b.url, b.window_start;

COMMENT ON VIEW check_windows_recomputed IS
    'check_windows as SQL computes it from check_results (the reference for the windows processor; percentiles are percentile_cont); filter by url.';
