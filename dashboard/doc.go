// Package dashboard is the live status table of the all-in-one sitewatch
// command: it reads the check results from the result topics in-process
// and shows, per site, its last status, response time, uptime and p95 over
// the last window, and when and why it last failed.
//
// It sits beside the pipeline, not in it: it is a plain Kafka consumer of
// status_request_succeeded and status_request_failed (no consumer group,
// nothing committed), starting from a little history before its start, so
// it neither slows nor changes what the processor stores.
//
// The parts are separate so that each can be tested alone: a Board keeps
// the per-site state (Add, Snapshot), Render turns a Snapshot into text
// without side effects, and Run wires a consumer, a Board and a writer
// together. On a terminal Run redraws the table in place every few
// seconds; elsewhere it logs one line whenever a site goes down or comes
// back, so piped output stays plain log lines.
package dashboard
