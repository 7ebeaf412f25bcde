// Package retry is the one home of what sitewatch's long-running parts do
// when something around them fails: one exponential backoff with jitter
// (Backoff, Delay), a retry loop that stops on permanent errors (Do,
// Permanent), and a log limiter so that an outage yields a few lines
// saying how much failed rather than thousands (RateLog). The goka
// restart loop, the sinks, the outboxes, the dashboard, topic creation and
// sarama's own retry hooks all wait through it.
package retry
