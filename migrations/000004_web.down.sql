DROP INDEX IF EXISTS check_windows_down;
DROP INDEX IF EXISTS check_results_url_failures;
DROP TRIGGER IF EXISTS check_windows_rollup ON check_windows;
DROP FUNCTION IF EXISTS check_windows_rollup();
DROP TABLE IF EXISTS check_windows_daily;
DROP TABLE IF EXISTS check_windows_hourly;
DROP TRIGGER IF EXISTS site_status_from_results ON check_results;
DROP FUNCTION IF EXISTS site_status_from_results();
DROP TABLE IF EXISTS site_status;
