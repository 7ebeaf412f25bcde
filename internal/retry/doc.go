// Package retry holds the two small mechanisms sitewatch's long-running
// parts share when something around them fails: an exponential backoff for
// rebuilding a consumer or retrying a call, and a log limiter so that an
// outage yields a few lines saying how much failed rather than thousands.
package retry
