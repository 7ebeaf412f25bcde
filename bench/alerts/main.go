// Command alerts is the load benchmark of the alerts goka group, against
// an in-process Kafka (kfake). It prints two figures:
//
//   - throughput: a backlog of results for sites that flap across the
//     thresholds (three failures, two successes, over and over: two
//     changes every five checks) through the alerts processor, in events
//     and changes per second, beside the windows processor over the same
//     backlog in the same run (the same goka machinery, another callback),
//     and their ratio;
//   - live alert latency (latency.go): the real cmd/emitter checks 1,000
//     loopback sites every 2 s, the real cmd/processor runs -run
//     alerts,notify with a webhook receiver in this process, and rounds of
//     100 sites go down and come back on command; from each change's
//     changed_at (the crossing check's checked_at) to its receipt, p50,
//     p99 and max, and every change received once;
//   - a broker outage: with the processor running and checks arriving
//     live, the broker stops for -outage (30 s) and starts again on the
//     same port and data directory; the checks made meanwhile are produced
//     after it, as the emitter's buffer does. It counts the changes due,
//     the distinct change_ids received, the copies (re-sends with the same
//     id), processor restarts, and how long after the broker came back the
//     last change arrived.
//
// Everything runs on loopback and stops by itself:
//
//	go run ./bench/alerts
//	go run ./bench/alerts -sites 100 -cycles 20 -outage 10s
//	go run ./bench/alerts -throughput=false -outage 0   # the live figure alone
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/alerts"
	"github.com/sitewatch/sitewatch/processors/windows"
)

func main() { os.Exit(run()) }

type options struct {
	sites, cycles, partitions int
	outage                    time.Duration
	throughput                bool

	live                             bool
	liveSites, liveRounds, liveBatch int
	liveInterval                     time.Duration
}

func run() int {
	var o options
	flag.IntVar(&o.sites, "sites", 1000, "sites, each flapping across the thresholds")
	flag.IntVar(&o.cycles, "cycles", 20, "down/up cycles per site in the backlog (5 checks, 2 changes each)")
	flag.IntVar(&o.partitions, "partitions", 12, "partitions of the topics (the processor's default)")
	flag.DurationVar(&o.outage, "outage", 30*time.Second, "broker outage of the second figure (0: skip it)")
	flag.BoolVar(&o.throughput, "throughput", true, "measure the first figure")
	flag.BoolVar(&o.live, "live", true, "measure the live alert latency (cmd/emitter and cmd/processor as children)")
	flag.IntVar(&o.liveSites, "live-sites", 1000, "sites checked live")
	flag.DurationVar(&o.liveInterval, "live-interval", 2*time.Second, "check interval of the live sites")
	flag.IntVar(&o.liveRounds, "live-rounds", 4, "rounds of the live figure: a batch of sites goes down, then up")
	flag.IntVar(&o.liveBatch, "live-batch", 100, "sites that go down in each round")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	kafkaconn.RouteSaramaLogs(log)
	fmt.Printf("alerts benchmark: %s, GOMAXPROCS=%d, %d sites × %d cycles (dddu u), %d partitions\n",
		runtime.Version(), runtime.GOMAXPROCS(0), o.sites, o.cycles, o.partitions)
	if o.throughput {
		if err := throughput(ctx, o, log); err != nil {
			fmt.Fprintln(os.Stderr, "alerts benchmark:", err)
			return 1
		}
	}
	if o.live {
		if err := latency(ctx, o, log); err != nil {
			fmt.Fprintln(os.Stderr, "alerts benchmark:", err)
			return 1
		}
	}
	if o.outage > 0 {
		if err := outage(ctx, o, log); err != nil {
			fmt.Fprintln(os.Stderr, "alerts benchmark:", err)
			return 1
		}
	}
	return 0
}

// flapping returns check i of site s: three down, two up, repeated, one a
// minute of event time from base.
func flapping(s, i int, base time.Time) *codecs.Result {
	url := fmt.Sprintf("https://site-%04d.test/", s)
	at := base.Add(time.Duration(i) * time.Minute)
	r := &codecs.Result{V: 1, EventID: fmt.Sprintf("%s#%d", url, i), URL: url, ScheduledAt: at, CheckedAt: at,
		Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "bench"}
	if i%5 < 3 {
		kind, msg := codecs.ErrStatus, "status 503, expected 2xx or 3xx"
		r.Outcome, r.StatusCode, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, 503, &kind, &msg
	}
	return r
}

// changesDue is how many changes checks 0..n-1 of one site make: a down at
// every third check of a cycle, an up at its fifth.
func changesDue(n int) int {
	due := 0
	for i := range n {
		if i%5 == 2 || i%5 == 4 {
			due++
		}
	}
	return due
}

type kafka struct {
	k      *kafkaconn.Options
	topics kafkaconn.Topics
}

func newKafka(ctx context.Context, addrs []string, partitions int, log *slog.Logger) (*kafka, error) {
	k := &kafkaconn.Options{Brokers: addrs, Partitions: partitions, Replication: 1, ClientID: "sitewatch-bench"}
	cfg, err := k.Sarama()
	if err != nil {
		return nil, err
	}
	topics := k.Topics()
	if err := k.EnsureTopics(ctx, cfg, log, topics.All()...); err != nil {
		return nil, err
	}
	return &kafka{k: k, topics: topics}, nil
}

// producer sends results the way the url_checker does (goka's hasher).
type producer struct {
	emitters map[goka.Stream]*goka.Emitter
	topics   kafkaconn.Topics
	mu       sync.Mutex
	failed   error
}

func (k *kafka) producer() (*producer, error) {
	cfg, err := k.k.Sarama()
	if err != nil {
		return nil, err
	}
	p := &producer{emitters: map[goka.Stream]*goka.Emitter{}, topics: k.topics}
	for _, t := range []goka.Stream{k.topics.Succeeded, k.topics.Failed} {
		c := *cfg
		e, err := goka.NewEmitter(k.k.Brokers, t, codecs.ResultCodec{},
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(&c)),
			goka.WithEmitterTopicManagerBuilder(k.k.TopicManagerBuilder(cfg)))
		if err != nil {
			return nil, fmt.Errorf("emitter %s: %w", t, err)
		}
		p.emitters[t] = e
	}
	return p, nil
}

func (p *producer) send(r *codecs.Result) error {
	t := p.topics.Succeeded
	if !r.Up() {
		t = p.topics.Failed
	}
	pr, err := p.emitters[t].Emit(r.URL, r)
	if err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	pr.Then(func(err error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil && p.failed == nil {
			p.failed = err
		}
	})
	return nil
}

func (p *producer) finish() error {
	for _, e := range p.emitters {
		if err := e.Finish(); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

func throughput(ctx context.Context, o options, log *slog.Logger) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(o.partitions))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	k, err := newKafka(ctx, cluster.ListenAddrs(), o.partitions, log)
	if err != nil {
		return err
	}
	p, err := k.producer()
	if err != nil {
		return err
	}
	base := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Minute)
	checks := o.cycles * 5
	for i := range checks {
		for s := range o.sites {
			if err := p.send(flapping(s, i, base)); err != nil {
				return err
			}
		}
	}
	if err := p.finish(); err != nil {
		return err
	}
	events := checks * o.sites
	want := changesDue(checks) * o.sites

	cfg, err := k.k.Sarama()
	if err != nil {
		return err
	}
	// Baseline: the windows processor over the same backlog.
	wreg := prometheus.NewRegistry()
	wp, err := windows.New(windows.Config{
		Brokers: k.k.Brokers, Sarama: cfg,
		Topics: windows.Topics{Succeeded: k.topics.Succeeded, Failed: k.topics.Failed, Windows: k.topics.Windows, DeadLetters: k.topics.DeadLetters},
		Group:  "windows", Storage: storage.MemoryBuilder(), Logger: log, Registerer: wreg,
		TopicManager: k.k.TopicManagerBuilder(cfg),
	})
	if err != nil {
		return err
	}
	wTook, err := runUntil(ctx, wp.Run, func() bool { return metric(wreg, "sitewatch_windows_events_consumed_total") >= float64(events) })
	if err != nil {
		return err
	}

	areg := prometheus.NewRegistry()
	ap, err := alerts.New(alerts.Config{
		Brokers: k.k.Brokers, Sarama: cfg,
		Topics:  alerts.Topics{Succeeded: k.topics.Succeeded, Failed: k.topics.Failed, Changes: k.topics.StatusChanges, DeadLetters: k.topics.DeadLetters},
		Storage: storage.MemoryBuilder(), Logger: log, Registerer: areg,
		TopicManager: k.k.TopicManagerBuilder(cfg),
	})
	if err != nil {
		return err
	}
	last := time.Now()
	aTook, err := runUntil(ctx, ap.Run, func() bool {
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "  … alerts: %v of %d events consumed, %v of %d changes, %v late\n",
				metric(areg, "sitewatch_alerts_events_consumed_total"), events, metric(areg, "sitewatch_alerts_changes_total"), want,
				metric(areg, "sitewatch_alerts_late_events_total"))
		}
		return metric(areg, "sitewatch_alerts_changes_total") >= float64(want)
	})
	if err != nil {
		return err
	}
	got := metric(areg, "sitewatch_alerts_changes_total")
	fmt.Printf("\nthroughput (a backlog of %d events, both topics read from the start):\n", events)
	fmt.Printf("  windows processor (baseline): %s, %.0f events/s\n", wTook.Round(time.Millisecond), float64(events)/wTook.Seconds())
	fmt.Printf("  alerts processor:             %s, %.0f events/s, %.0f changes/s (%v changes, %d due); %.2f× the baseline's events/s\n",
		aTook.Round(time.Millisecond), float64(events)/aTook.Seconds(), got/aTook.Seconds(), got, want,
		(float64(events)/aTook.Seconds())/(float64(events)/wTook.Seconds()))
	fmt.Printf("  (both from the processor's start: group join and table setup included; late %v, duplicates %v)\n",
		metric(areg, "sitewatch_alerts_late_events_total"), metric(areg, "sitewatch_alerts_duplicate_events_total"))
	return nil
}

// runUntil runs fn until done or a 10-minute limit, then stops it and
// returns how long it ran.
func runUntil(ctx context.Context, fn func(context.Context) error, done func() bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- fn(ctx) }()
	for !done() {
		select {
		case err := <-errc:
			return time.Since(start), fmt.Errorf("stopped early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(start)
	cancel()
	return took, <-errc
}

func metric(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += value(m)
		}
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// outage runs the processor with checks arriving live (one per site every
// tick, a minute of event time each), stops the broker for o.outage and
// starts it again on the same port and data.
func outage(ctx context.Context, o options, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "sitewatch-bench-alerts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	start := func() (*kfake.Cluster, error) {
		return kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.DefaultNumPartitions(o.partitions))
	}
	cluster, err := start()
	if err != nil {
		return err
	}
	current := cluster
	defer func() { current.Close() }()
	k, err := newKafka(ctx, cluster.ListenAddrs(), o.partitions, log)
	if err != nil {
		return err
	}
	cfg, err := k.k.Sarama()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	ap, err := alerts.New(alerts.Config{
		Brokers: k.k.Brokers, Sarama: cfg,
		Topics:  alerts.Topics{Succeeded: k.topics.Succeeded, Failed: k.topics.Failed, Changes: k.topics.StatusChanges, DeadLetters: k.topics.DeadLetters},
		Storage: storage.MemoryBuilder(), Logger: log, Registerer: reg,
		TopicManager: k.k.TopicManagerBuilder(cfg),
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- ap.Run(runCtx) }()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	err = ap.WaitForReady(wctx)
	wcancel()
	if err != nil {
		return err
	}

	sites := min(o.sites, 200)
	const tick = 200 * time.Millisecond
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	produceTicks := func(from, to int) error {
		p, err := k.producer()
		if err != nil {
			return err
		}
		for i := from; i < to; i++ {
			for s := range sites {
				if err := p.send(flapping(s, i, base)); err != nil {
					return err
				}
			}
		}
		return p.finish()
	}
	// 10 s live before the outage.
	i := 0
	for ; i < int(10*time.Second/tick); i++ {
		if err := produceTicks(i, i+1); err != nil {
			return err
		}
		time.Sleep(tick)
	}
	beforeOutage := metric(reg, "sitewatch_alerts_changes_total")
	current.Close()
	down := time.Now()
	// The checks made while the broker is away wait in the emitter.
	buffered := int(o.outage / tick)
	time.Sleep(o.outage)
	current, err = start()
	if err != nil {
		return fmt.Errorf("restart kfake: %w", err)
	}
	up := time.Now()
	if err := produceTicks(i, i+buffered); err != nil {
		return fmt.Errorf("produce the buffered checks: %w", err)
	}
	i += buffered
	// 10 s live after it.
	for end := i + int(10*time.Second/tick); i < end; i++ {
		if err := produceTicks(i, i+1); err != nil {
			return err
		}
		time.Sleep(tick)
	}
	want := changesDue(i) * sites
	var lastChange time.Duration
	// Until every change is out, or nothing more came for 20 s.
	seen, lastAt := metric(reg, "sitewatch_alerts_changes_total"), time.Now()
	for seen < float64(want) && time.Since(lastAt) < 20*time.Second {
		time.Sleep(50 * time.Millisecond)
		if n := metric(reg, "sitewatch_alerts_changes_total"); n > seen {
			seen, lastAt = n, time.Now()
		}
	}
	lastChange = lastAt.Sub(up)
	// Read status_changes: distinct ids and copies.
	cl, err := kgo.NewClient(kgo.SeedBrokers(current.ListenAddrs()...), kgo.ConsumeTopics(string(k.topics.StatusChanges)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ids := map[string]int{}
	made := map[string]bool{} // event_id and kind of each change received
	records := 0
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	for rctx.Err() == nil && len(ids) < want {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			c, err := codecs.DecodeStatusChange(r.Value)
			if err == nil {
				ids[c.ChangeID]++
				made[c.EventID+" "+c.Kind] = true
				records++
			}
		})
	}
	rcancel()
	byTick := map[int]int{}
	for s := range sites {
		for t := range i {
			var kind string
			switch t % 5 {
			case 2:
				kind = codecs.ChangeDown
			case 4:
				kind = codecs.ChangeUp
			default:
				continue
			}
			if r := flapping(s, t, base); !made[r.EventID+" "+kind] {
				byTick[t]++
			}
		}
	}
	var missing []string
	for t, n := range byTick {
		missing = append(missing, fmt.Sprintf("%03d:%d", t, n))
	}
	inversions, late := disorder(ctx, current.ListenAddrs(), k.topics, i*sites)
	stop()
	<-errc
	fmt.Printf("\nbroker outage (%d sites flapping live, one check each per %s; the broker away for %s):\n", sites, tick, up.Sub(down).Round(time.Millisecond))
	fmt.Printf("  changes due %d; changes made by the processor %v; distinct change_ids on status_changes %d; records %d (%d copies: re-sends with the same id)\n",
		want, metric(reg, "sitewatch_alerts_changes_total"), len(ids), records, records-len(ids))
	if len(missing) > 0 {
		slices.Sort(missing)
		fmt.Printf("  missing changes by tick (tick:count): %v\n", missing)
	}
	fmt.Printf("  %v changes before the outage; the %d buffered checks per site produced at once when the broker came back\n", beforeOutage, buffered)
	fmt.Printf("  last change %s after the broker came back; processor restarts %v (goka failed and was rebuilt)\n",
		lastChange.Round(time.Millisecond), metric(reg, "sitewatch_alerts_restarts_total"))
	fmt.Printf("  events consumed %v of %d produced; late (not applied) %v; duplicates %v\n",
		metric(reg, "sitewatch_alerts_events_consumed_total"), i*sites,
		metric(reg, "sitewatch_alerts_late_events_total"), metric(reg, "sitewatch_alerts_duplicate_events_total"))
	fmt.Printf("  result records behind an older one of the same site in their partition: %d; more than %s of event time behind the partition's newest: %d\n",
		inversions, 30*time.Second, late)
	return nil
}

// disorder reads both result topics from the start and counts, per
// partition, the records that come after a newer record of the same URL
// (the topic itself is out of order), and those more than 30 s of event
// time behind the newest record before them.
func disorder(ctx context.Context, brokers []string, topics kafkaconn.Topics, want int) (inversions, late int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(string(topics.Succeeded), string(topics.Failed)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return -1, -1
	}
	defer cl.Close()
	type tp struct {
		topic string
		part  int32
	}
	newestURL := map[string]time.Time{}
	newest := map[tp]time.Time{}
	n := 0
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for n < want && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(rec *kgo.Record) {
			r, err := codecs.DecodeResult(rec.Value)
			if err != nil {
				return
			}
			n++
			key := rec.Topic + " " + r.URL
			if r.CheckedAt.Before(newestURL[key]) {
				inversions++
			} else {
				newestURL[key] = r.CheckedAt
			}
			k := tp{rec.Topic, rec.Partition}
			if r.CheckedAt.Add(30 * time.Second).Before(newest[k]) {
				late++
			}
			if r.CheckedAt.After(newest[k]) {
				newest[k] = r.CheckedAt
			}
		})
	}
	return inversions, late
}
