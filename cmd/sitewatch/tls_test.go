package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/internal/testkit"
)

// TestSiteTLSOptions: a site behind a private CA is up with its ca_file,
// another with insecure_skip_verify (and a warning, once, at start), and
// the same server without settings is down with kind tls.
func TestSiteTLSOptions(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	certs := testkit.NewCerts(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	srv.TLS = certs.Server.Clone()
	srv.TLS.ClientAuth = tls.NoClientCert
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	sitesFile := filepath.Join(dir, "sites.yaml")
	sites := fmt.Sprintf(`defaults: {interval: 1s, timeout: 900ms}
sites:
  - url: %[1]s/private-ca
    tls: {ca_file: %[2]s}
  - url: %[1]s/self-signed
    tls: {insecure_skip_verify: true}
  - url: %[1]s/no-settings
`, srv.URL, certs.CAFile)
	if err := os.WriteFile(sitesFile, []byte(sites), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	stop, _, stderr := startSitewatch(t, "-sites", sitesFile, "-data-dir", dataDir, "-table", "off", "-flush-interval", "100ms")
	db := openStore(t, "sqlite", "file:"+filepath.Join(dataDir, "sitewatch.db")+"?mode=ro&_pragma=busy_timeout(5000)")

	want := map[string]string{"/private-ca": "up", "/self-signed": "up", "/no-settings": "down tls"}
	deadline := time.Now().Add(time.Minute)
	for {
		got := map[string]string{}
		if _, err := db.db.Exec("SELECT 1 FROM check_results LIMIT 1"); err == nil {
			for _, r := range db.results(t) {
				v := r.Outcome
				if r.ErrorKind != nil {
					v += " " + *r.ErrorKind
				}
				got[strings.TrimPrefix(r.URL, srv.URL)] = v
			}
		}
		done := true
		for path, w := range want {
			done = done && got[path] == w
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results %v, want %v; logs:\n%s", got, want, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
	}
	if n := strings.Count(stderr.String(), "without verifying its TLS certificate"); n != 1 {
		t.Errorf("%d insecure_skip_verify warnings, want 1:\n%s", n, stderr.String())
	}
}
