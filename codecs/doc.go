// Package codecs defines the events that travel on sitewatch's Kafka topics
// and the goka codecs that turn them into bytes and back.
//
// Every payload is JSON with a version field "v": 1. Decoding is strict:
// unknown fields, a missing or future version, missing required fields and
// trailing data are errors, so a malformed message is rejected at the edge
// (and sent to the dead-letter topic by its consumer) instead of being
// half-understood deep inside a processor.
package codecs
