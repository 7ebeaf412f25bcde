package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/scheduler"
)

// syncBuffer collects a program's stderr safely across goroutines.
type syncBuffer = testkit.SyncBuffer

// sitesFixture starts n local websites (every fourth one answers 503, every
// fifth one carries a regexp that does not match) and writes a sites file
// checking each every second.
func sitesFixture(t *testing.T, n int) (path string, hits *sync.Map, wantUp map[string]bool) {
	t.Helper()
	hits = &sync.Map{}
	wantUp = map[string]bool{}
	var b strings.Builder
	b.WriteString("defaults:\n  interval: 1s\n  timeout: 900ms\nsites:\n")
	for i := range n {
		status := http.StatusOK
		if i%4 == 3 {
			status = http.StatusServiceUnavailable
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, _ := hits.LoadOrStore(r.Host, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			w.WriteHeader(status)
			fmt.Fprintf(w, "<html>site %d is fine</html>", i)
		}))
		t.Cleanup(srv.Close)
		url := srv.URL + "/"
		fmt.Fprintf(&b, "  - url: %s\n", url)
		up := status == http.StatusOK
		if i%5 == 4 {
			b.WriteString("    regexp: \"never-there\"\n")
			up = false
		}
		wantUp[url] = up
	}
	path = filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, hits, wantUp
}

// startEmitter runs the real program in a goroutine; the returned function
// stops it with the equivalent of SIGTERM and returns its exit status.
func startEmitter(t *testing.T, args ...string) (stop func() int, logs *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, logs, logs) }()
	var once sync.Once
	var code int
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("emitter did not stop within 60s; logs:\n%s", logs.String())
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stop, logs
}

// readResults consumes both result topics from the start until want events
// arrived or the deadline passed.
func readResults(t *testing.T, addrs []string, tp kafkaconn.Topics, until func([]*codecs.Result) bool, timeout time.Duration, opts ...kgo.Opt) []*codecs.Result {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(string(tp.Succeeded), string(tp.Failed)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*codecs.Result
	for !until(out) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			res, err := codecs.DecodeResult(r.Value)
			if err != nil {
				t.Errorf("undecodable result on %s: %v", r.Topic, err)
				return
			}
			if string(r.Key) != res.URL {
				t.Errorf("key %q != url %q", r.Key, res.URL)
			}
			wantTopic := string(tp.Failed)
			if res.Up() {
				wantTopic = string(tp.Succeeded)
			}
			if r.Topic != wantTopic {
				t.Errorf("%s result for %s on %s, want %s", res.Outcome, res.URL, r.Topic, wantTopic)
			}
			out = append(out, res)
		})
	}
	return out
}

func TestEmitterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const n = 50
	sites, hits, wantUp := sitesFixture(t, n)
	_, addrs := testkit.Kafka(t)
	o := kafkaconn.Options{}
	tp := o.Topics()

	stop, logs := startEmitter(t, "-sites", sites, "-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "4", "-log-level", "debug")
	perURL := func(rs []*codecs.Result) map[string]int {
		m := map[string]int{}
		for _, r := range rs {
			m[r.URL]++
		}
		return m
	}
	results := readResults(t, addrs, tp, func(rs []*codecs.Result) bool {
		m := perURL(rs)
		if len(m) < n {
			return false
		}
		for _, c := range m {
			if c < 2 {
				return false
			}
		}
		return true
	}, 60*time.Second)
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d; logs:\n%s", code, logs.String())
	}
	if got := len(perURL(results)); got != n {
		t.Fatalf("results for %d sites, want %d; logs:\n%s", got, n, logs.String())
	}

	seen := map[string]bool{}
	slots := map[string]bool{}
	for _, r := range results {
		if seen[r.EventID] {
			t.Errorf("event_id %s twice", r.EventID)
		}
		seen[r.EventID] = true
		slot := r.URL + "@" + r.ScheduledAt.String()
		if slots[slot] {
			t.Errorf("slot %s checked twice", slot)
		}
		slots[slot] = true
		if r.Up() != wantUp[r.URL] {
			t.Errorf("%s: outcome %s, want up=%v (error %v)", r.URL, r.Outcome, wantUp[r.URL], deref(r.ErrorMessage))
		}
		if r.ResponseTimeMS == nil || r.ConnectMS == nil || r.TTFBMS == nil {
			t.Errorf("%s: missing timings: %+v", r.URL, r)
		}
		if r.TLSMS != nil || r.DNSMS != nil {
			t.Errorf("%s: tls/dns phases on a plain-http IP URL", r.URL)
		}
		if r.CheckedAt.Before(r.ScheduledAt.Add(-time.Second)) || r.CheckedAt.Location() != time.UTC {
			t.Errorf("%s: checked_at %v vs scheduled_at %v", r.URL, r.CheckedAt, r.ScheduledAt)
		}
		if r.Checker == "" {
			t.Errorf("%s: empty checker", r.URL)
		}
		if !r.Up() {
			k := deref(r.ErrorKind)
			if wantK := map[bool]string{true: codecs.ErrRegexp, false: codecs.ErrStatus}[r.StatusCode == 200]; k != wantK {
				t.Errorf("%s: error_kind %q, want %q", r.URL, k, wantK)
			}
		}
	}
	var total int64
	hits.Range(func(_, v any) bool { total += v.(*atomic.Int64).Load(); return true })
	if total < int64(len(results)) {
		t.Errorf("%d HTTP hits for %d results", total, len(results))
	}
}

func TestTwoEmittersCheckEachSlotOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const n = 20
	sites, hits, _ := sitesFixture(t, n)
	cluster, addrs := testkit.Kafka(t)
	tp := (&kafkaconn.Options{}).Topics()
	args := []string{"-sites", sites, "-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "4"}
	stopA, logsA := startEmitter(t, append(args, "-instance-id", "a")...)
	stopB, logsB := startEmitter(t, append(args, "-instance-id", "b")...)

	// Both instances must end up owning partitions: the group shares the
	// checks rather than parking one instance.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	gi, err := cluster.WaitGroupInfo(ctx, "url_checker", func(gi *kfake.GroupInfo) bool {
		if gi == nil || gi.State != "Stable" || len(gi.Members) != 2 {
			return false
		}
		for _, m := range gi.Members {
			if m.NumAssigned() == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("url_checker group never shared its partitions between the two instances: %v", err)
	}
	t.Logf("group stable after %v: epoch %d", time.Since(start).Round(time.Millisecond), gi.Epoch)
	time.Sleep(4 * time.Second)
	if code := stopA(); code != 0 {
		t.Fatalf("emitter a: exit %d\n%s", code, logsA.String())
	}
	if code := stopB(); code != 0 {
		t.Fatalf("emitter b: exit %d\n%s", code, logsB.String())
	}
	results := readResults(t, addrs, tp, func([]*codecs.Result) bool { return false }, 3*time.Second)
	if len(results) < n*3 {
		t.Fatalf("only %d results from two emitters over 6s for %d sites at 1s", len(results), n)
	}
	slots := map[string]int{}
	checkers := map[string]int{}
	for _, r := range results {
		slots[r.URL+"@"+r.ScheduledAt.Format(time.RFC3339Nano)]++
		checkers[r.Checker]++
	}
	for slot, c := range slots {
		if c != 1 {
			t.Errorf("slot %s checked %d times", slot, c)
		}
	}
	var total int64
	hits.Range(func(_, v any) bool { total += v.(*atomic.Int64).Load(); return true })
	if total != int64(len(results)) {
		t.Errorf("%d HTTP requests hit the sites for %d results: a slot was checked twice or a result lost", total, len(results))
	}
	if len(checkers) != 2 {
		t.Errorf("checks by instance: %v, want both instances checking", checkers)
	}
}

// TestTwoRegionsCheckEachSlotOnceEach: an emitter of region default and
// one of region eu on one cluster are two check groups, each on its own
// requests topic: every slot is checked once per region, each result
// carries its region, and the two regions' checks of a slot have distinct
// event_ids (the default region's being the id from before regions).
func TestTwoRegionsCheckEachSlotOnceEach(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const n = 10
	sites, hits, _ := sitesFixture(t, n)
	cluster, addrs := testkit.Kafka(t)
	tp := (&kafkaconn.Options{}).Topics()
	args := []string{"-sites", sites, "-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "4"}
	stopA, logsA := startEmitter(t, append(args, "-instance-id", "a")...)
	stopB, logsB := startEmitter(t, append(args, "-instance-id", "b", "-region", "eu")...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, g := range []string{"url_checker", "url_checker_eu"} {
		if _, err := cluster.WaitGroupInfo(ctx, g, func(gi *kfake.GroupInfo) bool {
			return gi != nil && gi.State == "Stable" && len(gi.Members) == 1
		}); err != nil {
			t.Fatalf("group %s never stable with one member: %v", g, err)
		}
	}
	// A stable group is not yet a scheduling emitter: each schedules
	// once its url_checker has its partitions.
	waitUntil(t, 60*time.Second, "both emitters scheduling their partitions", func() bool {
		return strings.Contains(logsA.String(), "request partitions assigned") && strings.Contains(logsB.String(), "request partitions assigned")
	})
	time.Sleep(4 * time.Second)
	if code := stopA(); code != 0 {
		t.Fatalf("emitter a: exit %d\n%s", code, logsA.String())
	}
	if code := stopB(); code != 0 {
		t.Fatalf("emitter b: exit %d\n%s", code, logsB.String())
	}
	results := readResults(t, addrs, tp, func([]*codecs.Result) bool { return false }, 3*time.Second)
	slots := map[string]int{}
	ids := map[string]string{}
	byRegion := map[string]int{}
	for _, r := range results {
		byRegion[r.Region]++
		if want := map[string]string{"default": "a", "eu": "b"}[r.Region]; r.Checker != want {
			t.Errorf("result of region %q checked by %q, want %q", r.Region, r.Checker, want)
		}
		slots[r.Region+"|"+r.URL+"@"+r.ScheduledAt.Format(time.RFC3339Nano)]++
		if want := scheduler.RequestID(r.URL, r.ScheduledAt, r.Region); r.EventID != want {
			t.Errorf("event_id %s of region %s, want %s", r.EventID, r.Region, want)
		}
		if prev, ok := ids[r.EventID]; ok && prev != r.Region {
			t.Errorf("event_id %s in regions %s and %s", r.EventID, prev, r.Region)
		}
		ids[r.EventID] = r.Region
	}
	if byRegion["default"] < n*2 || byRegion["eu"] < n*2 || len(byRegion) != 2 {
		t.Fatalf("results by region over 4s for %d sites at 1s: %v", n, byRegion)
	}
	for slot, c := range slots {
		if c != 1 {
			t.Errorf("slot %s checked %d times in its region", slot, c)
		}
	}
	var total int64
	hits.Range(func(_, v any) bool { total += v.(*atomic.Int64).Load(); return true })
	if total != int64(len(results)) {
		t.Errorf("%d HTTP requests for %d results", total, len(results))
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "sites.yaml")
	if err := os.WriteFile(bad, []byte("sites:\n  - url: ftp://example.com/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("sites:\n  - url: https://example.com/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad sites file", []string{"-sites", bad, "-brokers", "127.0.0.1:1"}, bad + ":2:"},
		{"missing sites file", []string{"-sites", filepath.Join(dir, "nope.yaml"), "-brokers", "127.0.0.1:1"}, "no such file"},
		{"no brokers", []string{"-sites", good}, "-brokers"},
		{"unknown flag", []string{"-frobnicate"}, "frobnicate"},
		{"bad region", []string{"-sites", good, "-brokers", "127.0.0.1:1", "-region", "EU_West"}, "-region"},
		{"region starting with -", []string{"-sites", good, "-brokers", "127.0.0.1:1", "-region=-eu"}, "-region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", "")
			var stderr syncBuffer
			code := run(context.Background(), tc.args, io.Discard, &stderr)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			out := stderr.String()
			if !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
				t.Errorf("stderr %q: want one line mentioning %q", out, tc.want)
			}
		})
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// TestEmitterOverTLSAndSASL runs the real emitter against brokers set up
// the way Aiven offers them: TLS with a client certificate, and SASL/SCRAM
// over TLS. Not parallel: the SASL password comes only from the environment.
func TestEmitterOverTLSAndSASL(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	certs := testkit.NewCerts(t)
	sites, _, _ := sitesFixture(t, 3)
	tp := (&kafkaconn.Options{}).Topics()
	clientTLS := &tls.Config{RootCAs: certs.CAPool, MinVersion: tls.VersionTLS12}
	clientCert, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		cluster []kfake.Opt
		args    []string
		env     map[string]string
		read    []kgo.Opt
	}{
		{
			name:    "tls client certificate",
			cluster: []kfake.Opt{kfake.TLS(certs.Server)},
			args:    []string{"-kafka-ca", certs.CAFile, "-kafka-cert", certs.CertFile, "-kafka-key", certs.KeyFile},
			read:    []kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: certs.CAPool, Certificates: []tls.Certificate{clientCert}})},
		},
		{
			name: "scram-sha-256 over tls",
			cluster: []kfake.Opt{kfake.TLS(&tls.Config{Certificates: certs.Server.Certificates}), kfake.EnableSASL(),
				kfake.Superuser(kafkaconn.SASLScramSHA256, "avnadmin", "pw-for-test")},
			args: []string{"-kafka-ca", certs.CAFile, "-kafka-sasl-mechanism", "SCRAM-SHA-256", "-kafka-sasl-user", "avnadmin"},
			env:  map[string]string{"KAFKA_SASL_PASSWORD": "pw-for-test"},
			read: []kgo.Opt{kgo.DialTLSConfig(clientTLS), kgo.SASL(scram.Auth{User: "avnadmin", Pass: "pw-for-test"}.AsSha256Mechanism())},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, addrs := testkit.Kafka(t, tc.cluster...)
			stop, logs := startEmitter(t, append([]string{"-sites", sites, "-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "2"}, tc.args...)...)
			results := readResults(t, addrs, tp, func(rs []*codecs.Result) bool { return len(rs) >= 3 }, 30*time.Second, tc.read...)
			if code := stop(); code != 0 {
				t.Fatalf("exit status %d; logs:\n%s", code, logs.String())
			}
			if len(results) < 3 {
				t.Fatalf("%d results over %s, want at least 3; logs:\n%s", len(results), tc.name, logs.String())
			}
			if strings.Contains(logs.String(), "pw-for-test") {
				t.Error("the SASL password appears in the logs")
			}
		})
	}
}

// TestVersion: -version prints one line on stdout and exits 0 without a
// sites file or brokers, so it works on a machine with nothing set up.
func TestVersion(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"-version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d, want 0; stderr %q", code, stderr.String())
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "emitter ") || strings.Count(out, "\n") != 1 || stderr.String() != "" {
		t.Errorf("stdout %q, stderr %q: want one line \"emitter <version>\" on stdout only", out, stderr.String())
	}
}
