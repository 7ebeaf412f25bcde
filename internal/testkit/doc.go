// Package testkit provides the real backends that sitewatch's tests run
// against: an in-process Kafka (kfake) with optional TLS and SASL, a fresh
// PostgreSQL database per test on the local server, and throwaway TLS
// certificates; and Tool/Missing, which skip a test loudly when a command
// it needs (promtool, make, a Compose tool) is not installed, except under
// CI=true. It is for tests only.
package testkit
