-- Undoes 000005_regions.up.sql, as migrations/000005_regions.down.sql
-- does: the windows of several regions become one row per URL and window,
-- as check_windows_all_regions sums them (the worst region's percentiles,
-- not exact); the rows of check_results stay.

CREATE TEMP TABLE sitewatch_v5_merged AS
SELECT a.url, a.window_start, a.window_end, a.checks, a.failures, a.responses,
       a.response_min_ms, a.response_avg_ms, a.response_max_ms,
       a.worst_p50_ms AS response_p50_ms, a.worst_p95_ms AS response_p95_ms, a.worst_p99_ms AS response_p99_ms,
       a.status_counts, a.regexp_failures,
       (SELECT max(w.revision) FROM check_windows w WHERE w.url = a.url AND w.window_start = a.window_start) AS revision,
       0 AS percentiles_exact
  FROM check_windows_all_regions a
 WHERE a.regions > 1;

DROP VIEW check_windows_all_regions;
DROP VIEW check_windows_recomputed;
DROP VIEW uptime_hourly;
DROP VIEW uptime_daily;

CREATE TABLE check_windows_v4 (
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
    CONSTRAINT check_windows_url_http CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
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
    CONSTRAINT check_windows_pkey PRIMARY KEY (url, window_start)
) WITHOUT ROWID;

INSERT INTO check_windows_v4 (url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision, percentiles_exact)
SELECT url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision, percentiles_exact
  FROM check_windows w
 WHERE NOT EXISTS (SELECT 1 FROM sitewatch_v5_merged m WHERE m.url = w.url AND m.window_start = w.window_start);

INSERT INTO check_windows_v4 (url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision, percentiles_exact)
SELECT url, window_start, window_end, checks, failures, responses,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts, regexp_failures, revision, percentiles_exact
  FROM sitewatch_v5_merged;

DROP TABLE sitewatch_v5_merged;
DROP TABLE check_windows;
ALTER TABLE check_windows_v4 RENAME TO check_windows;

CREATE INDEX check_windows_window_start ON check_windows (window_start);
CREATE INDEX check_windows_down ON check_windows (url, window_start) WHERE failures * 2 > checks;

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

CREATE VIEW uptime_hourly AS
SELECT url,
       strftime('%Y-%m-%dT%H:00:00.000000000Z', window_start)                                       AS hour,
       count(*)                                                               AS windows,
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
       count(*)                                                               AS windows,
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

DROP INDEX check_results_url_region_checked_at;
ALTER TABLE check_results DROP COLUMN region;

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
