package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/history"
	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/sinks/postgres"
)

// `processor -run web` serves the page from PostgreSQL alone, naming the
// sites from -sites, and stops cleanly.
func TestWebPart(t *testing.T) {
	t.Parallel()
	dbURL := testkit.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := postgres.Migrate(ctx, dbURL, nil); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	historytest.Seed(t, st, time.Now())
	st.Close()
	sites := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(sites, []byte("sites:\n  - url: "+historytest.DownURL+"\n    name: The Down One\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addrs := testkit.Kafka(t)
	p := startProcessor(t, []string{"-brokers", testkit.JoinAddrs(addrs), "-database-url", dbURL, "-run", "web",
		"-http-addr", "127.0.0.1:0", "-sites", sites})
	re := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.logs.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("no address logged:\n%s", p.logs.String())
	}
	resp, err := http.Get(base + "sites/" + history.SiteID(historytest.DownURL))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "The Down One") || strings.Contains(string(body), dbURL) {
		t.Errorf("site page: %d, name shown: %v", resp.StatusCode, strings.Contains(string(body), "The Down One"))
	}
	// The report and the sites API's writes are served on the same
	// address: the report names the configured site; with no
	// SITEWATCH_API_TOKEN the API is read-only and a write is refused.
	from := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	resp, err = http.Get(base + "api/v1/report?from=" + from)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"sites": [`) || !strings.Contains(string(body), "The Down One") {
		t.Errorf("GET /api/v1/report: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(base+"api/v1/sites", "application/json", strings.NewReader(`{"url":"https://new.example/","interval":"30s"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"error"`) {
		t.Errorf("POST /api/v1/sites without a configured token: %d %s, want 403 with an error", resp.StatusCode, body)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("exit %d; logs:\n%s", code, p.logs.String())
	}
	if strings.Contains(p.logs.String(), dbURL) {
		t.Errorf("the logs show the DSN")
	}
}
