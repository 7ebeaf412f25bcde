package telemetry

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func healthz(t *testing.T, h *Health) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

// TestOutageReportsOnlyWhatLasts: a failure shorter than After leaves
// /healthz at 200; one that lasts turns it 503 with the reason, and the
// first success turns it back.
func TestOutageReportsOnlyWhatLasts(t *testing.T) {
	h := NewHealth()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	o := &Outage{What: "store writes", After: 30 * time.Second, Report: h.Part("sink-results"), Now: func() time.Time { return now }}
	down := errors.New("connection refused")

	o.Fail(down)
	now = now.Add(10 * time.Second)
	o.Fail(down)
	if code, body := healthz(t, h); code != http.StatusOK {
		t.Fatalf("after 10s of failures: %d %q, want 200 (a blip)", code, body)
	}
	now = now.Add(25 * time.Second)
	o.Fail(down)
	code, body := healthz(t, h)
	if code != http.StatusServiceUnavailable || body != "sink-results: store writes failing since 2026-12-01T10:00:00Z (35s): connection refused" {
		t.Fatalf("after 35s of failures: %d %q", code, body)
	}
	o.OK()
	if code, body := healthz(t, h); code != http.StatusOK || body != "ok" {
		t.Fatalf("after the recovery: %d %q, want 200 ok", code, body)
	}
	// A new outage is timed from its own first failure.
	now = now.Add(time.Hour)
	o.Fail(down)
	if code, _ := healthz(t, h); code != http.StatusOK {
		t.Errorf("first failure of a new outage reported at once")
	}
}

func TestReloadGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	start := time.Unix(1000, 0)
	r, err := NewReloads(reg, start)
	if err != nil {
		t.Fatal(err)
	}
	gauge := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	ok := func() float64 { return gauge("sitewatch_config_last_reload_successful") }
	at := func() float64 { return gauge("sitewatch_config_last_reload_success_timestamp_seconds") }
	if ok() != 1 || at() != 1000 {
		t.Fatalf("at start: successful %v at %v, want 1 at 1000", ok(), at())
	}
	r.Record(time.Unix(2000, 0), errors.New("sites.yaml:3: bad interval"))
	if ok() != 0 || at() != 1000 {
		t.Errorf("after a refused reload: successful %v at %v, want 0 at 1000", ok(), at())
	}
	r.Record(time.Unix(3000, 0), nil)
	if ok() != 1 || at() != 3000 {
		t.Errorf("after a good reload: successful %v at %v, want 1 at 3000", ok(), at())
	}
	if _, err := NewReloads(reg, start); err == nil || !strings.Contains(err.Error(), "register reload metrics") {
		t.Errorf("second registration: %v", err)
	}
}
