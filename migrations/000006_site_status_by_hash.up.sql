-- The site_status trigger (000004) without a sort of the whole batch: the
-- latest check of each URL is found by a hash aggregate of max(checked_at)
-- and a join back to its rows, and only those (one per URL, ties aside)
-- are ordered. DISTINCT ON over a sink batch of 10,000 rows sorted all of
-- them by URL text first, a twentieth of the database's time while a
-- backlog drained (bench/processor); the join takes about a third of
-- that sort. What the trigger writes is the same: each URL's latest check
-- and latest failure, upserted in URL order, only moving forward in
-- checked_at.
CREATE OR REPLACE FUNCTION site_status_from_results() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rows in url order: two transactions lock shared rows in one order.
    INSERT INTO site_status AS s (url, last_checked_at, last_outcome, last_status_code, last_error_kind, last_error_message)
    SELECT DISTINCT ON (n.url) n.url, n.checked_at, n.outcome, n.status_code, n.error_kind, n.error_message
      FROM new_results n
      JOIN (SELECT url, max(checked_at) AS checked_at FROM new_results GROUP BY url) latest
        ON latest.url = n.url AND latest.checked_at = n.checked_at
     ORDER BY n.url, n.checked_at DESC
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
