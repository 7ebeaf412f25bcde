-- The site_status trigger function as 000004 made it.
CREATE OR REPLACE FUNCTION site_status_from_results() RETURNS trigger LANGUAGE plpgsql AS $$
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
