DROP VIEW incidents_open;
DROP TABLE incidents;
ALTER TABLE check_results DROP COLUMN tls_not_after;
