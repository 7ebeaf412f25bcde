// Package sqlite is sitewatch's embedded store for the laptop mode
// (cmd/sitewatch without -database-url): the same check_results and
// check_windows tables and uptime views as the PostgreSQL schema, in one
// SQLite file under the data directory, written by the same sinks.Store
// contract.
//
// It uses modernc.org/sqlite (pure Go, no cgo) in WAL mode, so the file can
// be read with the sqlite3 shell while sitewatch writes to it. The schema is
// created by embedded golang-migrate files on Open.
//
// Writes are idempotent: a result whose event_id is already stored is
// ignored (the first stored check of a slot wins) and a window is only
// replaced by a higher revision, so a batch
// that Kafka re-delivers after a crash changes nothing. A row that breaks a
// CHECK constraint is reported back as rejected (the sink sends it to the
// dead-letter topic) while the rest of its batch is written; so is a nil
// row. The PostgreSQL store passes the same tests (sinks/storetest).
package sqlite
