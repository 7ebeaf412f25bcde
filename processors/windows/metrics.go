package windows

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/telemetry"
)

// metrics are the processor's Prometheus counters.
type metrics struct {
	consumed    prometheus.Counter
	emitted     *prometheus.CounterVec
	tooLate     prometheus.Counter
	duplicates  prometheus.Counter
	deadLetters prometheus.Counter
	restarts    prometheus.Counter
	writes      prometheus.Counter
	heldApplied prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_windows_events_consumed_total",
			Help: "Messages consumed from the result topics, malformed ones included.",
		}),
		emitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitewatch_windows_emitted_total",
			Help: "Windows emitted to status_windows, by trigger: watermark (the URL's event time passed the window's end), late (a late event changed it), idle (the URL went silent), redelivery (a re-delivered event re-sent it unchanged).",
		}, []string{"trigger"}),
		tooLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_windows_too_late_events_total",
			Help: "Events not applied because their window had already been dropped (older than the URL's watermark minus the grace period).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_windows_duplicate_events_total",
			Help: "Events not applied because their event_id was already counted (a redelivery, or a slot checked again after a crash, whatever its checked_at).",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_windows_dead_letters_total",
			Help: "Messages sent to the dead-letter topic because they could not be decoded.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_windows_restarts_total",
			Help: "Times the windows goka processor stopped with an error and was rebuilt.",
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_windows_state_writes_total",
			Help: "URL states written to the group table (one per event while the processor keeps up; fewer while it drains a backlog, when states are written behind).",
		}),
		heldApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_windows_events_held_total",
			Help: "Events applied to a URL state held in memory, not yet written to the group table (a backlog draining); their offsets are committed once it is written.",
		}),
	}
	for _, t := range []string{triggerWatermark, triggerLate, triggerIdle, triggerRedelivery} {
		m.emitted.WithLabelValues(t) // export zeros, so rates work from the start
	}
	return m
}

// register adds the metrics to reg, all or none.
func (m *metrics) register(reg prometheus.Registerer) error {
	return telemetry.Register(reg, "windows", m.consumed, m.emitted, m.tooLate, m.duplicates, m.deadLetters, m.restarts, m.writes, m.heldApplied)
}
