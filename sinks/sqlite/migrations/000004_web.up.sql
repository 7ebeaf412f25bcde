-- The read side of the status page (package web), mirroring
-- migrations/000004_web.up.sql: site_status (the latest check and failure
-- per URL), hourly and daily sums of check_windows, kept by triggers, and
-- the indexes the pages need. The triggers upsert explicitly: an INSERT OR
-- REPLACE inside a trigger takes the conflict policy of the statement that
-- fired it (the sink's upsert). SQLite has row triggers only; at laptop
-- scale one upsert per stored check costs nothing that matters.

CREATE TABLE site_status (
    url                      TEXT PRIMARY KEY,
    last_checked_at          TEXT,
    last_outcome             TEXT,
    last_status_code         INTEGER,
    last_error_kind          TEXT,
    last_error_message       TEXT,
    last_failure_at          TEXT,
    last_failure_status_code INTEGER,
    last_failure_kind        TEXT,
    last_failure_message     TEXT
) WITHOUT ROWID;

INSERT INTO site_status (url, last_checked_at, last_outcome, last_status_code, last_error_kind, last_error_message)
SELECT url, checked_at, outcome, status_code, error_kind, error_message
  FROM (SELECT r.*, row_number() OVER (PARTITION BY url ORDER BY checked_at DESC) AS n FROM check_results r)
 WHERE n = 1;

UPDATE site_status
   SET (last_failure_at, last_failure_status_code, last_failure_kind, last_failure_message) =
       (SELECT checked_at, status_code, error_kind, error_message
          FROM check_results r
         WHERE r.url = site_status.url AND r.outcome = 'down'
         ORDER BY checked_at DESC LIMIT 1);

CREATE TRIGGER site_status_from_results AFTER INSERT ON check_results
BEGIN
    INSERT INTO site_status (url, last_checked_at, last_outcome, last_status_code, last_error_kind, last_error_message)
    VALUES (NEW.url, NEW.checked_at, NEW.outcome, NEW.status_code, NEW.error_kind, NEW.error_message)
    ON CONFLICT (url) DO UPDATE SET
        last_checked_at = excluded.last_checked_at, last_outcome = excluded.last_outcome,
        last_status_code = excluded.last_status_code, last_error_kind = excluded.last_error_kind,
        last_error_message = excluded.last_error_message
    WHERE site_status.last_checked_at IS NULL OR site_status.last_checked_at < excluded.last_checked_at;

    INSERT INTO site_status (url, last_failure_at, last_failure_status_code, last_failure_kind, last_failure_message)
    SELECT NEW.url, NEW.checked_at, NEW.status_code, NEW.error_kind, NEW.error_message
     WHERE NEW.outcome = 'down'
    ON CONFLICT (url) DO UPDATE SET
        last_failure_at = excluded.last_failure_at, last_failure_status_code = excluded.last_failure_status_code,
        last_failure_kind = excluded.last_failure_kind, last_failure_message = excluded.last_failure_message
    WHERE site_status.last_failure_at IS NULL OR site_status.last_failure_at < excluded.last_failure_at;
END;

CREATE TABLE check_windows_hourly (
    url                 TEXT    NOT NULL,
    hour                TEXT    NOT NULL,
    checks              INTEGER NOT NULL,
    failures            INTEGER NOT NULL,
    responses           INTEGER NOT NULL,
    response_p95_sum_ms REAL,
    PRIMARY KEY (url, hour)
) WITHOUT ROWID;

CREATE TABLE check_windows_daily (
    url                 TEXT    NOT NULL,
    day                 TEXT    NOT NULL,
    checks              INTEGER NOT NULL,
    failures            INTEGER NOT NULL,
    responses           INTEGER NOT NULL,
    response_p95_sum_ms REAL,
    PRIMARY KEY (url, day)
) WITHOUT ROWID;

CREATE INDEX check_windows_hourly_hour ON check_windows_hourly (hour);
CREATE INDEX check_windows_daily_day ON check_windows_daily (day);

INSERT INTO check_windows_hourly (url, hour, checks, failures, responses, response_p95_sum_ms)
SELECT url, strftime('%Y-%m-%dT%H:00:00.000000000Z', window_start) AS h, sum(checks), sum(failures), sum(responses),
       sum(response_p95_ms * responses)
  FROM check_windows
 GROUP BY url, h;

INSERT INTO check_windows_daily (url, day, checks, failures, responses, response_p95_sum_ms)
SELECT url, strftime('%Y-%m-%dT00:00:00.000000000Z', hour) AS d, sum(checks), sum(failures), sum(responses),
       sum(response_p95_sum_ms)
  FROM check_windows_hourly
 GROUP BY url, d;

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

CREATE INDEX check_results_url_failures ON check_results (url, checked_at) WHERE outcome = 'down';
CREATE INDEX check_windows_down ON check_windows (url, window_start) WHERE failures * 2 > checks;
