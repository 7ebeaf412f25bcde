package kafkaconn

import "github.com/rcrowley/go-metrics"

// DisableSaramaMetrics turns off sarama's go-metrics instrumentation for
// the whole process. sarama updates meters and decaying-sample histograms
// per broker and topic on every request and response, and nothing in
// sitewatch reads them: its metrics are the Prometheus ones on
// -metrics-addr. go-metrics' switch is a package variable that sarama reads
// whenever it creates a metric, so the commands call this first thing in
// main, before any goroutine could read it (tests, which run several
// programs in one process, leave it alone).
func DisableSaramaMetrics() { metrics.UseNilMetrics = true }
