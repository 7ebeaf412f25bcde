package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/internal/testkit"
)

var metricsAddrRE = regexp.MustCompile(`serving metrics.*addr=([0-9.]+:[0-9]+)`)

// TestHealthzFollowsStoreOutage: /healthz says what the processor can do
// now. While PostgreSQL is unreachable for longer than -unhealthy-after it
// answers 503 naming the sink and the failing store writes; once the
// database is back it answers 200 again.
func TestHealthzFollowsStoreOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	u, err := url.Parse(e.db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testkit.NewProxy(t, u.Host)
	proc := startProcessor(t, e.args(withHost(t, e.db, proxy.Addr()), "-metrics-addr", "127.0.0.1:0", "-unhealthy-after", "1s"))
	var addr string
	waitFor(t, 30*time.Second, "the metrics server", proc.logs, func() bool {
		m := metricsAddrRE.FindStringSubmatch(proc.logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	var status int
	var body string
	healthz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, 60*time.Second, "/healthz 200 at start", proc.logs, func() bool {
		status, body = healthz()
		return status == http.StatusOK
	})

	s := genStream(5, 5, 200)
	wait := feed(t, e, s.events, 20, 20*time.Millisecond)
	defer wait()
	proxy.Cut(10 * time.Minute)
	waitFor(t, 60*time.Second, "/healthz 503 naming the failing store", proc.logs, func() bool {
		status, body = healthz()
		return status == http.StatusServiceUnavailable && strings.Contains(body, "sink-results: store writes failing since")
	})
	t.Logf("during the outage: %d %s", status, strings.TrimSpace(body))

	proxy.Restore()
	waitFor(t, 90*time.Second, "/healthz 200 after the outage", proc.logs, func() bool {
		status, body = healthz()
		return status == http.StatusOK
	})
	if code := proc.stop(); code != 0 {
		t.Fatalf("exit status %d; logs:\n%s", code, tail(proc.logs.String(), 40))
	}
}
