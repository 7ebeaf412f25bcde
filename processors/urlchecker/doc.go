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
//   - a request received at or after its next_at is stale and is counted
//     and skipped: a slot is never checked late (tested first, from the
//     request alone: under overload most requests are stale);
//   - a request for a slot not newer than the last one recorded for its URL
//     in the group table is a duplicate (another emitter instance scheduled
//     the same slot) and is counted and skipped, unless it is the very
//     message recorded (same partition and offset): that is a redelivery
//     after a crash, and is checked again;
//   - otherwise the slot is recorded in the group table (a 25-byte binary
//     record, see table.go) and the check runs on a worker goroutine. A
//     bounded semaphore limits concurrent checks;
//     when it is full the partition waits, which is the back-pressure. A
//     slow or hanging site holds only its own slot until its timeout.
//
// # Delivery
//
// The rule is internal/kafkarun's: at-least-once check, exactly-once row.
// A request's offset is done (goka's DeferCommit) only after its result was
// handed to Kafka and acknowledged, or counted as dropped or abandoned; and
// offsets are committed in partition order (kafkarun.InOrderCommits), so a
// fast check finishing after a slow one never commits past it. After a
// kill -9, every request from the first one not done is delivered again to
// the partition's next owner and checked again; its result carries the
// same event_id (the request id), which the store and the windows
// processor keep once.
//
// Results go through a bounded outbox that retries with backoff while the
// brokers are away and, when full, drops the oldest result and counts it:
// nothing is dropped silently. At shutdown, checks still running
// DrainTimeout after the context ended are cancelled and counted as
// abandoned (their slots are committed, not checked).
//
// checker.Check returns the checker's own Result; resultEvent maps it to
// the wire codecs.Result, adding what only this group knows (event id,
// scheduled_at, checker instance).
//
// # Health
//
// Config.Health hears why the group is not checking (joining, restarting
// after a failure: kafkarun.Supervisor) or why its results do not reach
// Kafka (failing for longer than OutageAfter), and nil once they do.
//
// RequestEmitter is the way in: the scheduler's Emit function, producing
// requests keyed and partitioned exactly as this group's table expects,
// through the same kind of bounded, retrying outbox.
package urlchecker
