package sinks

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one sink's Prometheus series, labelled with the sink's name
// (sink="results", "windows", ...) so that the sinks of a processor share
// the metric names.
type metrics struct {
	consumed    prometheus.Counter
	written     prometheus.Counter
	deadLetters *prometheus.CounterVec // reason: deadDecode | deadRejected
	writeErrors prometheus.Counter
	batchSize   prometheus.Histogram
	writeTime   prometheus.Histogram
	lag         *prometheus.GaugeVec // topic, partition
	// openIncidents is set for a writer that counts open incidents
	// (nil otherwise).
	openIncidents prometheus.Gauge
}

// registerOpenIncidents adds sitewatch_incidents_open to m.
func (m *metrics) registerOpenIncidents(reg prometheus.Registerer) error {
	c, err := registerOrReuse(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sitewatch_incidents_open",
		Help: "Incidents open in the store (sites down now), counted after every write of the incidents sink.",
	}))
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	m.openIncidents = c.(prometheus.Gauge)
	return nil
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	labels := prometheus.Labels{"sink": name}
	var errs []error
	register := func(c prometheus.Collector) prometheus.Collector {
		c, err := registerOrReuse(reg, c)
		errs = append(errs, err)
		return c
	}
	m := &metrics{
		consumed: register(prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "sitewatch_sink_events_consumed_total",
			Help:        "Messages read from Kafka by the sink, including undecodable ones.",
			ConstLabels: labels,
		})).(prometheus.Counter),
		written: register(prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "sitewatch_sink_rows_written_total",
			Help:        "Rows accepted by the store in committed transactions (re-deliveries the store ignores included).",
			ConstLabels: labels,
		})).(prometheus.Counter),
		deadLetters: register(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "sitewatch_sink_dead_letters_total",
			Help:        "Messages sent to the dead-letter topic, by reason: decode (not a valid event) or rejected (refused by the store).",
			ConstLabels: labels,
		}, []string{"reason"})).(*prometheus.CounterVec),
		writeErrors: register(prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "sitewatch_sink_write_errors_total",
			Help:        "Failed store writes of a whole batch; each one is retried with backoff.",
			ConstLabels: labels,
		})).(prometheus.Counter),
		batchSize: register(prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "sitewatch_sink_batch_size",
			Help:        "Messages per flushed batch.",
			ConstLabels: labels,
			Buckets:     []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		})).(prometheus.Histogram),
		writeTime: register(prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "sitewatch_sink_write_duration_seconds",
			Help:        "Duration of one successful store write: one transaction, of the batches of one or more partitions.",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(0.001, 2.5, 10),
		})).(prometheus.Histogram),
		lag: register(prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name:        "sitewatch_sink_consumer_lag",
			Help:        "Messages in the partition after the sink's last committed offset, per claimed partition.",
			ConstLabels: labels,
		}, []string{"topic", "partition"})).(*prometheus.GaugeVec),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	// Export zeros, so that rates and alerts work before the first one.
	for _, reason := range []string{deadDecode, deadRejected} {
		m.deadLetters.WithLabelValues(reason)
	}
	return m, nil
}

// registerOrReuse registers c, or returns the collector already registered
// with the same description, so that a second sink of the same kind on the
// same registry (two groups in one process, or a test) shares the series
// instead of failing.
func registerOrReuse(reg prometheus.Registerer, c prometheus.Collector) (prometheus.Collector, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return are.ExistingCollector, nil
	}
	return c, err
}
