-- One row per slot, and exact window percentiles.
--
-- 1. check_results was unique on (event_id, checked_at) and partitioned by
--    checked_at. A slot checked again after a crash (the url_checker
--    re-checks a redelivered request) has the same event_id and a new
--    checked_at, so it was stored twice. It is now partitioned by
--    scheduled_at, which is fixed per event_id (event_id names the slot:
--    URL and scheduled_at), and unique on (event_id, scheduled_at): one row
--    per event_id, the first stored wins. The table is rebuilt: its rows
--    are copied into the new one, keeping of each event_id the row with
--    the earliest checked_at (the first check of the slot), and the daily
--    partitions are made again for every UTC day of scheduled_at that had
--    a daily partition's row, and for every day that had a daily partition
--    (made ahead). Rows of days without one stay in check_results_default.
--    This rewrites the whole table in one transaction (ACCESS EXCLUSIVE on
--    check_results): plan for the time a copy of it takes.
-- 2. The windows whose counts included a second row of a slot are
--    recomputed from the rows kept, so check_windows equals
--    check_windows_recomputed again.
-- 3. check_windows gains percentiles_exact: the windows processor now keeps
--    a window's response times and computes percentile_cont exactly (up to
--    4096 responses per window; above that, and for every row written
--    before this migration, the percentiles come from the 1 % sketch).

-- The views read check_results by reference; they are made again below.
DROP VIEW check_windows_recomputed;
DROP VIEW latency_daily;
DROP VIEW latency_hourly;

-- Set the old table aside, with names that the new one will not use.
ALTER TABLE check_results RENAME TO check_results_v1;
ALTER TABLE check_results_v1 DROP CONSTRAINT check_results_event_id_key;
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
         WHERE i.inhparent = 'check_results_v1'::regclass
           AND c.relname ~ '^check_results_(p[0-9]{8}|default)$'
    LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', part, 'check_results_v1_' || substr(part, 15));
    END LOOP;
END
$$;

-- One row per check of a slot (the events of status_request_succeeded and
-- status_request_failed). Range-partitioned by scheduled_at into daily
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
    -- The idempotency key: one row per event_id. A unique constraint on a
    -- partitioned table must include the partition key; an event_id names
    -- one slot, whose scheduled_at every check of it carries, so
    -- (event_id, scheduled_at) is as unique as event_id, whatever
    -- checked_at a repeated check has.
    CONSTRAINT check_results_event_id_key UNIQUE (event_id, scheduled_at)
) PARTITION BY RANGE (scheduled_at);

CREATE TABLE check_results_default PARTITION OF check_results DEFAULT;

DO $$
DECLARE
    day timestamptz;
BEGIN
    FOR day IN
        SELECT DISTINCT date_trunc('day', r.scheduled_at, 'UTC')
          FROM check_results_v1 r
         WHERE r.tableoid <> 'check_results_v1_default'::regclass
        UNION
        SELECT to_date(substr(c.relname, 19), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC'
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'check_results_v1'::regclass
           AND c.relname ~ '^check_results_v1_p[0-9]{8}$'
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF check_results FOR VALUES FROM (%L) TO (%L)',
                       'check_results_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'),
                       to_char(day AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       to_char((day + interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    END LOOP;
END
$$;

-- The windows that counted a second row of some slot, before the rows go.
CREATE TEMP TABLE sitewatch_v2_windows ON COMMIT DROP AS
SELECT DISTINCT r.url,
       to_timestamp(floor(extract(epoch FROM r.checked_at) / 300) * 300) AS window_start
  FROM check_results_v1 r
 WHERE r.event_id IN (SELECT event_id FROM check_results_v1 GROUP BY event_id HAVING count(*) > 1);

INSERT INTO check_results
SELECT DISTINCT ON (event_id) *
  FROM check_results_v1
 ORDER BY event_id, checked_at;

DROP TABLE check_results_v1;

-- "One URL over a time range".
CREATE INDEX check_results_url_checked_at ON check_results (url, checked_at);
-- Time ranges across all URLs; rows arrive in roughly checked_at order,
-- which is what BRIN needs, at a tiny cost.
CREATE INDEX check_results_checked_at_brin ON check_results USING brin (checked_at);

COMMENT ON TABLE check_results IS
    'One row per slot (event_id; the first check stored wins). Partitioned by scheduled_at (UTC days, check_results_pYYYYMMDD); check_results_default takes rows whose day has no partition.';

-- The views, as 000001 made them.
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
-- Unix epoch and cut by checked_at (window_start is a multiple of five
-- minutes since 1970-01-01T00:00:00Z). status_counts counts every check by
-- status_code, "0" for checks that got no response; regexp_failures counts
-- checks that failed on their regexp (error_kind = 'regexp'); percentiles
-- are percentile_cont (linear interpolation between the two nearest ranks)
-- over the checks with a response. Filter it by url.
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
    'check_windows as SQL computes it from check_results (the reference for the windows processor; percentiles are percentile_cont); filter by url.';

-- Exact percentiles. Rows written before this migration came from the
-- sketch: false.
ALTER TABLE check_windows ADD COLUMN percentiles_exact boolean NOT NULL DEFAULT false;

-- The windows that counted a second row of a slot now equal SQL's
-- recomputation from the rows kept (exact percentiles included); a window
-- left without any row goes. The revision stays, so the processor's next
-- emission of an open window (with more checks) still wins.
UPDATE check_windows w
   SET window_end = r.window_end,
       checks = r.checks,
       failures = r.failures,
       responses = r.responses,
       response_min_ms = r.response_min_ms,
       response_avg_ms = r.response_avg_ms,
       response_max_ms = r.response_max_ms,
       response_p50_ms = r.response_p50_ms,
       response_p95_ms = r.response_p95_ms,
       response_p99_ms = r.response_p99_ms,
       status_counts = r.status_counts,
       regexp_failures = r.regexp_failures,
       percentiles_exact = true
  FROM sitewatch_v2_windows a
  JOIN check_windows_recomputed r ON r.url = a.url AND r.window_start = a.window_start
 WHERE w.url = a.url AND w.window_start = a.window_start;

DELETE FROM check_windows w
 USING sitewatch_v2_windows a
 WHERE w.url = a.url AND w.window_start = a.window_start
   AND NOT EXISTS (SELECT 1 FROM check_results r
                    WHERE r.url = a.url
                      AND r.checked_at >= a.window_start
                      AND r.checked_at <  a.window_start + interval '5 minutes');

COMMENT ON COLUMN check_windows.percentiles_exact IS
    'true: response_p50/p95/p99_ms are percentile_cont of the window''s response times, equal to check_windows_recomputed; false: more than 4096 responses (or written before migration 000002), from a histogram sketch within 1 %.';

COMMENT ON TABLE check_windows IS
    'One row per URL and five-minute window [window_start, window_end) of checked_at; counts, min, avg and max equal check_windows_recomputed for the same URL and window, and so do the percentiles where percentiles_exact.';
