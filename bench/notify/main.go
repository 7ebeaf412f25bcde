// Command notify is the latency benchmark of the notifications sink: it
// produces status changes onto status_changes in an in-process Kafka
// (kfake), paced, and measures for each the time from just before its
// produce call to its arrival at a loopback webhook receiver, through the
// real notify sink with its default batching. As a baseline it POSTs the
// same bodies straight to the same receiver in the same run, and it ends
// with a burst: every change produced at once, timed until the last one
// arrives.
//
//	go run ./bench/notify                      # 1,000 changes at 200/s
//	go run ./bench/notify -changes 5000 -rate 1000
//
// Everything runs on loopback and stops by itself.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/sinks/notify"
)

func main() { os.Exit(run()) }

type options struct {
	changes, partitions int
	rate                float64
}

func run() int {
	var o options
	flag.IntVar(&o.changes, "changes", 1000, "status changes to deliver")
	flag.Float64Var(&o.rate, "rate", 200, "changes produced per second in the paced run")
	flag.IntVar(&o.partitions, "partitions", 3, "partitions of status_changes")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := bench(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/notify:", err)
		return 1
	}
	return 0
}

// receiver records when each change_id first arrived.
type receiver struct {
	mu   sync.Mutex
	at   map[string]time.Time
	want int
	all  chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	now := time.Now()
	key := req.Header.Get(notify.HeaderIdempotencyKey)
	r.mu.Lock()
	if _, ok := r.at[key]; !ok && key != "" {
		r.at[key] = now
		if len(r.at) == r.want {
			close(r.all)
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) reset(want int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at, r.want, r.all = map[string]time.Time{}, want, make(chan struct{})
}

func (r *receiver) arrival(key string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.at[key]
	return t, ok
}

func bench(ctx context.Context, o options) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(o.partitions))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	k := &kafkaconn.Options{Brokers: cluster.ListenAddrs(), Partitions: o.partitions, Replication: 1}
	cfg, err := k.Sarama()
	if err != nil {
		return err
	}
	topics := k.Topics()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := k.EnsureTopics(ctx, cfg, log, topics.StatusChanges, topics.DeadLetters); err != nil {
		return err
	}
	rc := &receiver{}
	rc.reset(1)
	srv := httptest.NewServer(rc)
	defer srv.Close()

	n, err := notify.New(notify.Config{
		Brokers: k.Brokers, Sarama: cfg, Topic: string(topics.StatusChanges), DeadLetterTopic: string(topics.DeadLetters),
		Group: "bench_notify", Webhooks: []string{srv.URL + "/hook"}, Secret: []byte("bench"), Logger: log,
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	defer func() { stop(); <-done }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.DefaultProduceTopic(string(topics.StatusChanges)),
		kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()

	// Warm up: the group has joined once the first change arrives.
	if err := produceWait(ctx, cl, rc, []*codecs.StatusChange{change("warmup", 0)}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	cs := make([]*codecs.StatusChange, o.changes)
	for i := range cs {
		cs[i] = change(fmt.Sprintf("paced%d", i), i)
	}
	rc.reset(len(cs))
	sent := make([]time.Time, len(cs))
	interval := time.Duration(float64(time.Second) / o.rate)
	next := time.Now()
	for i, c := range cs {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		v, err := codecs.StatusChangeCodec{}.Encode(c)
		if err != nil {
			return err
		}
		sent[i] = time.Now()
		cl.Produce(ctx, &kgo.Record{Key: []byte(c.URL), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				log.Error("produce", "err", err)
			}
		})
	}
	if err := waitAll(ctx, rc); err != nil {
		return fmt.Errorf("paced run: %w", err)
	}
	lat := make([]time.Duration, len(cs))
	for i, c := range cs {
		at, _ := rc.arrival(c.ChangeID)
		lat[i] = at.Sub(sent[i])
	}

	// Baseline: the same bodies POSTed straight to the receiver, one at a
	// time, at the same pace.
	rc.reset(len(cs))
	base := make([]time.Duration, len(cs))
	client := &http.Client{Timeout: 10 * time.Second}
	next = time.Now()
	for i, c := range cs {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		v, _ := codecs.StatusChangeCodec{}.Encode(c)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/hook", bytes.NewReader(v))
		req.Header.Set(notify.HeaderIdempotencyKey, c.ChangeID)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		resp.Body.Close()
		at, _ := rc.arrival(c.ChangeID)
		base[i] = at.Sub(start)
	}

	// Burst: everything at once.
	burst := make([]*codecs.StatusChange, o.changes)
	for i := range burst {
		burst[i] = change(fmt.Sprintf("burst%d", i), i)
	}
	start := time.Now()
	if err := produceWait(ctx, cl, rc, burst); err != nil {
		return fmt.Errorf("burst: %w", err)
	}
	took := time.Since(start)

	fmt.Printf("notify: %d changes over %d partitions, one webhook receiver on loopback, default batching (%d, %s)\n",
		o.changes, o.partitions, notify.DefaultBatchSize, notify.DefaultFlushInterval)
	fmt.Printf("paced at %.0f/s, produce → receipt: p50 %s  p90 %s  p99 %s  max %s\n", o.rate, q(lat, .5), q(lat, .9), q(lat, .99), q(lat, 1))
	fmt.Printf("baseline, direct POST → receipt:   p50 %s  p90 %s  p99 %s  max %s\n", q(base, .5), q(base, .9), q(base, .99), q(base, 1))
	fmt.Printf("ratio notify/baseline: p50 %.1fx  p99 %.1fx\n", ratio(lat, base, .5), ratio(lat, base, .99))
	fmt.Printf("burst of %d produced at once: all received in %s (%.0f changes/s)\n", o.changes, took.Round(time.Millisecond), float64(o.changes)/took.Seconds())
	return nil
}

func change(site string, i int) *codecs.StatusChange {
	at := time.Now().UTC()
	url := "https://" + site + ".example/"
	kind, msg := codecs.ErrStatus, "status 503"
	return &codecs.StatusChange{ChangeID: fmt.Sprintf("%s|down|%d", url, i), URL: url, Name: site,
		Kind: codecs.ChangeDown, State: codecs.StateDown, PreviousState: codecs.StateUp, Since: at.Add(-time.Minute), ChangedAt: at,
		Consecutive: 3, EventID: fmt.Sprintf("ev-%s", site), ErrorKind: &kind, ErrorMessage: &msg, StatusCode: 503}
}

// produceWait produces cs and waits until the receiver has them all.
func produceWait(ctx context.Context, cl *kgo.Client, rc *receiver, cs []*codecs.StatusChange) error {
	rc.reset(len(cs))
	recs := make([]*kgo.Record, len(cs))
	for i, c := range cs {
		v, err := codecs.StatusChangeCodec{}.Encode(c)
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Key: []byte(c.URL), Value: v}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return err
	}
	return waitAll(ctx, rc)
}

func waitAll(ctx context.Context, rc *receiver) error {
	rc.mu.Lock()
	all := rc.all
	rc.mu.Unlock()
	select {
	case <-all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("not every change arrived within 2 minutes")
	}
}

// q is the nearest-rank quantile p of ds.
func q(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i].Round(10 * time.Microsecond)
}

func ratio(a, b []time.Duration, p float64) float64 {
	return float64(q(a, p)) / float64(max(q(b, p), time.Microsecond))
}
