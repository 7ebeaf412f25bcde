-- sitewatch's PostgreSQL schema: raw checks, five-minute windows, and views
-- for people. The SQLite store (sinks/sqlite) mirrors these names.
--
-- All day and hour boundaries are UTC, whatever the session's TimeZone.

-- One row per check (the events of status_request_succeeded and
-- status_request_failed). Range-partitioned by checked_at into daily
-- partitions named check_results_pYYYYMMDD, which the processor creates a
-- few days ahead and drops after the retention period (sinks/postgres
-- MaintainPartitions). A row whose day has no partition (a late or
-- replayed event, a skewed clock) lands in check_results_default; the
-- processor moves such rows into their day's partition when it makes it.
CREATE TABLE check_results (
    event_id         text             NOT NULL,
    url              text             NOT NULL,
    scheduled_at     timestamptz      NOT NULL,
    checked_at       timestamptz      NOT NULL,
    outcome          text             NOT NULL,
    status_code      smallint         NOT NULL,
    response_time_ms double precision,
    dns_ms           double precision,
    connect_ms       double precision,
    tls_ms           double precision,
    ttfb_ms          double precision,
    transfer_ms      double precision,
    body_bytes       bigint           NOT NULL,
    regexp           text,
    regexp_matched   boolean,
    error_kind       text,
    error_message    text,
    checker          text             NOT NULL,
    CONSTRAINT check_results_event_id_nonempty CHECK (event_id <> ''),
    CONSTRAINT check_results_url_http CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    CONSTRAINT check_results_outcome_valid CHECK (outcome IN ('up', 'down')),
    CONSTRAINT check_results_status_code_range CHECK (status_code BETWEEN 0 AND 999),
    -- BETWEEN also keeps NaN and Infinity out (PostgreSQL sorts NaN above
    -- every number, so "x >= 0" alone would let it in).
    CONSTRAINT check_results_response_time_ms_range CHECK (response_time_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_dns_ms_range CHECK (dns_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_connect_ms_range CHECK (connect_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_tls_ms_range CHECK (tls_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_ttfb_ms_range CHECK (ttfb_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_transfer_ms_range CHECK (transfer_ms BETWEEN 0 AND 1e9),
    CONSTRAINT check_results_body_bytes_range CHECK (body_bytes >= 0),
    CONSTRAINT check_results_error_kind_valid CHECK (error_kind IN ('dns', 'connect', 'tls', 'timeout', 'status', 'regexp', 'body_too_large', 'redirects', 'other')),
    CONSTRAINT check_results_error_kind_iff_down CHECK ((outcome = 'down') = (error_kind IS NOT NULL)),
    CONSTRAINT check_results_checker_nonempty CHECK (checker <> ''),
    -- The idempotency key. A unique constraint on a partitioned table must
    -- include the partition key; an event always carries the same
    -- checked_at, so (event_id, checked_at) is as unique as event_id.
    CONSTRAINT check_results_event_id_key UNIQUE (event_id, checked_at)
) PARTITION BY RANGE (checked_at);

CREATE TABLE check_results_default PARTITION OF check_results DEFAULT;

-- "One URL over a time range".
CREATE INDEX check_results_url_checked_at ON check_results (url, checked_at);
-- Time ranges across all URLs inside a day's partition; rows arrive in
-- roughly checked_at order, which is what BRIN needs, at a tiny cost.
CREATE INDEX check_results_checked_at_brin ON check_results USING brin (checked_at);

COMMENT ON TABLE check_results IS
    'One row per check. Partitioned by checked_at (UTC days, check_results_pYYYYMMDD); check_results_default takes rows whose day has no partition.';

-- One row per URL and five-minute window, as emitted by the windows
-- processor. A window is emitted again when a late event changes it, with
-- a higher revision; the sink keeps the row with the highest revision.
CREATE TABLE check_windows (
    url             text             NOT NULL,
    window_start    timestamptz      NOT NULL,
    window_end      timestamptz      NOT NULL,
    checks          integer          NOT NULL,
    failures        integer          NOT NULL,
    -- The checks that got a response (non-null response_time_ms); the
    -- response_* columns are over these and are NULL when there are none.
    responses       integer          NOT NULL,
    response_min_ms double precision,
    response_avg_ms double precision,
    response_max_ms double precision,
    response_p50_ms double precision,
    response_p95_ms double precision,
    response_p99_ms double precision,
    status_counts   jsonb            NOT NULL DEFAULT '{}',
    regexp_failures integer          NOT NULL,
    revision        bigint           NOT NULL,
    CONSTRAINT check_windows_url_http CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    CONSTRAINT check_windows_end_after_start CHECK (window_end > window_start),
    CONSTRAINT check_windows_checks_range CHECK (checks >= 0),
    CONSTRAINT check_windows_failures_range CHECK (failures BETWEEN 0 AND checks),
    CONSTRAINT check_windows_responses_range CHECK (responses BETWEEN 0 AND checks),
    CONSTRAINT check_windows_regexp_failures_range CHECK (regexp_failures BETWEEN 0 AND checks),
    CONSTRAINT check_windows_status_counts_object CHECK (jsonb_typeof(status_counts) = 'object'),
    CONSTRAINT check_windows_revision_range CHECK (revision >= 0),
    CONSTRAINT check_windows_pkey PRIMARY KEY (url, window_start)
);

-- Time ranges across all URLs (the primary key serves one URL).
CREATE INDEX check_windows_window_start ON check_windows (window_start);

COMMENT ON TABLE check_windows IS
    'One row per URL and five-minute window [window_start, window_end); equals check_windows_recomputed for the same URL and window.';

-- Uptime per URL per UTC hour and per UTC day, from the five-minute
-- windows (cheap: about 12 rows per URL and hour). uptime_percent is NULL
-- for a period without checks, never a division error. response_avg_ms is
-- weighted by each window's number of responses; percentiles cannot be
-- merged from windows, so response_p95_max_ms is the worst window's p95
-- (latency_hourly and latency_daily have exact percentiles).
CREATE VIEW uptime_hourly AS
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

CREATE VIEW uptime_daily AS
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

COMMENT ON VIEW uptime_hourly IS 'Uptime and latency per URL per UTC hour, from check_windows.';
COMMENT ON VIEW uptime_daily IS 'Uptime and latency per URL per UTC day, from check_windows.';

-- Exact latency percentiles (continuous, percentile_cont) per URL per UTC
-- hour and day, from the raw checks. They read check_results: filter them
-- by url (pushed down to the (url, checked_at) index).
CREATE VIEW latency_hourly AS
SELECT url,
       date_trunc('hour', checked_at, 'UTC')                                  AS hour,
       count(*)                                                               AS checks,
       count(*) FILTER (WHERE outcome = 'down')                               AS failures,
       round(100.0 * count(*) FILTER (WHERE outcome = 'up') / count(*), 3)    AS uptime_percent,
       count(response_time_ms)                                                AS responses,
       min(response_time_ms)                                                  AS response_min_ms,
       avg(response_time_ms)                                                  AS response_avg_ms,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY response_time_ms)         AS response_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms)         AS response_p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY response_time_ms)         AS response_p99_ms,
       max(response_time_ms)                                                  AS response_max_ms
FROM check_results
GROUP BY url, date_trunc('hour', checked_at, 'UTC');

CREATE VIEW latency_daily AS
SELECT url,
       date_trunc('day', checked_at, 'UTC')                                   AS day,
       count(*)                                                               AS checks,
       count(*) FILTER (WHERE outcome = 'down')                               AS failures,
       round(100.0 * count(*) FILTER (WHERE outcome = 'up') / count(*), 3)    AS uptime_percent,
       count(response_time_ms)                                                AS responses,
       min(response_time_ms)                                                  AS response_min_ms,
       avg(response_time_ms)                                                  AS response_avg_ms,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY response_time_ms)         AS response_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms)         AS response_p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY response_time_ms)         AS response_p99_ms,
       max(response_time_ms)                                                  AS response_max_ms
FROM check_results
GROUP BY url, date_trunc('day', checked_at, 'UTC');

COMMENT ON VIEW latency_hourly IS 'Exact latency percentiles and uptime per URL per UTC hour, from check_results; filter by url.';
COMMENT ON VIEW latency_daily IS 'Exact latency percentiles and uptime per URL per UTC day, from check_results; filter by url.';

-- What check_windows should hold, computed by SQL from check_results: the
-- reference the windows processor is held to. Windows are aligned on the
-- Unix epoch (window_start is a multiple of five minutes since
-- 1970-01-01T00:00:00Z). status_counts counts every check by status_code,
-- "0" for checks that got no response; regexp_failures counts checks that
-- failed on their regexp (error_kind = 'regexp'); percentiles are percentile_cont over the
-- checks with a response. Filter it by url.
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
FROM (SELECT r.*,
             to_timestamp(floor(extract(epoch FROM r.checked_at) / 300) * 300) AS window_start
        FROM check_results r) b
GROUP BY b.url, b.window_start;

COMMENT ON VIEW check_windows_recomputed IS
    'check_windows as SQL computes it from check_results (the reference for the windows processor); filter by url.';
