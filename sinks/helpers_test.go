package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
)

const (
	topicUp     = "status_request_succeeded"
	topicDown   = "status_request_failed"
	topicWindow = "status_windows"
	topicDLQ    = "sitewatch_dead_letters"
)

// kafka is an in-process kfake cluster with a producer and the admin
// calls the tests check offsets with.
type kafka struct {
	t       testing.TB
	cluster *kfake.Cluster
	addrs   []string
	kgo     *kgo.Client
	client  sarama.Client
	admin   sarama.ClusterAdmin
}

func newKafka(t testing.TB, partitions int32, topics ...string) *kafka {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	k := &kafka{t: t, cluster: c, addrs: c.ListenAddrs()}
	k.kgo, err = kgo.NewClient(kgo.SeedBrokers(k.addrs...))
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	t.Cleanup(k.kgo.Close)
	k.client, err = sarama.NewClient(k.addrs, saramaConfig())
	if err != nil {
		t.Fatalf("sarama client: %v", err)
	}
	t.Cleanup(func() { k.client.Close() })
	k.admin, err = sarama.NewClusterAdmin(k.addrs, saramaConfig())
	if err != nil {
		t.Fatalf("sarama admin: %v", err)
	}
	t.Cleanup(func() { k.admin.Close() })
	return k
}

// saramaConfig is what the processor passes (kafkaconn uses V2_8_0_0),
// with heartbeats short enough for a rebalance to take well under a
// second.
func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Producer.Return.Successes = true
	c.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	c.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	return c
}

// produceSucceeded produces n results to status_request_succeeded in one
// call (they are fetched together) and returns their event ids.
func (k *kafka) produceSucceeded(n int) map[string]bool {
	k.t.Helper()
	want := map[string]bool{}
	var recs []*kgo.Record
	for i := range n {
		rec, id := resultRecord(k.t, 2*i) // even: status_request_succeeded
		want[id] = true
		recs = append(recs, rec)
	}
	k.produce(recs...)
	return want
}

// produce writes recs and returns them with their partitions and offsets.
func (k *kafka) produce(recs ...*kgo.Record) []*kgo.Record {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := k.kgo.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		k.t.Fatalf("produce: %v", err)
	}
	return recs
}

type tp struct {
	topic     string
	partition int32
}

// endOffsets are the next offsets to be written in each partition of topics.
func (k *kafka) endOffsets(topics ...string) map[tp]int64 {
	k.t.Helper()
	if err := k.client.RefreshMetadata(topics...); err != nil {
		k.t.Fatalf("metadata: %v", err)
	}
	out := map[tp]int64{}
	for _, topic := range topics {
		ps, err := k.client.Partitions(topic)
		if err != nil {
			k.t.Fatalf("partitions of %s: %v", topic, err)
		}
		for _, p := range ps {
			off, err := k.client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				k.t.Fatalf("end offset of %s/%d: %v", topic, p, err)
			}
			out[tp{topic, p}] = off
		}
	}
	return out
}

// committed are group's committed offsets for the partitions in ends
// (-1 where nothing is committed).
func (k *kafka) committed(group string, ends map[tp]int64) map[tp]int64 {
	k.t.Helper()
	req := map[string][]int32{}
	for p := range ends {
		req[p.topic] = append(req[p.topic], p.partition)
	}
	resp, err := k.admin.ListConsumerGroupOffsets(group, req)
	// A group that has not committed yet may not exist yet.
	if err != nil && !errors.Is(err, sarama.ErrGroupIDNotFound) {
		k.t.Fatalf("committed offsets of %s: %v", group, err)
	}
	out := map[tp]int64{}
	for p := range ends {
		off := int64(-1)
		if resp != nil {
			if b := resp.GetBlock(p.topic, p.partition); b != nil {
				off = b.Offset
			}
		}
		out[p] = off
	}
	return out
}

// waitCommitted waits until group has committed every partition of topics
// up to its end (an empty partition has nothing to commit).
func (k *kafka) waitCommitted(group string, topics ...string) {
	k.t.Helper()
	ends := k.endOffsets(topics...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := k.committed(group, ends)
		for p, off := range got {
			if off == -1 && ends[p] == 0 {
				got[p] = 0
			}
		}
		if equalOffsets(got, ends) {
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("group %s committed %v, want the end offsets %v", group, got, ends)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func equalOffsets(a, b map[tp]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		if b[p] != o {
			return false
		}
	}
	return true
}

// deadLetters reads the whole dead-letter topic.
func (k *kafka) deadLetters() []*codecs.DeadLetter {
	k.t.Helper()
	var want int64
	for _, o := range k.endOffsets(topicDLQ) {
		want += o
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.addrs...), kgo.ConsumeTopics(topicDLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		k.t.Fatalf("kgo: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*codecs.DeadLetter
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			k.t.Fatalf("read %d of %d dead letters: %v", len(out), want, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			d, err := codecs.DecodeDeadLetter(r.Value)
			if err != nil {
				k.t.Errorf("dead letter at offset %d does not decode: %v", r.Offset, err)
				return
			}
			out = append(out, d)
		})
	}
	return out
}

// running is a sink started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

func startSink(t testing.TB, k *kafka, cfg sinks.Config, store sinks.Store) *running {
	t.Helper()
	return startWith(t, k, cfg, func(cfg sinks.Config) (*sinks.Sink, error) { return sinks.New(cfg, store) })
}

// startChangesSink is startSink for a sink of status changes.
func startChangesSink(t testing.TB, k *kafka, cfg sinks.Config, w sinks.ChangeWriter) *running {
	t.Helper()
	return startWith(t, k, cfg, func(cfg sinks.Config) (*sinks.Sink, error) { return sinks.NewChanges(cfg, w) })
}

func startWith(t testing.TB, k *kafka, cfg sinks.Config, build func(sinks.Config) (*sinks.Sink, error)) *running {
	t.Helper()
	cfg.Brokers = k.addrs
	if cfg.Sarama == nil {
		cfg.Sarama = saramaConfig()
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = topicDLQ
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 50 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := build(cfg)
	if err != nil {
		t.Fatalf("new sink: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the sink and waits for Run to return; it may be called
// more than once.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30s after cancel")
	}
}

// metric sums the samples of the named counter or gauge whose labels
// include the given name/value pairs.
func (r *running) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	return testkit.Metric(t, r.reg, name, labels...)
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SINK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sitewatch.db"), nil)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// storedEventIDs lists check_results.event_id, once per row.
func storedEventIDs(t testing.TB, s *sqlite.Store) []string {
	t.Helper()
	rows, err := s.DB().Query("SELECT event_id FROM check_results ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// assertExactlyOnce checks that check_results holds each of want exactly
// once and nothing else.
func assertExactlyOnce(t testing.TB, s *sqlite.Store, want map[string]bool) {
	t.Helper()
	got := storedEventIDs(t, s)
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
		if !want[id] {
			t.Errorf("event %s stored but never produced as valid", id)
		}
	}
	var missing []string
	for id := range want {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d events missing from check_results, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
}

// sites are the URLs (and so the keys) of the test events: enough of them
// for the key hash to spread events over every partition.
var sites = func() []string {
	out := []string{"http://plain.example/"}
	for c := 'a'; c <= 's'; c++ {
		out = append(out, fmt.Sprintf("https://%c.example/", c))
	}
	return out
}()

var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// resultRecord is a valid result event for its topic.
func resultRecord(t testing.TB, i int) (*kgo.Record, string) {
	t.Helper()
	id := fmt.Sprintf("ev-%06d", i)
	at := base.Add(time.Duration(i) * time.Second)
	r := &codecs.Result{EventID: id, URL: sites[i%len(sites)], ScheduledAt: at, CheckedAt: at.Add(time.Millisecond), Checker: "test"}
	topic := topicUp
	if i%2 == 0 {
		r.Outcome, r.StatusCode, r.ResponseTimeMS, r.BodyBytes = codecs.OutcomeUp, 200, ptr(float64(i%300)), 100
	} else {
		topic = topicDown
		r.Outcome, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, ptr(codecs.ErrTimeout), ptr("timeout")
	}
	b, err := codecs.ResultCodec{}.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(r.URL), Value: b}, id
}

// flakyStore is fault injection around a real store: while down is set,
// or for the first failFirst calls, a write fails as a lost database
// connection would, without touching the store.
type flakyStore struct {
	sinks.Store
	down      atomic.Bool
	failFirst atomic.Int64
	calls     atomic.Int64
	failures  atomic.Int64
}

var errConnLost = errors.New("connection lost (injected)")

func (f *flakyStore) fail() bool {
	f.calls.Add(1)
	if f.down.Load() || f.failFirst.Add(-1) >= 0 {
		f.failures.Add(1)
		return true
	}
	return false
}

func (f *flakyStore) WriteResults(ctx context.Context, rs []*codecs.Result) ([]sinks.Rejected, error) {
	if f.fail() {
		return nil, errConnLost
	}
	return f.Store.WriteResults(ctx, rs)
}

func (f *flakyStore) WriteWindows(ctx context.Context, ws []*codecs.Window) ([]sinks.Rejected, error) {
	if f.fail() {
		return nil, errConnLost
	}
	return f.Store.WriteWindows(ctx, ws)
}
