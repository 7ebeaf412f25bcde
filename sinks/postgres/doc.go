// Package postgres is sitewatch's PostgreSQL store: it applies the schema in
// migrations/, keeps check_results' daily partitions (UTC days of
// scheduled_at, created ahead, dropped after the retention period, stray
// rows moved out of the default partition), and writes the sinks' batches.
//
// Writes are idempotent, so the sinks can commit Kafka offsets after the
// database and simply write a batch again after a crash: check_results
// ignores an event_id it already holds, whatever the checked_at (a slot
// checked again keeps its first stored check: the key is (event_id,
// scheduled_at), and scheduled_at is the partition key), check_windows
// keeps, per URL and window, the emission with the highest revision (an
// equal one leaves the stored row, as in the SQLite store; both pass the
// same tests, sinks/storetest). A row PostgreSQL refuses
// as invalid (a data or constraint error) does not fail its batch: it is
// reported as Rejected, for the dead-letter topic, and the other rows are
// written. Any other error fails the whole batch with nothing committed, and
// the caller retries it.
//
// A results batch is first written by one plain COPY into check_results,
// the cost of COPY itself; a batch that COPY refuses (a redelivered row
// meets the unique key, a row is invalid) rolls back whole and is written
// again through a staging table with INSERT ... ON CONFLICT DO NOTHING.
//
// Every statement is parameterized, except the partition DDL, whose names
// and bounds are built from a time.Time and checked against a fixed pattern.
package postgres
