-- Undoes 000002_one_row_per_slot.up.sql: check_results partitioned by
-- checked_at again and unique on (event_id, checked_at), with every row
-- kept (one per event_id, which the old key allows too), and check_windows
-- without percentiles_exact.

DROP VIEW check_windows_recomputed;
DROP VIEW latency_daily;
DROP VIEW latency_hourly;

ALTER TABLE check_windows DROP COLUMN percentiles_exact;
COMMENT ON TABLE check_windows IS
    'One row per URL and five-minute window [window_start, window_end); equals check_windows_recomputed for the same URL and window.';

ALTER TABLE check_results RENAME TO check_results_v2;
ALTER TABLE check_results_v2 DROP CONSTRAINT check_results_event_id_key;
DROP INDEX check_results_url_checked_at;
DROP INDEX check_results_checked_at_brin;
DO $$
DECLARE
    part text;
BEGIN
    FOR part IN
        SELECT c.relname
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'check_results_v2'::regclass
           AND c.relname ~ '^check_results_(p[0-9]{8}|default)$'
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', part, 'check_results_v2_' || substr(part, 15));
    END LOOP;
END
$$;

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

DO $$
DECLARE
    day timestamptz;
BEGIN
    FOR day IN
        SELECT DISTINCT date_trunc('day', r.checked_at, 'UTC')
          FROM check_results_v2 r
         WHERE r.tableoid <> 'check_results_v2_default'::regclass
        UNION
        SELECT to_date(substr(c.relname, 19), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC'
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'check_results_v2'::regclass
           AND c.relname ~ '^check_results_v2_p[0-9]{8}$'
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF check_results FOR VALUES FROM (%L) TO (%L)',
                       'check_results_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'),
                       to_char(day AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       to_char((day + interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    END LOOP;
END
$$;

INSERT INTO check_results SELECT * FROM check_results_v2;
DROP TABLE check_results_v2;

CREATE INDEX check_results_url_checked_at ON check_results (url, checked_at);
CREATE INDEX check_results_checked_at_brin ON check_results USING brin (checked_at);

COMMENT ON TABLE check_results IS
    'One row per check. Partitioned by checked_at (UTC days, check_results_pYYYYMMDD); check_results_default takes rows whose day has no partition.';

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
