package telemetry_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/telemetry"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeMetricsAndHealth(t *testing.T) {
	reg := telemetry.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sitewatch_test_things_total", Help: "things"})
	reg.MustRegister(c)
	c.Add(3)
	h := telemetry.NewHealth()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- telemetry.ServeListener(ctx, ln, reg, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	base := "http://" + ln.Addr().String()

	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "sitewatch_test_things_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, body lacks the counter or runtime metrics:\n%.300s", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz healthy = %d %q", code, body)
	}
	h.Set("windows", errors.New("recovering its table"))
	if code, body := get(t, base+"/healthz"); code != 503 || !strings.Contains(body, "windows: recovering its table") {
		t.Errorf("/healthz unhealthy = %d %q", code, body)
	}
	h.Set("windows", nil)
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz after recovery = %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestNewLoggerRejectsBadSettings(t *testing.T) {
	if _, err := telemetry.NewLogger(io.Discard, "xml", "info"); err == nil || !strings.Contains(err.Error(), "-log-format") {
		t.Errorf("bad format: %v", err)
	}
	if _, err := telemetry.NewLogger(io.Discard, "json", "loud"); err == nil || !strings.Contains(err.Error(), "-log-level") {
		t.Errorf("bad level: %v", err)
	}
}
