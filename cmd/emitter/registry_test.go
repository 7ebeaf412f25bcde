package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/sitesapi"
)

// target is a local website that counts its checks and remembers the
// X-Version header of the latest one (the tests edit a site's headers to
// see the edit reach the checker).
type target struct {
	URL     string
	hits    atomic.Int64
	version atomic.Value
}

func newTarget(t *testing.T) *target {
	t.Helper()
	tg := &target{}
	tg.version.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.version.Store(r.Header.Get("X-Version"))
		tg.hits.Add(1)
	}))
	t.Cleanup(srv.Close)
	tg.URL = srv.URL + "/"
	return tg
}

// waitUntil polls cond until it holds, failing after timeout with what.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitChecked waits for a check of tg carrying X-Version version.
func waitChecked(t *testing.T, tg *target, version string) {
	t.Helper()
	start := tg.hits.Load()
	waitUntil(t, 30*time.Second, fmt.Sprintf("%s checked with X-Version %q", tg.URL, version), func() bool {
		return tg.hits.Load() > start && tg.version.Load() == version
	})
}

// assertStopped checks that tg gets no check once the emitter has
// rescheduled without it (its log says so), beyond at most one request
// already on its way, over three of its intervals.
func assertStopped(t *testing.T, tg *target, logs *syncBuffer, scheduledBefore int, interval time.Duration) {
	t.Helper()
	waitUntil(t, 30*time.Second, "the emitter rescheduled", func() bool {
		return strings.Count(logs.String(), `msg="sites scheduled"`) > scheduledBefore
	})
	n := tg.hits.Load()
	time.Sleep(3 * interval)
	if extra := tg.hits.Load() - n; extra > 1 {
		t.Errorf("%s checked %d times after its removal was read", tg.URL, extra)
	}
}

// testAPI serves the sites API with token over a registry that follows
// the cluster's sites topic, as the HTTP server does.
func testAPI(t *testing.T, addrs []string, token string) (*app.SitesAPI, *kafkaconn.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// sarama's logger is global and set once, by the first program run:
	// set it before this test's own client starts reading it.
	kafkaconn.RouteSaramaLogs(slog.New(slog.DiscardHandler))
	k := &kafkaconn.Options{Brokers: addrs, Partitions: 3, Replication: 1}
	api, err := app.NewSitesAPI(ctx, k, slog.New(slog.DiscardHandler), "test", token)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := api.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return api, k
}

// call sends a request to the sites API and decodes the JSON answer.
func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %d with a body that is not JSON: %q", method, url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, out
}

func siteBody(url, version, interval string) string {
	return fmt.Sprintf(`{"url": %q, "interval": %q, "timeout": "900ms", "headers": {"X-Version": %q}}`, url, interval, version)
}

// TestSitesThroughAPI adds, edits and removes a site through the sites API
// while an emitter without a sites file runs: the site is checked, the
// edit reaches the checks, the removal stops them; a bad site and a wrong
// token change nothing.
func TestSitesThroughAPI(t *testing.T) {
	_, addrs := testkit.Kafka(t)
	const token = "s3cret-token"
	sites, k := testAPI(t, addrs, token)
	reg := sites.Registry
	api := httptest.NewServer(sites.Handler)
	defer api.Close()
	_, logs := startEmitter(t, "-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "3")
	waitUntil(t, 60*time.Second, "the emitter reads the registry", func() bool {
		return strings.Contains(logs.String(), "sites registry read")
	})

	tg := newTarget(t)
	code, created := call(t, "POST", api.URL+"/api/v1/sites", token, siteBody(tg.URL, "1", "1s"))
	if code != http.StatusCreated || created["owner"] != "api" || created["interval"] != "1s" {
		t.Fatalf("POST: %d %v", code, created)
	}
	id, _ := created["id"].(string)
	waitChecked(t, tg, "1")

	code, edited := call(t, "PUT", api.URL+"/api/v1/sites/"+id, token, siteBody(tg.URL, "2", "2s"))
	if code != http.StatusOK || edited["interval"] != "2s" {
		t.Fatalf("PUT: %d %v", code, edited)
	}
	waitChecked(t, tg, "2")

	// Bad input changes nothing: not the registry, not the topic.
	end := topicEnd(t, addrs, string(k.Topics().Sites))
	for _, tc := range []struct {
		name, method, path, token, body string
		code                            int
		field                           string
	}{
		{"interval too short", "PUT", "/api/v1/sites/" + id, token, siteBody(tg.URL, "3", "100ms"), 400, "interval"},
		{"unknown field", "POST", "/api/v1/sites", token, `{"url": "https://new.example/", "intervall": "5s"}`, 400, "intervall"},
		{"bad url", "POST", "/api/v1/sites", token, `{"url": "ftp://new.example/"}`, 400, "url"},
		{"url changed by PUT", "PUT", "/api/v1/sites/" + id, token, siteBody("https://other.example/", "3", "1s"), 400, "url"},
		{"wrong token", "POST", "/api/v1/sites", "guess", siteBody("https://new.example/", "1", "1s"), 401, ""},
		{"no token", "DELETE", "/api/v1/sites/" + id, "", "", 401, ""},
		{"added twice", "POST", "/api/v1/sites", token, siteBody(tg.URL, "3", "1s"), 409, "url"},
		{"no such site", "DELETE", "/api/v1/sites/nope", token, "", 404, "id"},
		{"too big", "POST", "/api/v1/sites", token, `{"url": "https://new.example/", "name": "` + strings.Repeat("x", sitesapi.MaxBody) + `"}`, 413, ""},
	} {
		code, body := call(t, tc.method, api.URL+tc.path, tc.token, tc.body)
		if code != tc.code || (tc.field != "" && body["field"] != tc.field) || body["error"] == "" {
			t.Errorf("%s: %d %v, want %d naming field %q", tc.name, code, body, tc.code, tc.field)
		}
	}
	if code, body := call(t, "POST", api.URL+"/api/v1/sites", token, siteBody(tg.URL, "1", "500ms")); body["error"] != `"500ms" is under the minimum of 1s` {
		t.Errorf("the message is not the sites file's: %d %v", code, body)
	}
	if got := topicEnd(t, addrs, string(k.Topics().Sites)); got != end {
		t.Errorf("refused requests wrote to the topic: end offsets %d, then %d", end, got)
	}
	if e, _ := reg.Get(tg.URL); e.Site.Headers["X-Version"] != "2" || len(reg.Sites()) != 1 {
		t.Errorf("refused requests changed the registry: %+v", reg.Sites())
	}
	if code, got := call(t, "GET", api.URL+"/api/v1/sites/"+id, "", ""); code != 200 || got["interval"] != "2s" {
		t.Errorf("GET after refused requests: %d %v", code, got)
	}

	before := strings.Count(logs.String(), `msg="sites scheduled"`)
	if code, _ := call(t, "DELETE", api.URL+"/api/v1/sites/"+id, token, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	assertStopped(t, tg, logs, before, 2*time.Second)
}

// topicEnd sums the end offsets of topic's partitions.
func topicEnd(t *testing.T, addrs []string, topic string) int64 {
	t.Helper()
	// The end offsets as the broker states them: counting the records a
	// poll brings found 0 when the first poll of a loaded machine took
	// longer than its wait.
	client, err := sarama.NewClient(addrs, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var sum int64
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p, err)
		}
		sum += end
	}
	return sum
}

// TestSitesFileAndSIGHUP runs an emitter on a sites file next to a site
// added through the registry: the file's sites are published and checked;
// after an edit of the file and SIGHUP, the edited site is rescheduled,
// the dropped one removed and no longer checked, the API's site kept.
func TestSitesFileAndSIGHUP(t *testing.T) {
	_, addrs := testkit.Kafka(t)
	sites, _ := testAPI(t, addrs, "")
	reg := sites.Registry
	a, b, c := newTarget(t), newTarget(t), newTarget(t)
	path := filepath.Join(t.TempDir(), "sites.yaml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte("defaults: {interval: 1s, timeout: 900ms}\nsites:\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("  - {url: %s, headers: {X-Version: \"1\"}}\n  - {url: %s}\n", a.URL, b.URL))
	apiSite, _, err := config.ParseSiteJSON("test", []byte(siteBody(c.URL, "api", "1s")))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Put(context.Background(), apiSite, codecs.OwnerAPI); err != nil {
		t.Fatal(err)
	}
	_, logs := startEmitter(t, "-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "3", "-sites", path)
	waitChecked(t, a, "1")
	waitChecked(t, b, "")
	waitChecked(t, c, "api")
	if e, _ := reg.Get(a.URL); e.Owner != codecs.FileOwner(path) {
		t.Errorf("the file's site has owner %q, want %q", e.Owner, codecs.FileOwner(path))
	}

	// The API's site listed in the file too: the file does not take it.
	write(fmt.Sprintf("  - {url: %s, headers: {X-Version: \"2\"}}\n  - {url: %s}\n", a.URL, c.URL))
	before := strings.Count(logs.String(), `msg="sites scheduled"`)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the reload logged", func() bool { return strings.Contains(logs.String(), `msg="sites reloaded"`) })
	if !strings.Contains(logs.String(), "published=1 removed=1 unchanged=0 skipped=1") {
		t.Errorf("reload log does not say one published, one removed, one skipped:\n%s", logs.String())
	}
	waitChecked(t, a, "2")
	assertStopped(t, b, logs, before, time.Second)
	if _, ok := reg.Get(b.URL); ok {
		t.Error("the site dropped from the file is still in the registry")
	}
	if e, ok := reg.Get(c.URL); !ok || e.Owner != codecs.OwnerAPI {
		t.Errorf("the API's site was touched by the file's reload: %+v, %v", e, ok)
	}
	waitChecked(t, c, "api")
}

// TestGarbageSiteRecord puts a record that is not a site on
// sitewatch_sites: the emitter sends it to dead letters with the reason
// and keeps checking the site's last good version.
func TestGarbageSiteRecord(t *testing.T) {
	_, addrs := testkit.Kafka(t)
	sites, k := testAPI(t, addrs, "")
	reg := sites.Registry
	tg := newTarget(t)
	site, _, err := config.ParseSiteJSON("test", []byte(siteBody(tg.URL, "good", "1s")))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Put(context.Background(), site, codecs.OwnerAPI); err != nil {
		t.Fatal(err)
	}
	startEmitter(t, "-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "3")
	waitChecked(t, tg, "good")

	topics := k.Topics()
	good := testkit.ReadTopic(t, addrs, string(topics.Sites), 1, 30*time.Second)[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	garbage := []byte(`{"v":1,"url":"` + tg.URL + `","interval":"1ms","owner":"api"}`)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: good.Topic, Partition: good.Partition, Key: good.Key, Value: garbage}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var dl *codecs.DeadLetter
	waitUntil(t, 30*time.Second, "the emitter's dead letter", func() bool {
		for _, r := range testkit.ReadTopic(t, addrs, string(topics.DeadLetters), 1, 30*time.Second) {
			d, err := codecs.DecodeDeadLetter(r.Value)
			if err == nil && d.Consumer == "emitter" {
				dl = d
				return true
			}
		}
		return false
	})
	if dl.Topic != string(topics.Sites) || string(dl.Key) != tg.URL || !bytes.Equal(dl.Value, garbage) ||
		!strings.Contains(dl.Reason, `interval: "1ms" is under the minimum of 1s`) {
		t.Errorf("dead letter %+v", dl)
	}
	// Still checked, with the last good version.
	waitChecked(t, tg, "good")
	waitChecked(t, tg, "good")
}
