package telemetry

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Health collects the state of the parts of a process, now: /healthz
// answers 200 only while every part reports healthy, and otherwise 503 with
// one line per unhealthy part saying why. Parts report every change (a
// goka group restarting, a store failing for longer than a threshold, a
// producer that cannot deliver) and report again when they recover.
type Health struct {
	mu    sync.Mutex
	parts map[string]error
}

// NewHealth returns an empty Health: healthy until a part says otherwise.
func NewHealth() *Health { return &Health{parts: map[string]error{}} }

// Set records the state of one part; a nil error means healthy.
func (h *Health) Set(part string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.parts[part] = err
}

// Part returns the report function of one part, for the Health fields of
// the components' configurations.
func (h *Health) Part(part string) func(error) {
	return func(err error) { h.Set(part, err) }
}

// Problems lists the unhealthy parts as "part: reason", sorted.
func (h *Health) Problems() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var bad []string
	for part, err := range h.parts {
		if err != nil {
			bad = append(bad, part+": "+err.Error())
		}
	}
	slices.Sort(bad)
	return bad
}

// ServeHTTP writes "ok" or the failing parts, one per line.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if bad := h.Problems(); len(bad) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(bad, "\n"))
		return
	}
	fmt.Fprintln(w, "ok")
}

// DefaultOutageAfter is how long failures must go on before an Outage is
// reported: longer than the blips that retries absorb (a broker leader
// election, one failed batch), short enough for a probe to catch.
const DefaultOutageAfter = 30 * time.Second

// Outage turns a run of failures into a health report once it has lasted
// After (DefaultOutageAfter when zero), and clears it at the first
// success. A nil *Outage or one without Report does nothing, so components
// can hold one unconditionally.
type Outage struct {
	// What names the failing thing in the reason: "store writes".
	What   string
	After  time.Duration
	Report func(error)
	// Now defaults to time.Now.
	Now func() time.Time

	mu       sync.Mutex
	since    time.Time
	reported bool
}

func (o *Outage) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Fail records a failure.
func (o *Outage) Fail(err error) {
	if o == nil || o.Report == nil {
		return
	}
	o.mu.Lock()
	now := o.now()
	if o.since.IsZero() {
		o.since = now
	}
	after := o.After
	if after <= 0 {
		after = DefaultOutageAfter
	}
	failing := now.Sub(o.since)
	report := failing >= after
	if report {
		o.reported = true
	}
	since := o.since
	o.mu.Unlock()
	if report {
		o.Report(fmt.Errorf("%s failing since %s (%s): %w", o.What, since.UTC().Format(time.RFC3339), failing.Round(time.Second), err))
	}
}

// OK records a success, ending the outage.
func (o *Outage) OK() {
	if o == nil || o.Report == nil {
		return
	}
	o.mu.Lock()
	reported := o.reported
	o.since, o.reported = time.Time{}, false
	o.mu.Unlock()
	if reported {
		o.Report(nil)
	}
}

// Reloads exports the outcome of configuration reloads (SIGHUP), as
// blackbox_exporter does: whether the last one succeeded, and when one last
// did.
type Reloads struct {
	ok prometheus.Gauge
	at prometheus.Gauge
}

// NewReloads registers sitewatch_config_last_reload_successful and
// sitewatch_config_last_reload_success_timestamp_seconds on reg (when not
// nil). The configuration loaded at start counts as a successful load.
func NewReloads(reg prometheus.Registerer, now time.Time) (*Reloads, error) {
	r := &Reloads{
		ok: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sitewatch_config_last_reload_successful",
			Help: "Whether the last reload of the sites file (SIGHUP) succeeded (1) or was refused (0).",
		}),
		at: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sitewatch_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful load of the sites file.",
		}),
	}
	if err := Register(reg, "reload", r.ok, r.at); err != nil {
		return nil, err
	}
	r.Record(now, nil)
	return r, nil
}

// Record records a reload at now that succeeded (nil) or was refused.
func (r *Reloads) Record(now time.Time, err error) {
	if err != nil {
		r.ok.Set(0)
		return
	}
	r.ok.Set(1)
	r.at.Set(float64(now.UnixNano()) / 1e9)
}
