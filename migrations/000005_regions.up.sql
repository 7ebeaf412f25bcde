-- Regions (issue 12): every check carries the region of the emitter that
-- made it, and check_windows is kept per URL and region. The SQLite store
-- mirrors this file (sinks/sqlite/migrations/000005_regions.up.sql).
-- Upgrades a database with data in it: every row stored before regions is
-- region 'default' (its event_id is the default region's id already).

-- A region name: 1 to 32 characters of a-z, 0-9 and '-', starting with a
-- letter or digit (codecs.CheckRegion). A constant default only changes
-- the catalog; the CHECK reads every partition once.
ALTER TABLE check_results ADD COLUMN region text NOT NULL DEFAULT 'default'
    CONSTRAINT check_results_region_valid CHECK (region ~ '^[a-z0-9][a-z0-9-]{0,31}$');

ALTER TABLE check_windows ADD COLUMN region text NOT NULL DEFAULT 'default'
    CONSTRAINT check_windows_region_valid CHECK (region ~ '^[a-z0-9][a-z0-9-]{0,31}$');
ALTER TABLE check_windows DROP CONSTRAINT check_windows_pkey,
    ADD CONSTRAINT check_windows_pkey PRIMARY KEY (url, region, window_start);
-- "One URL over a time range", all regions: the primary key now has the
-- region between them, and the check_windows_rollup trigger, the site's
-- windows and check_windows_all_regions read so.
CREATE INDEX check_windows_url_window_start ON check_windows (url, window_start);

COMMENT ON TABLE check_windows IS
    'One row per URL, region and five-minute window [window_start, window_end) of checked_at; counts, min, avg and max equal check_windows_recomputed for the same URL, region and window, and so do the percentiles where percentiles_exact. check_windows_all_regions sums the regions.';

-- What stays right as it is with several rows per (url, window_start):
-- the check_windows_rollup trigger (000004) sums every row of a URL's hour
-- whatever its region, so check_windows_hourly and check_windows_daily
-- count the checks of every region; site_status (000004) is the latest
-- check of a URL from any region; the partial index check_windows_down is
-- per row, so per region.

-- uptime_hourly and uptime_daily sum every region's windows; "windows"
-- counts the five-minute windows, not one per region.
CREATE OR REPLACE VIEW uptime_hourly AS
SELECT url,
       date_trunc('hour', window_start, 'UTC')                                AS hour,
       count(DISTINCT window_start)                                           AS windows,
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
       count(DISTINCT window_start)                                           AS windows,
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

-- check_windows as SQL computes it from check_results, now per region (a
-- new column: the view is made again). Otherwise as in 000002, but naming
-- the columns it reads rather than r.*, so that it depends on no column a
-- down migration drops.
DROP VIEW check_windows_recomputed;

CREATE VIEW check_windows_recomputed AS
SELECT b.url,
       b.region,
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
                   AND s.region = b.region
                   AND s.checked_at >= b.window_start
                   AND s.checked_at <  b.window_start + interval '5 minutes'
                 GROUP BY s.status_code) c)                                   AS status_counts,
       count(*) FILTER (WHERE b.error_kind = 'regexp')                        AS regexp_failures
FROM (SELECT r.url, r.region, r.outcome, r.response_time_ms, r.error_kind,
             to_timestamp(floor(extract(epoch FROM r.checked_at) / 300) * 300) AS window_start
        FROM check_results r) b
GROUP BY b.url, b.region, b.window_start;

COMMENT ON VIEW check_windows_recomputed IS
    'check_windows as SQL computes it from check_results, per URL, region and window (the reference for the windows processor; percentiles are percentile_cont); filter by url.';

-- A window over every region: counts summed, min and max over the regions,
-- the mean weighted by each region's responses, and the percentiles of the
-- worst region (the one with the highest p95; by name among equals), since
-- percentiles cannot be merged. Filter it by url.
CREATE VIEW check_windows_all_regions AS
SELECT w.url,
       w.window_start,
       max(w.window_end)                                                      AS window_end,
       count(*)                                                               AS regions,
       sum(w.checks)                                                          AS checks,
       sum(w.failures)                                                        AS failures,
       sum(w.responses)                                                       AS responses,
       min(w.response_min_ms)                                                 AS response_min_ms,
       sum(w.response_avg_ms * w.responses)
           / NULLIF(sum(w.responses) FILTER (WHERE w.response_avg_ms IS NOT NULL), 0) AS response_avg_ms,
       max(w.response_max_ms)                                                 AS response_max_ms,
       (array_agg(w.response_p50_ms ORDER BY w.response_p95_ms DESC NULLS LAST, w.region))[1] AS worst_p50_ms,
       (array_agg(w.response_p95_ms ORDER BY w.response_p95_ms DESC NULLS LAST, w.region))[1] AS worst_p95_ms,
       (array_agg(w.response_p99_ms ORDER BY w.response_p95_ms DESC NULLS LAST, w.region))[1] AS worst_p99_ms,
       (array_agg(w.region ORDER BY w.response_p95_ms DESC NULLS LAST, w.region))[1]          AS worst_region,
       (SELECT coalesce(jsonb_object_agg(c.code, c.n), '{}'::jsonb)
          FROM (SELECT e.key AS code, sum(e.value::bigint) AS n
                  FROM check_windows s, jsonb_each_text(s.status_counts) e
                 WHERE s.url = w.url AND s.window_start = w.window_start
                 GROUP BY e.key) c)                                           AS status_counts,
       sum(w.regexp_failures)                                                 AS regexp_failures
FROM check_windows w
GROUP BY w.url, w.window_start;

COMMENT ON VIEW check_windows_all_regions IS
    'check_windows summed over the regions per URL and window; worst_p50/p95/p99_ms are the percentiles of the region with the highest p95; filter by url.';

-- "One URL and region over a time range" (a region's view of a site).
CREATE INDEX check_results_url_region_checked_at ON check_results (url, region, checked_at);
