package notify_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/sinks/notify"
)

const (
	topicChanges = "status_changes"
	topicDLQ     = "sitewatch_dead_letters"
)

// env is a kfake cluster with the two topics and a producer onto them.
type env struct {
	t     *testing.T
	addrs []string
	kgo   *kgo.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, addrs := testkit.Kafka(t, kfake.SeedTopics(3, topicChanges, topicDLQ))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topicChanges))
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	t.Cleanup(cl.Close)
	return &env{t: t, addrs: addrs, kgo: cl}
}

// produce writes the changes keyed by URL, in order.
func (e *env) produce(cs ...*codecs.StatusChange) {
	e.t.Helper()
	recs := make([]*kgo.Record, len(cs))
	for i, c := range cs {
		v, err := codecs.StatusChangeCodec{}.Encode(c)
		if err != nil {
			e.t.Fatalf("encode: %v", err)
		}
		recs[i] = &kgo.Record{Key: []byte(c.URL), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.kgo.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
}

// deadLetters reads want dead letters.
func (e *env) deadLetters(want int) []*codecs.DeadLetter {
	e.t.Helper()
	var out []*codecs.DeadLetter
	for _, r := range testkit.ReadTopic(e.t, e.addrs, topicDLQ, want, 30*time.Second) {
		d, err := codecs.DecodeDeadLetter(r.Value)
		if err != nil {
			e.t.Fatalf("dead letter does not decode: %v", err)
		}
		out = append(out, d)
	}
	return out
}

// saramaConfig has heartbeats short enough for quick group joins.
func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	c.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	return c
}

// running is a notifier started in the background.
type running struct {
	reg  *prometheus.Registry
	logs *testkit.SyncBuffer
	stop func()
}

func (e *env) start(cfg notify.Config) *running {
	e.t.Helper()
	cfg.Brokers = e.addrs
	cfg.Sarama = saramaConfig()
	cfg.Topic, cfg.DeadLetterTopic = topicChanges, topicDLQ
	if cfg.Group == "" {
		cfg.Group = "notify"
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 50*time.Millisecond, 500*time.Millisecond
	}
	r := &running{reg: prometheus.NewRegistry(), logs: &testkit.SyncBuffer{}}
	cfg.Registerer = r.reg
	cfg.Logger = slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := notify.New(cfg)
	if err != nil {
		e.t.Fatalf("notify.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				e.t.Errorf("notifier did not stop within 30s")
			}
		})
	}
	e.t.Cleanup(r.stop)
	return r
}

// metric sums the series of name whose labels include the pairs given.
func (r *running) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return testkit.Metric(t, r.reg, name, labels...)
}

// metricsText is the whole registry as text, to search for secrets.
func (r *running) metricsText(t *testing.T) string {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		fmt.Fprintln(&b, mf.String())
	}
	return b.String()
}

// request is one request a receiver got.
type request struct {
	path, key, sig, ctype string
	body                  []byte
	at                    time.Time
}

// receiver is a webhook endpoint that records every request and answers
// what respond says (200 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []request
	respond func(n int, w http.ResponseWriter, r *http.Request) bool // true: answered
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request) bool) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.reqs)
		rc.reqs = append(rc.reqs, request{
			path: r.URL.RequestURI(), key: r.Header.Get(notify.HeaderIdempotencyKey), sig: r.Header.Get(notify.HeaderSignature),
			ctype: r.Header.Get("Content-Type"), body: body, at: time.Now(),
		})
		rc.mu.Unlock()
		if rc.respond != nil && rc.respond(n, w, r) {
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

// waitRequests waits until the receiver has n requests.
func (rc *receiver) waitRequests(t *testing.T, n int, timeout time.Duration, logs fmt.Stringer) []request {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := rc.requests()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d requests within %s, want %d; logs:\n%s", len(got), timeout, n, tail(logs.String(), 4000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// change is a valid change of url: number i of that URL, down when i is
// even, changed at `at`.
func change(url string, i int, at time.Time) *codecs.StatusChange {
	c := &codecs.StatusChange{
		ChangeID: fmt.Sprintf("%s|%d", url, i), URL: url, Name: "site " + url,
		Since: at.Add(-time.Minute), ChangedAt: at, Consecutive: 3, EventID: fmt.Sprintf("ev-%s-%d", url, i),
	}
	if i%2 == 0 {
		kind, msg := codecs.ErrStatus, "status 503"
		c.Kind, c.State, c.PreviousState = codecs.ChangeDown, codecs.StateDown, codecs.StateUp
		c.ErrorKind, c.ErrorMessage, c.StatusCode = &kind, &msg, 503
	} else {
		c.Kind, c.State, c.PreviousState, c.StatusCode = codecs.ChangeUp, codecs.StateUp, codecs.StateDown, 200
	}
	return c
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// decodeBody decodes a webhook body strictly.
func decodeBody(t *testing.T, b []byte) *codecs.StatusChange {
	t.Helper()
	c, err := codecs.DecodeStatusChange(bytes.TrimSpace(b))
	if err != nil {
		t.Fatalf("webhook body %q is not a status change: %v", b, err)
	}
	return c
}
