package notify

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the notifier's series, labelled destination=<host> (never
// the path or query, which may hold a token).
type metrics struct {
	sent, retried *prometheus.CounterVec // destination
	failed        *prometheus.CounterVec // destination, reason: rejected | expired
	latency       *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitewatch_notifications_sent_total",
			Help: "Status changes a destination accepted (2xx), re-deliveries after a restart included.",
		}, []string{"destination"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitewatch_notifications_retried_total",
			Help: "Attempts that failed in a retryable way (connection error, timeout, 408, 429, 5xx) and were retried.",
		}, []string{"destination"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitewatch_notifications_failed_total",
			Help: "Status changes dead-lettered instead of delivered, by reason: rejected (a 4xx or other non-retryable answer) or expired (older than -alert-max-age).",
		}, []string{"destination", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sitewatch_notification_latency_seconds",
			Help:    "From a change's changed_at (the crossing check) to the destination's 2xx answer.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 12), // 10ms .. ~30min
		}, []string{"destination"}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.sent, m.retried, m.failed, m.latency} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}

// destMetrics are one destination's series.
type destMetrics struct {
	sent, retried prometheus.Counter
	latency       prometheus.Observer
	failedVec     *prometheus.CounterVec
	label         string
}

func (m *metrics) forDestination(label string) destMetrics {
	// Created at zero, so that a dashboard sees the destination before
	// its first failure.
	m.failed.WithLabelValues(label, "rejected")
	m.failed.WithLabelValues(label, "expired")
	return destMetrics{
		sent:      m.sent.WithLabelValues(label),
		retried:   m.retried.WithLabelValues(label),
		latency:   m.latency.WithLabelValues(label),
		failedVec: m.failed,
		label:     label,
	}
}

func (d destMetrics) failed(reason string) prometheus.Counter {
	return d.failedVec.WithLabelValues(d.label, reason)
}
