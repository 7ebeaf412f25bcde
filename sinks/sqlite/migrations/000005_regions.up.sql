-- Regions: the SQLite mirror of migrations/000005_regions.up.sql. Every
-- check carries its region, and check_windows is kept per URL and region:
-- its primary key changes, which SQLite does only by making the table
-- again (its rows copied, as region 'default'). The views that read
-- check_windows are dropped first (SQLite checks them when a table is
-- renamed) and made again; the rollup triggers go with the old table and
-- are made again as they were: they sum every row of a URL's hour,
-- whatever its region.

ALTER TABLE check_results ADD COLUMN region TEXT NOT NULL DEFAULT 'default'
    CONSTRAINT check_results_region_valid CHECK (length(region) BETWEEN 1 AND 32 AND region NOT GLOB '*[^a-z0-9-]*' AND substr(region, 1, 1) <> '-');

CREATE INDEX check_results_url_region_checked_at ON check_results (url, region, checked_at);

DROP VIEW uptime_hourly;
DROP VIEW uptime_daily;
DROP VIEW check_windows_recomputed;

CREATE TABLE check_windows_v5 (
    url               TEXT    NOT NULL,
    window_start      TEXT    NOT NULL,
    window_end        TEXT    NOT NULL,
    checks            INTEGER NOT NULL,
    failures          INTEGER NOT NULL,
    responses         INTEGER NOT NULL,
    response_min_ms   REAL,
    response_avg_ms   REAL,
    response_max_ms   REAL,
    response_p50_ms   REAL,
    response_p95_ms   REAL,
    response_p99_ms   REAL,
    status_counts     TEXT    NOT NULL DEFAULT '{}',
    regexp_failures   INTEGER NOT NULL,
    revision          INTEGER NOT NULL,
    percentiles_exact INTEGER NOT NULL DEFAULT 0,
    region            TEXT    NOT NULL DEFAULT 'default',
    CONSTRAINT check_windows_url_http CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    CONSTRAINT check_windows_region_valid CHECK (length(region) BETWEEN 1 AND 32 AND region NOT GLOB '*[^a-z0-9-]*' AND substr(region, 1, 1) <> '-'),
    CONSTRAINT check_windows_window_start_format CHECK (length(window_start) = 30),
    CONSTRAINT check_windows_window_end_format CHECK (length(window_end) = 30),
    CONSTRAINT check_windows_end_after_start CHECK (window_end > window_start),
    CONSTRAINT check_windows_checks_range CHECK (checks >= 0),
    CONSTRAINT check_windows_failures_range CHECK (failures BETWEEN 0 AND checks),
    CONSTRAINT check_windows_responses_range CHECK (responses BETWEEN 0 AND checks),
    CONSTRAINT check_windows_regexp_failures_range CHECK (regexp_failures BETWEEN 0 AND checks),
    CONSTRAINT check_windows_status_counts_object CHECK (json_valid(status_counts) AND json_type(status_counts) = 'object'),
    CONSTRAINT check_windows_revision_range CHECK (revision >= 0),
    CONSTRAINT check_windows_percentiles_exact_bool CHECK (percentiles_exact IN (0, 1)),
    CONSTRAINT check_windows_pkey PRIMARY KEY (url, region, window_start)
) WITHOUT ROWID;

INSERT INTO check_windows_v5 (url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision, percentiles_exact, region)
SELECT url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision, percentiles_exact, 'default'
  FROM check_windows;

DROP TABLE check_windows;
ALTER TABLE check_windows_v5 RENAME TO check_windows;

CREATE INDEX check_windows_window_start ON check_windows (window_start);
CREATE INDEX check_windows_down ON check_windows (url, window_start) WHERE failures * 2 > checks;
-- "One URL over a time range", all regions: the primary key now has the
-- region between them (the rollup triggers and the site's windows read so).
CREATE INDEX check_windows_url_window_start ON check_windows (url, window_start);

-- The same body twice: SQLite has no AFTER INSERT OR UPDATE trigger.
CREATE TRIGGER check_windows_rollup_insert AFTER INSERT ON check_windows
BEGIN
    INSERT INTO check_windows_hourly (url, hour, checks, failures, responses, response_p95_sum_ms)
    SELECT NEW.url, strftime('%Y-%m-%dT%H:00:00.000000000Z', NEW.window_start),
           sum(checks), sum(failures), sum(responses), sum(response_p95_ms * responses)
      FROM check_windows
     WHERE url = NEW.url
       AND window_start >= strftime('%Y-%m-%dT%H:00:00.000000000Z', NEW.window_start)
       AND window_start <  strftime('%Y-%m-%dT%H:00:00.000000000Z', NEW.window_start, '+1 hour')
    ON CONFLICT (url, hour) DO UPDATE SET checks = excluded.checks, failures = excluded.failures,
        responses = excluded.responses, response_p95_sum_ms = excluded.response_p95_sum_ms;
    INSERT INTO check_windows_daily (url, day, checks, failures, responses, response_p95_sum_ms)
    SELECT NEW.url, strftime('%Y-%m-%dT00:00:00.000000000Z', NEW.window_start),
           sum(checks), sum(failures), sum(responses), sum(response_p95_sum_ms)
      FROM check_windows_hourly
     WHERE url = NEW.url
       AND hour >= strftime('%Y-%m-%dT00:00:00.000000000Z', NEW.window_start)
       AND hour <  strftime('%Y-%m-%dT00:00:00.000000000Z', NEW.window_start, '+1 day')
    ON CONFLICT (url, day) DO UPDATE SET checks = excluded.checks, failures = excluded.failures,
        responses = excluded.responses, response_p95_sum_ms = excluded.response_p95_sum_ms;
END;

CREATE TRIGGER check_windows_rollup_update AFTER UPDATE ON check_windows
BEGIN
    INSERT INTO check_windows_hourly (url, hour, checks, failures, responses, response_p95_sum_ms)
    SELECT NEW.url, strftime('%Y-%m-%dT%H:00:00.000000000Z', NEW.window_start),
           sum(checks), sum(failures), sum(responses), sum(response_p95_ms * responses)
      FROM check_windows
     WHERE url = NEW.url
       AND window_start >= strftime('%Y-%m-%dT%H:00:00.000000000Z', NEW.window_start)
       AND window_start <  strftime('%Y-%m-%dT%H:00:00.000000000Z', NEW.window_start, '+1 hour')
    ON CONFLICT (url, hour) DO UPDATE SET checks = excluded.checks, failures = excluded.failures,
        responses = excluded.responses, response_p95_sum_ms = excluded.response_p95_sum_ms;
    INSERT INTO check_windows_daily (url, day, checks, failures, responses, response_p95_sum_ms)
    SELECT NEW.url, strftime('%Y-%m-%dT00:00:00.000000000Z', NEW.window_start),
           sum(checks), sum(failures), sum(responses), sum(response_p95_sum_ms)
      FROM check_windows_hourly
     WHERE url = NEW.url
       AND hour >= strftime('%Y-%m-%dT00:00:00.000000000Z', NEW.window_start)
       AND hour <  strftime('%Y-%m-%dT00:00:00.000000000Z', NEW.window_start, '+1 day')
    ON CONFLICT (url, day) DO UPDATE SET checks = excluded.checks, failures = excluded.failures,
        responses = excluded.responses, response_p95_sum_ms = excluded.response_p95_sum_ms;
END;

-- uptime_hourly and uptime_daily sum every region's windows; "windows"
-- counts the five-minute windows, not one per region.
CREATE VIEW uptime_hourly AS
SELECT url,
       strftime('%Y-%m-%dT%H:00:00.000000000Z', window_start)                                       AS hour,
       count(DISTINCT window_start)                                           AS windows,
       sum(checks)                                                            AS checks,
       sum(failures)                                                          AS failures,
       round(100.0 * (sum(checks) - sum(failures)) / NULLIF(sum(checks), 0), 3) AS uptime_percent,
       sum(responses)                                                         AS responses,
       min(response_min_ms)                                                   AS response_min_ms,
       sum(response_avg_ms * responses)
           / NULLIF(sum(CASE WHEN response_avg_ms IS NOT NULL THEN responses ELSE 0 END), 0) AS response_avg_ms,
       max(response_p95_ms)                                                   AS response_p95_max_ms,
       max(response_max_ms)                                                   AS response_max_ms
FROM check_windows
GROUP BY url, hour;

CREATE VIEW uptime_daily AS
SELECT url,
       strftime('%Y-%m-%dT00:00:00.000000000Z', window_start)                                       AS day,
       count(DISTINCT window_start)                                           AS windows,
       sum(checks)                                                            AS checks,
       sum(failures)                                                          AS failures,
       round(100.0 * (sum(checks) - sum(failures)) / NULLIF(sum(checks), 0), 3) AS uptime_percent,
       sum(responses)                                                         AS responses,
       min(response_min_ms)                                                   AS response_min_ms,
       sum(response_avg_ms * responses)
           / NULLIF(sum(CASE WHEN response_avg_ms IS NOT NULL THEN responses ELSE 0 END), 0) AS response_avg_ms,
       max(response_p95_ms)                                                   AS response_p95_max_ms,
       max(response_max_ms)                                                   AS response_max_ms
FROM check_windows
GROUP BY url, day;

-- check_windows as SQL computes it from check_results, per URL, region and
-- window.
CREATE VIEW check_windows_recomputed AS
WITH b AS (
    SELECT r.*,
           strftime('%Y-%m-%dT%H:%M:%S.000000000Z', (unixepoch(checked_at) / 300) * 300, 'unixepoch') AS window_start
    FROM check_results r
),
agg AS (
    SELECT url, region, window_start,
           count(*)                                   AS checks,
           count(*) FILTER (WHERE outcome = 'down')   AS failures,
           count(response_time_ms)                    AS responses,
           min(response_time_ms)                      AS response_min_ms,
           avg(response_time_ms)                      AS response_avg_ms,
           max(response_time_ms)                      AS response_max_ms,
           count(*) FILTER (WHERE error_kind = 'regexp') AS regexp_failures
    FROM b
    GROUP BY url, region, window_start
),
codes AS (
    SELECT url, region, window_start, json_group_object(code, n) AS status_counts
    FROM (SELECT url, region, window_start, CAST(status_code AS TEXT) AS code, count(*) AS n
          FROM b
          GROUP BY url, region, window_start, status_code)
    GROUP BY url, region, window_start
),
ranked AS (
    SELECT url, region, window_start, response_time_ms AS v,
           row_number() OVER w - 1                                AS i,
           count(*) OVER (PARTITION BY url, region, window_start) AS n,
           lead(response_time_ms) OVER w                  AS v_next
    FROM b
    WHERE response_time_ms IS NOT NULL
    WINDOW w AS (PARTITION BY url, region, window_start ORDER BY response_time_ms)
),
-- percentile_cont(p): the value at rank floor(p * (n - 1)), interpolated
-- towards the next one.
pct AS (
    SELECT url, region, window_start,
           max(CASE WHEN i = CAST(0.50 * (n - 1) AS INTEGER) THEN v + (0.50 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p50_ms,
           max(CASE WHEN i = CAST(0.95 * (n - 1) AS INTEGER) THEN v + (0.95 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p95_ms,
           max(CASE WHEN i = CAST(0.99 * (n - 1) AS INTEGER) THEN v + (0.99 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p99_ms
    FROM ranked
    GROUP BY url, region, window_start
)
SELECT agg.url,
       agg.region,
       agg.window_start,
       strftime('%Y-%m-%dT%H:%M:%S.000000000Z', unixepoch(agg.window_start) + 300, 'unixepoch') AS window_end,
       checks, failures, responses,
       response_min_ms, response_avg_ms, response_max_ms,
       response_p50_ms, response_p95_ms, response_p99_ms,
       codes.status_counts,
       regexp_failures
FROM agg
JOIN codes ON codes.url = agg.url AND codes.region = agg.region AND codes.window_start = agg.window_start
LEFT JOIN pct ON pct.url = agg.url AND pct.region = agg.region AND pct.window_start = agg.window_start;

-- A window over every region: counts summed, min and max over the regions,
-- the mean weighted by each region's responses, and the percentiles of the
-- worst region (the highest p95; by name among equals). Filter it by url.
CREATE VIEW check_windows_all_regions AS
WITH ranked AS (
    SELECT w.*,
           row_number() OVER (PARTITION BY url, window_start ORDER BY response_p95_ms DESC NULLS LAST, region) AS worst
    FROM check_windows w
),
codes AS (
    SELECT url, window_start, json_group_object(code, n) AS status_counts
    FROM (SELECT w.url, w.window_start, j.key AS code, sum(j.value) AS n
          FROM check_windows w, json_each(w.status_counts) j
          GROUP BY w.url, w.window_start, j.key)
    GROUP BY url, window_start
)
SELECT r.url,
       r.window_start,
       max(r.window_end)                                                      AS window_end,
       count(*)                                                               AS regions,
       sum(r.checks)                                                          AS checks,
       sum(r.failures)                                                        AS failures,
       sum(r.responses)                                                       AS responses,
       min(r.response_min_ms)                                                 AS response_min_ms,
       sum(r.response_avg_ms * r.responses)
           / NULLIF(sum(CASE WHEN r.response_avg_ms IS NOT NULL THEN r.responses ELSE 0 END), 0) AS response_avg_ms,
       max(r.response_max_ms)                                                 AS response_max_ms,
       max(CASE WHEN r.worst = 1 THEN r.response_p50_ms END)                  AS worst_p50_ms,
       max(CASE WHEN r.worst = 1 THEN r.response_p95_ms END)                  AS worst_p95_ms,
       max(CASE WHEN r.worst = 1 THEN r.response_p99_ms END)                  AS worst_p99_ms,
       max(CASE WHEN r.worst = 1 THEN r.region END)                           AS worst_region,
       coalesce(max(c.status_counts), '{}')                                   AS status_counts,
       sum(r.regexp_failures)                                                 AS regexp_failures
FROM ranked r
LEFT JOIN codes c ON c.url = r.url AND c.window_start = r.window_start
GROUP BY r.url, r.window_start;
