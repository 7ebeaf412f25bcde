-- The SQLite mirror of migrations/000003_alerts.up.sql: tls_not_after on
-- check_results and the incidents table and view, same names and
-- constraints, timestamps as fixed-width UTC text (see 000001).

ALTER TABLE check_results ADD COLUMN tls_not_after TEXT
    CONSTRAINT check_results_tls_not_after_format CHECK (length(tls_not_after) = 30);

CREATE TABLE incidents (
    url            TEXT    NOT NULL,
    started_at     TEXT    NOT NULL,
    ended_at       TEXT,
    cause_kind     TEXT,
    cause_message  TEXT,
    failed_checks  INTEGER NOT NULL,
    down_change_id TEXT    NOT NULL,
    up_change_id   TEXT,
    CONSTRAINT incidents_pkey PRIMARY KEY (down_change_id),
    CONSTRAINT incidents_up_change_id_key UNIQUE (up_change_id),
    CONSTRAINT incidents_url_http CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    CONSTRAINT incidents_down_change_id_nonempty CHECK (down_change_id <> ''),
    CONSTRAINT incidents_started_at_format CHECK (length(started_at) = 30),
    CONSTRAINT incidents_ended_at_format CHECK (length(ended_at) = 30),
    CONSTRAINT incidents_ended_after_started CHECK (ended_at >= started_at),
    CONSTRAINT incidents_ended_iff_up CHECK ((ended_at IS NULL) = (up_change_id IS NULL)),
    CONSTRAINT incidents_failed_checks_range CHECK (failed_checks >= 0),
    CONSTRAINT incidents_cause_kind_valid CHECK (cause_kind IN ('dns', 'connect', 'tls', 'timeout', 'status', 'regexp', 'body_too_large', 'redirects', 'other'))
);

CREATE UNIQUE INDEX incidents_open_url ON incidents (url) WHERE ended_at IS NULL;
CREATE INDEX incidents_url_started_at ON incidents (url, started_at);

CREATE VIEW incidents_open AS
SELECT url, started_at, cause_kind, cause_message, failed_checks, down_change_id
FROM incidents
WHERE ended_at IS NULL;
