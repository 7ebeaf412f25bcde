// Package urlchecker is the goka group "url_checker" of the emitter: it
// consumes check requests from status_request_created, runs the HTTP
// checks, and emits one result per check to status_request_succeeded or
// status_request_failed, keyed by URL.
//
// For each request, in the partition's order:
//
//   - a message that does not decode strictly (or whose key is not its
//     URL, or whose regexp does not compile) goes to the dead-letter topic
//     with the reason, and consumption goes on;
//   - a request for a slot not newer than the last one recorded for its URL
//     in the group table is a duplicate (another emitter instance scheduled
//     the same slot) and is counted and skipped;
//   - a request received at or after its next_at is stale and is counted
//     and skipped: a slot is never checked late;
//   - otherwise the slot is recorded in the group table and the check runs
//     in its own goroutine. A bounded semaphore limits concurrent checks;
//     when it is full the partition waits, which is the back-pressure. A
//     slow or hanging site holds only its own slot until its timeout.
//
// The input offset is committed (goka's DeferCommit) only after the result
// was handed to Kafka, or counted as dropped. Results go through a bounded
// outbox that retries with backoff while the brokers are away and, when
// full, drops the oldest result and counts it: nothing is dropped silently.
//
// RequestEmitter is the way in: the scheduler's Emit function, producing
// requests keyed and partitioned exactly as this group's table expects,
// through the same kind of bounded, retrying outbox.
package urlchecker
