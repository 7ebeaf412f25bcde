DROP VIEW IF EXISTS check_windows_recomputed;
DROP VIEW IF EXISTS latency_daily;
DROP VIEW IF EXISTS latency_hourly;
DROP VIEW IF EXISTS uptime_daily;
DROP VIEW IF EXISTS uptime_hourly;
DROP TABLE IF EXISTS check_windows;
DROP TABLE IF EXISTS check_results;
