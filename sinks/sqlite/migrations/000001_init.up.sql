-- The laptop-mode store: the tables, columns, constraint names and views of
-- the PostgreSQL schema (migrations/000001_init.up.sql) in SQLite's dialect.
--
-- Timestamps are UTC text in a fixed-width RFC 3339 form with nine
-- fractional digits ("2024-05-01T12:00:00.000000000Z"): text order is time
-- order, and SQLite's date functions read them. The views' hour and day
-- columns use the same form. The length checks keep out rows that would
-- break that order (years past 9999).
--
-- SQLite has no percentile_cont; the views compute the same continuous
-- percentiles (linear interpolation between the two nearest ranks) with
-- window functions, so every view has PostgreSQL's columns.

CREATE TABLE check_results (
    event_id         TEXT    NOT NULL,
    url              TEXT    NOT NULL,
    scheduled_at     TEXT    NOT NULL,
    checked_at       TEXT    NOT NULL,
    outcome          TEXT    NOT NULL,
    status_code      INTEGER NOT NULL,
    response_time_ms REAL,
    dns_ms           REAL,
    connect_ms       REAL,
    tls_ms           REAL,
    ttfb_ms          REAL,
    transfer_ms      REAL,
    body_bytes       INTEGER NOT NULL,
    regexp           TEXT,
    regexp_matched   INTEGER,
    error_kind       TEXT,
    error_message    TEXT,
    checker          TEXT    NOT NULL,
    CONSTRAINT check_results_event_id_nonempty CHECK (event_id <> ''),
    CONSTRAINT check_results_url_http CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    CONSTRAINT check_results_scheduled_at_format CHECK (length(scheduled_at) = 30),
    CONSTRAINT check_results_checked_at_format CHECK (length(checked_at) = 30),
    CONSTRAINT check_results_outcome_valid CHECK (outcome IN ('up', 'down')),
    CONSTRAINT check_results_status_code_range CHECK (status_code BETWEEN 0 AND 999),
    CONSTRAINT check_results_response_time_ms_range CHECK (response_time_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_dns_ms_range CHECK (dns_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_connect_ms_range CHECK (connect_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_tls_ms_range CHECK (tls_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_ttfb_ms_range CHECK (ttfb_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_transfer_ms_range CHECK (transfer_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_body_bytes_range CHECK (body_bytes >= 0),
    CONSTRAINT check_results_regexp_matched_bool CHECK (regexp_matched IN (0, 1)),
    CONSTRAINT check_results_error_kind_valid CHECK (error_kind IN ('dns', 'connect', 'tls', 'timeout', 'status', 'regexp', 'body_too_large', 'redirects', 'other')),
    CONSTRAINT check_results_error_kind_iff_down CHECK ((outcome = 'down') = (error_kind IS NOT NULL)),
    CONSTRAINT check_results_checker_nonempty CHECK (checker <> ''),
    -- The idempotency key (PostgreSQL adds checked_at, its partition key).
    CONSTRAINT check_results_event_id_key UNIQUE (event_id)
);

-- "One URL over a time range", and time ranges across all URLs.
CREATE INDEX check_results_url_checked_at ON check_results (url, checked_at);
CREATE INDEX check_results_checked_at ON check_results (checked_at);

-- One row per URL and five-minute window; the sink keeps the highest
-- revision of each.
CREATE TABLE check_windows (
    url             TEXT    NOT NULL,
    window_start    TEXT    NOT NULL,
    window_end      TEXT    NOT NULL,
    checks          INTEGER NOT NULL,
    failures        INTEGER NOT NULL,
    responses       INTEGER NOT NULL,
    response_min_ms REAL,
    response_avg_ms REAL,
    response_max_ms REAL,
    response_p50_ms REAL,
    response_p95_ms REAL,
    response_p99_ms REAL,
    status_counts   TEXT    NOT NULL DEFAULT '{}',
    regexp_failures INTEGER NOT NULL,
    revision        INTEGER NOT NULL,
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
    CONSTRAINT check_windows_pkey PRIMARY KEY (url, window_start)
) WITHOUT ROWID;

-- Time ranges across all URLs (the primary key serves one URL).
CREATE INDEX check_windows_window_start ON check_windows (window_start);

-- Uptime per URL per UTC hour and day, from the five-minute windows.
-- uptime_percent is NULL for a period without checks; response_avg_ms is
-- weighted by each window's responses; response_p95_max_ms is the worst
-- window's p95 (percentiles cannot be merged from windows).
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

-- Exact latency percentiles and uptime per URL per UTC hour and day, from
-- the raw checks. Filter them by url.
CREATE VIEW latency_hourly AS
WITH r AS (
    SELECT url, strftime('%Y-%m-%dT%H:00:00.000000000Z', checked_at) AS hour, outcome, response_time_ms
    FROM check_results
),
agg AS (
    SELECT url, hour,
           count(*)                                                            AS checks,
           count(*) FILTER (WHERE outcome = 'down')                            AS failures,
           round(100.0 * count(*) FILTER (WHERE outcome = 'up') / count(*), 3) AS uptime_percent,
           count(response_time_ms)                                             AS responses,
           min(response_time_ms)                                               AS response_min_ms,
           avg(response_time_ms)                                               AS response_avg_ms,
           max(response_time_ms)                                               AS response_max_ms
    FROM r
    GROUP BY url, hour
),
ranked AS (
    SELECT url, hour, response_time_ms AS v,
           row_number() OVER w - 1                AS i,
           count(*) OVER (PARTITION BY url, hour) AS n,
           lead(response_time_ms) OVER w          AS v_next
    FROM r
    WHERE response_time_ms IS NOT NULL
    WINDOW w AS (PARTITION BY url, hour ORDER BY response_time_ms)
),
-- percentile_cont(p): the value at rank floor(p * (n - 1)), interpolated
-- towards the next one.
pct AS (
    SELECT url, hour,
           max(CASE WHEN i = CAST(0.50 * (n - 1) AS INTEGER) THEN v + (0.50 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p50_ms,
           max(CASE WHEN i = CAST(0.95 * (n - 1) AS INTEGER) THEN v + (0.95 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p95_ms,
           max(CASE WHEN i = CAST(0.99 * (n - 1) AS INTEGER) THEN v + (0.99 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p99_ms
    FROM ranked
    GROUP BY url, hour
)
SELECT agg.url, agg.hour, checks, failures, uptime_percent, responses,
       response_min_ms, response_avg_ms, response_p50_ms, response_p95_ms, response_p99_ms, response_max_ms
FROM agg LEFT JOIN pct ON pct.url = agg.url AND pct.hour = agg.hour;

CREATE VIEW latency_daily AS
WITH r AS (
    SELECT url, strftime('%Y-%m-%dT00:00:00.000000000Z', checked_at) AS day, outcome, response_time_ms
    FROM check_results
),
agg AS (
    SELECT url, day,
           count(*)                                                            AS checks,
           count(*) FILTER (WHERE outcome = 'down')                            AS failures,
           round(100.0 * count(*) FILTER (WHERE outcome = 'up') / count(*), 3) AS uptime_percent,
           count(response_time_ms)                                             AS responses,
           min(response_time_ms)                                               AS response_min_ms,
           avg(response_time_ms)                                               AS response_avg_ms,
           max(response_time_ms)                                               AS response_max_ms
    FROM r
    GROUP BY url, day
),
ranked AS (
    SELECT url, day, response_time_ms AS v,
           row_number() OVER w - 1               AS i,
           count(*) OVER (PARTITION BY url, day) AS n,
           lead(response_time_ms) OVER w         AS v_next
    FROM r
    WHERE response_time_ms IS NOT NULL
    WINDOW w AS (PARTITION BY url, day ORDER BY response_time_ms)
),
-- percentile_cont(p): the value at rank floor(p * (n - 1)), interpolated
-- towards the next one.
pct AS (
    SELECT url, day,
           max(CASE WHEN i = CAST(0.50 * (n - 1) AS INTEGER) THEN v + (0.50 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p50_ms,
           max(CASE WHEN i = CAST(0.95 * (n - 1) AS INTEGER) THEN v + (0.95 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p95_ms,
           max(CASE WHEN i = CAST(0.99 * (n - 1) AS INTEGER) THEN v + (0.99 * (n - 1) - i) * (coalesce(v_next, v) - v) END) AS response_p99_ms
    FROM ranked
    GROUP BY url, day
)
SELECT agg.url, agg.day, checks, failures, uptime_percent, responses,
       response_min_ms, response_avg_ms, response_p50_ms, response_p95_ms, response_p99_ms, response_max_ms
FROM agg LEFT JOIN pct ON pct.url = agg.url AND pct.day = agg.day;

-- What check_windows should hold, computed from check_results: windows are
-- aligned on the Unix epoch, status_counts counts every check by
-- status_code ("0" for no response), regexp_failures counts checks whose
-- regexp did not match. Filter it by url.
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
           count(*) FILTER (WHERE regexp_matched = 0) AS regexp_failures
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
