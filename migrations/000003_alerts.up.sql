-- Alerts (issue 10): the certificate expiry of every check, and one row per
-- down period of a site, written by the processor's sink-incidents from
-- status_changes. The SQLite store mirrors this file
-- (sinks/sqlite/migrations/000003_alerts.up.sql).

-- The earliest NotAfter of the certificate chains a check was presented;
-- NULL for plain HTTP, when no TLS handshake finished, and for the rows
-- stored before this column existed. Adding a nullable column without a
-- default only changes the catalog: existing partitions are not rewritten.
ALTER TABLE check_results ADD COLUMN tls_not_after timestamptz;

-- One row per down period of a URL: opened by a "down" change, closed by
-- the "up" change that follows it. The change ids make the writes
-- idempotent: a change delivered twice opens or closes nothing more.
CREATE TABLE incidents (
    url            text        NOT NULL,
    -- The since of the down change: the first failed check of the run.
    started_at     timestamptz NOT NULL,
    -- The since of the up change: the first good check of the run that
    -- closed it; NULL while the incident is open.
    ended_at       timestamptz,
    -- The error of the check that crossed the failure threshold.
    cause_kind     text,
    cause_message  text,
    -- Failed checks in the down period: the run that opened it, then, once
    -- closed, the down results stored in check_results for the period if
    -- there are more (a flapping site fails again below the threshold).
    failed_checks  integer     NOT NULL,
    down_change_id text        NOT NULL,
    up_change_id   text,
    CONSTRAINT incidents_pkey PRIMARY KEY (down_change_id),
    CONSTRAINT incidents_up_change_id_key UNIQUE (up_change_id),
    CONSTRAINT incidents_url_http CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    CONSTRAINT incidents_down_change_id_nonempty CHECK (down_change_id <> ''),
    CONSTRAINT incidents_ended_after_started CHECK (ended_at >= started_at),
    CONSTRAINT incidents_ended_iff_up CHECK ((ended_at IS NULL) = (up_change_id IS NULL)),
    CONSTRAINT incidents_failed_checks_range CHECK (failed_checks >= 0),
    CONSTRAINT incidents_cause_kind_valid CHECK (cause_kind IN ('dns', 'connect', 'tls', 'timeout', 'status', 'regexp', 'body_too_large', 'redirects', 'other'))
);

-- At most one open incident per URL; the sink's inserts skip a second one.
CREATE UNIQUE INDEX incidents_open_url ON incidents (url) WHERE ended_at IS NULL;
-- "The incidents of one URL over a time range" (uptime reports).
CREATE INDEX incidents_url_started_at ON incidents (url, started_at);

COMMENT ON TABLE incidents IS
    'One row per down period of a URL, from status_changes (down opens, up closes); ended_at is NULL while open.';

CREATE VIEW incidents_open AS
SELECT url, started_at, cause_kind, cause_message, failed_checks, down_change_id
FROM incidents
WHERE ended_at IS NULL;

COMMENT ON VIEW incidents_open IS 'The incidents still open: the sites down now, since started_at.';
