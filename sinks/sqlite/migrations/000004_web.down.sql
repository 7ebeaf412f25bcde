DROP INDEX IF EXISTS check_windows_down;
DROP INDEX IF EXISTS check_results_url_failures;
DROP TRIGGER IF EXISTS check_windows_rollup_update;
DROP TRIGGER IF EXISTS check_windows_rollup_insert;
DROP TABLE IF EXISTS check_windows_daily;
DROP TABLE IF EXISTS check_windows_hourly;
DROP TRIGGER IF EXISTS site_status_from_results;
DROP TABLE IF EXISTS site_status;
