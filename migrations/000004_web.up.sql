-- What the status page, the badges and the JSON API read (package web),
-- kept small so that every page costs a bounded number of cheap queries
-- whatever the number of sites. Upgrades a database with data in it: the
-- new tables are filled from the rows already stored.

-- The latest check and the latest failure of every URL: the overview's
-- state and "last failure" columns without a query per site. Kept by a
-- statement trigger on check_results (one upsert per sink batch), which
-- only moves forward in checked_at, so a late or replayed batch never
-- overwrites a newer check.
CREATE TABLE site_status (
    url                      text PRIMARY KEY,
    last_checked_at          timestamptz,
    last_outcome             text,
    last_status_code         smallint,
    last_error_kind          text,
    last_error_message       text,
    last_failure_at          timestamptz,
    last_failure_status_code smallint,
    last_failure_kind        text,
    last_failure_message     text
);

COMMENT ON TABLE site_status IS
    'The latest check and latest failure of every URL in check_results, kept by the site_status_from_results trigger.';

INSERT INTO site_status (url, last_checked_at, last_outcome, last_status_code, last_error_kind, last_error_message)
SELECT DISTINCT ON (url) url, checked_at, outcome, status_code, error_kind, error_message
  FROM check_results
 ORDER BY url, checked_at DESC;

UPDATE site_status s
   SET last_failure_at = f.checked_at, last_failure_status_code = f.status_code,
       last_failure_kind = f.error_kind, last_failure_message = f.error_message
  FROM (SELECT DISTINCT ON (url) url, checked_at, status_code, error_kind, error_message
          FROM check_results
         WHERE outcome = 'down'
         ORDER BY url, checked_at DESC) f
 WHERE f.url = s.url;

CREATE FUNCTION site_status_from_results() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rows in url order: two transactions lock shared rows in one order.
    INSERT INTO site_status AS s (url, last_checked_at, last_outcome, last_status_code, last_error_kind, last_error_message)
    SELECT DISTINCT ON (url) url, checked_at, outcome, status_code, error_kind, error_message
      FROM new_results
     ORDER BY url, checked_at DESC
    ON CONFLICT (url) DO UPDATE SET
        last_checked_at = excluded.last_checked_at, last_outcome = excluded.last_outcome,
        last_status_code = excluded.last_status_code, last_error_kind = excluded.last_error_kind,
        last_error_message = excluded.last_error_message
    WHERE s.last_checked_at IS NULL OR s.last_checked_at < excluded.last_checked_at;

    INSERT INTO site_status AS s (url, last_failure_at, last_failure_status_code, last_failure_kind, last_failure_message)
    SELECT DISTINCT ON (url) url, checked_at, status_code, error_kind, error_message
      FROM new_results
     WHERE outcome = 'down'
     ORDER BY url, checked_at DESC
    ON CONFLICT (url) DO UPDATE SET
        last_failure_at = excluded.last_failure_at, last_failure_status_code = excluded.last_failure_status_code,
        last_failure_kind = excluded.last_failure_kind, last_failure_message = excluded.last_failure_message
    WHERE s.last_failure_at IS NULL OR s.last_failure_at < excluded.last_failure_at;
    RETURN NULL;
END
$$;

CREATE TRIGGER site_status_from_results AFTER INSERT ON check_results
    REFERENCING NEW TABLE AS new_results
    FOR EACH STATEMENT EXECUTE FUNCTION site_status_from_results();

-- Hourly and daily sums of check_windows per URL (UTC), for uptime over
-- 24 h, 7 d, 30 d and the 90-day strips: a site's 30 days are 30 rows,
-- not 8,640 windows. response_p95_sum_ms is sum(response_p95_ms *
-- responses), so that sum(response_p95_sum_ms) / sum(responses) is the
-- response-weighted mean of the windows' p95 over any set of rows.
-- Kept by the check_windows_rollup trigger, which recomputes the changed
-- window's hour from check_windows and its day from the hours (a window
-- replaced by a higher revision is then counted once, with its new figures).
CREATE TABLE check_windows_hourly (
    url                 text             NOT NULL,
    hour                timestamptz      NOT NULL,
    checks              bigint           NOT NULL,
    failures            bigint           NOT NULL,
    responses           bigint           NOT NULL,
    response_p95_sum_ms double precision,
    PRIMARY KEY (url, hour)
);

CREATE TABLE check_windows_daily (
    url                 text             NOT NULL,
    day                 timestamptz      NOT NULL,
    checks              bigint           NOT NULL,
    failures            bigint           NOT NULL,
    responses           bigint           NOT NULL,
    response_p95_sum_ms double precision,
    PRIMARY KEY (url, day)
);

-- "Every URL over the last N hours / days".
CREATE INDEX check_windows_hourly_hour ON check_windows_hourly (hour);
CREATE INDEX check_windows_daily_day ON check_windows_daily (day);

COMMENT ON TABLE check_windows_hourly IS 'check_windows summed per URL and UTC hour (trigger check_windows_rollup).';
COMMENT ON TABLE check_windows_daily IS 'check_windows summed per URL and UTC day (trigger check_windows_rollup).';

INSERT INTO check_windows_hourly (url, hour, checks, failures, responses, response_p95_sum_ms)
SELECT url, date_trunc('hour', window_start, 'UTC'), sum(checks), sum(failures), sum(responses),
       sum(response_p95_ms * responses)
  FROM check_windows
 GROUP BY url, date_trunc('hour', window_start, 'UTC');

INSERT INTO check_windows_daily (url, day, checks, failures, responses, response_p95_sum_ms)
SELECT url, date_trunc('day', hour, 'UTC'), sum(checks), sum(failures), sum(responses), sum(response_p95_sum_ms)
  FROM check_windows_hourly
 GROUP BY url, date_trunc('day', hour, 'UTC');

CREATE FUNCTION check_windows_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    h timestamptz := date_trunc('hour', NEW.window_start, 'UTC');
    d timestamptz := date_trunc('day', NEW.window_start, 'UTC');
BEGIN
    INSERT INTO check_windows_hourly AS t (url, hour, checks, failures, responses, response_p95_sum_ms)
    SELECT NEW.url, h, sum(checks), sum(failures), sum(responses), sum(response_p95_ms * responses)
      FROM check_windows
     WHERE url = NEW.url AND window_start >= h AND window_start < h + interval '1 hour'
    ON CONFLICT (url, hour) DO UPDATE SET
        checks = excluded.checks, failures = excluded.failures,
        responses = excluded.responses, response_p95_sum_ms = excluded.response_p95_sum_ms;

    INSERT INTO check_windows_daily AS t (url, day, checks, failures, responses, response_p95_sum_ms)
    SELECT NEW.url, d, sum(checks), sum(failures), sum(responses), sum(response_p95_sum_ms)
      FROM check_windows_hourly
     WHERE url = NEW.url AND hour >= d AND hour < d + interval '1 day'
    ON CONFLICT (url, day) DO UPDATE SET
        checks = excluded.checks, failures = excluded.failures,
        responses = excluded.responses, response_p95_sum_ms = excluded.response_p95_sum_ms;
    RETURN NULL;
END
$$;

CREATE TRIGGER check_windows_rollup AFTER INSERT OR UPDATE ON check_windows
    FOR EACH ROW EXECUTE FUNCTION check_windows_rollup();

-- A site's failed checks, newest first (site page, incident causes).
CREATE INDEX check_results_url_failures ON check_results (url, checked_at) WHERE outcome = 'down';

-- A site's down windows (most of its checks failed), from which incidents
-- are derived: only down windows are read, however long the history.
CREATE INDEX check_windows_down ON check_windows (url, window_start) WHERE failures * 2 > checks;
