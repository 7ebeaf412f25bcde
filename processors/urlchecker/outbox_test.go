package urlchecker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/telemetry"
)

// fastFailing is a producer configuration that gives up on a failing
// broker quickly, so that the outbox's own retries are exercised.
func fastFailing() *sarama.Config {
	c := goka.DefaultConfig()
	c.Producer.Retry.Max = 1
	c.Producer.Retry.Backoff = 10 * time.Millisecond
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Metadata.Retry.Max = 1
	c.Metadata.Retry.Backoff = 10 * time.Millisecond
	c.Net.DialTimeout = time.Second
	return c
}

func stringOutbox(addrs []string, topic string, limit, window int) (*outbox, outboxMetrics, *atomic.Int32) {
	m := newOutboxMetrics("test")
	var done atomic.Int32
	o := newOutbox("test", quiet(), limit, window, m, func() (map[goka.Stream]*goka.Emitter, error) {
		return openEmitters(addrs, fastFailing(), quiet(), nil, emitterSpec{goka.Stream(topic), new(codec.String)})
	})
	return o, m, &done
}

func push(t *testing.T, o *outbox, topic string, done *atomic.Int32, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := o.push(&item{topic: goka.Stream(topic), key: v, value: v, done: func(error) { done.Add(1) }}); err != nil {
			t.Fatalf("push %s: %v", v, err)
		}
	}
}

func TestOutboxRetriesBrokerErrorsAndDropsTheOldestWhenFull(t *testing.T) {
	const topic = "outbox_test"
	c, addrs := testkit.Kafka(t, kfake.SeedTopics(1, topic))
	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.NotEnoughReplicas, Count: -1})

	o, m, done := stringOutbox(addrs, topic, 3, 1)
	// An emitter that cannot deliver says so to /healthz, and recovers.
	var healthMu sync.Mutex
	var health []error
	o.outage = &telemetry.Outage{What: "delivery of test events to kafka", After: time.Nanosecond, Report: func(err error) {
		healthMu.Lock()
		defer healthMu.Unlock()
		health = append(health, err)
	}}
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprintf("v%d", i))
	}
	push(t, o, topic, done, values...)
	if got := value(m.dropped); got != 7 {
		t.Fatalf("dropped = %v after 10 pushes into a buffer of 3, want 7", got)
	}
	go o.loop()
	waitFor(t, "a failed send to be retried", 30*time.Second, func() bool { return value(m.emitErrors) >= 2 })
	if got := value(m.emitted); got != 0 {
		t.Fatalf("%v events acknowledged while the broker refused them all", got)
	}
	fault.Remove()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if e, d, n := value(m.emitted), value(m.dropped), done.Load(); e != 3 || d != 7 || n != 10 {
		t.Errorf("emitted %v, dropped %v, released %d; want 3, 7 and all 10", e, d, n)
	}
	if got := value(m.pending); got != 0 {
		t.Errorf("pending = %v after close", got)
	}
	if got := readValues(t, addrs, topic, 3); got != "v7 v8 v9" {
		t.Errorf("topic holds %q, want the newest three in order", got)
	}
	healthMu.Lock()
	defer healthMu.Unlock()
	if len(health) < 2 || health[0] == nil || !strings.Contains(health[0].Error(), "delivery of test events to kafka failing since") || health[len(health)-1] != nil {
		t.Errorf("health reports %v: want the failing delivery, then healthy again", health)
	}
}

func TestOutboxWithoutBrokerBuffersThenCountsWhatItDrops(t *testing.T) {
	// Nothing listens there: the producer cannot even be created.
	o, m, done := stringOutbox([]string{"127.0.0.1:1"}, "nowhere", 100, 10)
	go o.loop()
	push(t, o, "nowhere", done, "a", "b", "c")
	if got := value(m.pending); got != 3 {
		t.Fatalf("pending = %v, want the 3 buffered events", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := o.close(ctx)
	if err == nil || !strings.Contains(err.Error(), "3 events dropped") {
		t.Fatalf("close = %v, want an error saying 3 events were dropped", err)
	}
	if d, n := value(m.dropped), done.Load(); d != 3 || n != 3 {
		t.Errorf("dropped %v, released %d; want 3 and 3", d, n)
	}
	if err := o.push(&item{topic: "nowhere", key: "late", value: "late", done: func(error) { done.Add(1) }}); err == nil {
		t.Error("push after close accepted")
	}
	if d := value(m.dropped); d != 4 {
		t.Errorf("a push after close was not counted as dropped (%v)", d)
	}
}

func readValues(t *testing.T, addrs []string, topic string, n int) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	// Anything beyond n would be a duplicate: look briefly.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	cl.PollFetches(ctx2).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	return strings.Join(got, " ")
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue() + d.GetGauge().GetValue()
}
