package alerts

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
)

// metrics are the processor's Prometheus series.
type metrics struct {
	consumed    prometheus.Counter
	changes     *prometheus.CounterVec
	resent      prometheus.Counter
	duplicates  prometheus.Counter
	late        prometheus.Counter
	deadLetters prometheus.Counter
	restarts    prometheus.Counter
	writes      prometheus.Counter
	heldApplied prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_alerts_events_consumed_total",
			Help: "Messages consumed from the result topics by the alerts group, malformed ones included.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitewatch_alerts_changes_total",
			Help: "Status changes emitted to status_changes, by kind: down, up, cert_expiring, cert_ok (re-sends not included).",
		}, []string{"kind"}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_alerts_changes_resent_total",
			Help: "Changes sent again, same change_id, because the event that made them was delivered again (a crash or rebalance may have lost the first send).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_alerts_duplicate_events_total",
			Help: "Events not applied because their event_id was applied already.",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_alerts_late_events_total",
			Help: "Events not applied because a check of the same URL with a later checked_at was applied already.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_alerts_dead_letters_total",
			Help: "Result messages the alerts group sent to the dead-letter topic because they could not be decoded or their key was not their url.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_alerts_restarts_total",
			Help: "Times the alerts goka processor stopped with an error and was rebuilt.",
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_alerts_state_writes_total",
			Help: "URL states the alerts processor wrote to its group table (one per event while it keeps up; fewer while it drains a backlog, when states are written behind).",
		}),
		heldApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_alerts_events_held_total",
			Help: "Events the alerts processor applied to a URL state held in memory, not yet written to its group table (a backlog draining); their offsets are committed once it is written.",
		}),
	}
	for _, k := range []string{codecs.ChangeDown, codecs.ChangeUp, codecs.ChangeCertExpiring, codecs.ChangeCertOK} {
		m.changes.WithLabelValues(k) // export zeros, so rates work from the start
	}
	return m
}

// register adds the metrics to reg, all or none.
func (m *metrics) register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{m.consumed, m.changes, m.resent, m.duplicates, m.late, m.deadLetters, m.restarts, m.writes, m.heldApplied}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("register alerts metrics: %w", err)
		}
	}
	return nil
}
