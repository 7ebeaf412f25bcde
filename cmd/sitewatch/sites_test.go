package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/sitesapi"
)

// sitesCmd runs `sitewatch sites args...` and returns its exit status and
// output.
func sitesCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"sites"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestSitesCommandOnKafka manages the registry with `sitewatch sites
// -brokers`: add, a refused add, ls in both formats, export, import of the
// export, rm.
func TestSitesCommandOnKafka(t *testing.T) {
	_, addrs := testkit.Kafka(t)
	kafka := []string{"-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "3"}
	with := func(args ...string) []string { return append(append([]string{}, kafka...), args...) }

	if code, out, errOut := sitesCmd(t, with("add", "https://a.example/", "-interval", "30s", "-name", "A")...); code != 0 || !strings.Contains(out, "added https://a.example/") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	code, _, errOut := sitesCmd(t, with("add", "https://b.example/", "-interval", "500ms")...)
	if code != 2 || errOut != "sitewatch sites: sites add: -interval: \"500ms\" is under the minimum of 1s\n" {
		t.Errorf("bad add: %d %q", code, errOut)
	}
	code, out, _ := sitesCmd(t, with("ls")...)
	if code != 0 || !strings.Contains(out, "https://a.example/  A     30s       10s      api") || !strings.HasSuffix(out, "1 sites\n") {
		t.Errorf("ls: %d\n%s", code, out)
	}
	code, out, _ = sitesCmd(t, with("-o", "json", "ls")...)
	var listed struct{ Sites []sitesapi.Site }
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed.Sites) != 1 || listed.Sites[0].Owner != "api" {
		t.Errorf("ls -o json: %d %v\n%s", code, err, out)
	}

	code, exported, _ := sitesCmd(t, with("export")...)
	f, err := config.Parse("export.yaml", []byte(exported))
	if code != 0 || err != nil || len(f.Sites) != 1 || f.Sites[0].Name != "A" || f.Sites[0].Interval != 30*time.Second {
		t.Fatalf("export is not a sites file with the site: %d %v\n%s", code, err, exported)
	}
	path := filepath.Join(t.TempDir(), "sites.yaml")
	more := exported + "  - url: https://c.example/\n    interval: 5s\n"
	if err := os.WriteFile(path, []byte(more), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := sitesCmd(t, with("import", path)...); code != 0 || !strings.Contains(out, "1 added, 1 replaced") {
		t.Errorf("import: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := sitesCmd(t, with("rm", "https://a.example/")...); code != 0 || out != "removed https://a.example/\n" {
		t.Errorf("rm: %d %q %q", code, out, errOut)
	}
	if code, out, _ := sitesCmd(t, with("ls")...); code != 0 || strings.Contains(out, "a.example") || !strings.Contains(out, "c.example") {
		t.Errorf("ls after rm: %d\n%s", code, out)
	}
	if code, _, errOut := sitesCmd(t, with("rm", "https://nope.example/")...); code != 1 || !strings.Contains(errOut, "no site with this id") {
		t.Errorf("rm of a missing site: %d %q", code, errOut)
	}
}

// TestSitesCommandOverAPI uses `sitewatch sites -api`: the token comes from
// SITEWATCH_API_TOKEN, a wrong one is refused, and a server without a
// token is read-only.
func TestSitesCommandOverAPI(t *testing.T) {
	_, addrs := testkit.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k := &kafkaconn.Options{Brokers: addrs, Partitions: 3, Replication: 1}
	log := slog.New(slog.DiscardHandler)
	kafkaconn.RouteSaramaLogs(log) // before this test's clients read sarama's global logger
	serve := func(token string) string {
		api, err := app.NewSitesAPI(ctx, k, log, "test", token)
		if err != nil {
			t.Fatal(err)
		}
		stop, err := api.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		srv := httptest.NewServer(api.Handler)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	api, readOnly := serve("right"), serve("")

	t.Setenv("SITEWATCH_API_TOKEN", "wrong")
	if code, _, errOut := sitesCmd(t, "-api", api, "add", "https://a.example/"); code != 1 || !strings.Contains(errOut, "missing or wrong token") {
		t.Errorf("wrong token: %d %q", code, errOut)
	}
	t.Setenv("SITEWATCH_API_TOKEN", "right")
	if code, out, errOut := sitesCmd(t, "-api", api, "add", "https://a.example/", "-interval", "10s"); code != 0 || !strings.Contains(out, "added") {
		t.Errorf("add: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := sitesCmd(t, "-api", readOnly, "rm", "https://a.example/"); code != 1 || !strings.Contains(errOut, "read-only") {
		t.Errorf("write to a read-only API: %d %q", code, errOut)
	}
	// The read-only server's registry reads the write a moment later.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, _ := sitesCmd(t, "-api", readOnly, "ls")
		if code == 0 && strings.Contains(out, "https://a.example/") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ls on the read-only API: %d\n%s", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, errOut := sitesCmd(t, "-api", api, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}
