// Package notify is the notifications sink of the processor (-run
// notify): it consumes status_changes (codecs.StatusChange, produced by the
// alerts group) and POSTs every change to each configured destination, a
// generic webhook (the change event as JSON, with Idempotency-Key and an
// optional HMAC signature) or a Slack-style incoming webhook ({"text": …},
// which Slack, Mattermost and Discord's /slack endpoint accept).
//
// # One consumer group per destination
//
// Each destination is a sinks.Sink of its own (kind Changes) in its own
// consumer group, <prefix>notify_<webhook|slack>_<hash of the URL>, so its
// offsets are its own: an offset is committed only after that destination
// answered 2xx (or the change was dead-lettered) for every message before
// it. A destination that is down or slow therefore delays only itself:
// its backlog waits in Kafka while the other destinations stay current.
// (With one group for all destinations, a receiver answering 503 would hold
// every other destination back for up to -alert-max-age.) The price is that
// a destination whose URL changes, e.g. a rotated token, is a new group:
// it starts from the oldest retained change, and everything older than
// -alert-max-age is dead-lettered as expired rather than sent.
//
// # Order
//
// A URL's changes are in one partition (key: URL), and each destination
// delivers a partition's batch URL by URL, each URL's changes one after
// the other in offset order (up to Config.Concurrency URLs at a time); the
// next batch starts when the whole batch is done. So a destination never
// gets a site's up before the down that preceded it, except as a
// re-delivery of a change it already had (same Idempotency-Key).
//
// # At-least-once
//
// A process killed after a receiver accepted a change but before the
// offset was committed sends the change again after the restart, with the
// same body and the same Idempotency-Key (the change_id): receivers
// deduplicate on it. Slack cannot deduplicate, so a crash can repeat a
// Slack line.
//
// # Failures
//
// Connection errors, timeouts (each request is bounded by Config.Timeout),
// 408, 429 (after at least its Retry-After) and 5xx are retried with
// exponential backoff (internal/retry) until the change is MaxAge old,
// measured from its changed_at (the crossing check's time, the same on
// every delivery and every instance, so a restart does not give a change a
// new hour); then it is dead-lettered with the last error. Any other
// answer (other 4xx, 3xx: redirects are not followed, so a body and its
// signature never go to another host) is dead-lettered at once with the
// status and the start of the receiver's answer.
//
// # Secrets
//
// A destination is named by its host (host:port) in logs, metrics and
// dead letters, never by its path or query, which for Slack and most
// webhooks are the credential; errors from net/http, which quote the whole
// URL, are reduced to their cause. The HMAC secret is only ever used to
// sign.
package notify
