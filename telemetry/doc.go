// Package telemetry serves sitewatch's operational endpoints, /metrics for
// Prometheus and /healthz for orchestrators, and builds the process logger.
// Each command creates its own registry and passes it to the components, so
// tests can run several instances in one process without colliding.
package telemetry
