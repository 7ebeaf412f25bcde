// Package sinks is the Kafka → store loop of the processor: it consumes
// result events (status_request_succeeded, status_request_failed) or window
// aggregates (status_windows) as a sarama consumer group, writes them to a
// Store (sinks/postgres in production, sinks/sqlite on a laptop) in
// batches, and commits the Kafka offsets only after the store has
// committed the batch. The same loop carries status changes
// (status_changes, Kind Changes) to a ChangeWriter: sinks/notify's
// webhooks, where "committed" means the receiver answered 2xx.
//
// The guarantees, and how they are kept (the delivery rule itself is
// stated once, in internal/kafkarun):
//
//   - Nothing lost: an offset is marked and committed only after its batch
//     is in the store and its dead letters are acknowledged by Kafka. A
//     crash before that re-delivers the batch.
//   - Nothing doubled: stores write idempotently (a result's event_id is
//     unique, a window keeps its highest revision), so a re-delivered batch
//     changes nothing.
//   - Store outages: a failed batch is retried with exponential backoff
//     and jitter until it succeeds or the sink stops; meanwhile the claim
//     reads no more messages, so Kafka holds the backlog (back-pressure).
//     Once writes have failed for longer than Config.OutageAfter,
//     Config.Health (and so /healthz) says so, until the next success.
//   - Bad input: a message that cannot be decoded, or a row the store
//     rejects as invalid, goes to the dead-letter topic with the reason,
//     and the rest of its batch is still written.
//
// Metrics (label sink="results", "windows", or the Name in the Config):
// sitewatch_sink_events_consumed_total, sitewatch_sink_rows_written_total,
// sitewatch_sink_dead_letters_total{reason="decode"|"rejected"},
// sitewatch_sink_write_errors_total, sitewatch_sink_batch_size,
// sitewatch_sink_write_duration_seconds and
// sitewatch_sink_consumer_lag{topic,partition}.
//
// Each partition claim batches on its own and marks its own batches, in
// offset order, so a rebalance never leaves a batch of a revoked partition
// to be committed by a later session: when a claim ends, its batches are
// written within DrainTimeout or dropped unmarked (the next owner reads
// them again). One committer per session sends the marked offsets to
// Kafka, without the claims waiting for it, and the session's end sends
// them once more. The writes themselves go through one writer per session
// (writer.go): a claim decodes its next batch while its previous one is
// in the store, the due batches of several partitions are gathered into
// one write, and a store that takes concurrent transactions
// (ConcurrentWriter) gets several writes at once; one partition never has
// two batches in the store at a time.
package sinks
