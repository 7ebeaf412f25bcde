// Command processor is the load benchmark of the processor half of
// sitewatch, against an in-process Kafka (kfake) and the local PostgreSQL
// (a fresh database that it creates and drops).
//
// By default (-mode sink, sink.go) it measures the results sink the way an
// outsider does (issue 8): the real cmd/processor as a child process over a
// backlog of 300,000 result events, beside pgx CopyFrom of the same rows
// into an indexed twin of check_results in the same run, median of 3.
//
// -mode inprocess prints, in this process, three figures that tell where
// the time goes:
//
//   - results sink: rows per second from Kafka into check_results through
//     the sink (N results produced first, then the sink timed until all
//     are stored), beside a plain pgx CopyFrom of the same rows into the
//     same, truncated, table in the same run, and their ratio; and each
//     half of the sink alone (Kafka read and decode with a store that
//     writes nothing; the store's writes in the sink's batches without
//     Kafka);
//   - windows processor: result events per second through the windows goka
//     processor, from the same backlog;
//   - window writes: status_windows emissions and check_windows upserts by
//     the windows sink, per distinct window, for that backlog and for
//     results arriving live (paced, with the processor already running).
//
// Everything shares the machine: kfake, the sink and PostgreSQL compete
// for the same cores, which a deployment does not make them do.
//
// Everything runs on loopback and stops by itself:
//
//	go run ./bench/processor                      # the sink, 3 runs
//	go run ./bench/processor -processor-run sink-results  # the sink part alone
//	go run ./bench/processor -mode inprocess -results 20000 -urls 200
//
// The database server is SITEWATCH_TEST_DATABASE_URL, or
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/windows"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/sinks/postgres"
)

func main() { os.Exit(run()) }

type options struct {
	mode          string
	runs          int
	sinkEvents    int
	sinkURLs      int
	sinkIDs       string
	poll          time.Duration
	trace         bool
	perf          string
	processorRun  string
	results       int
	urls          int
	interval      time.Duration
	latePercent   int
	partitions    int
	batchSize     int
	flushInterval time.Duration
}

func run() int {
	var o options
	flag.StringVar(&o.mode, "mode", "sink", "sink: the results sink measured as an outsider does (cmd/processor as a child, COPY baseline); inprocess: the sink's halves, the windows processor and window writes, in this process")
	flag.IntVar(&o.runs, "runs", 3, "sink runs; the summary is their median")
	flag.IntVar(&o.sinkEvents, "sink-events", 300000, "result events of a sink run")
	flag.IntVar(&o.sinkURLs, "sink-urls", 100, "URLs of a sink run")
	flag.StringVar(&o.sinkIDs, "sink-ids", "slot", "event_ids of a sink run: slot (each its slot's, as an emitter makes them) or uuid (random UUIDs, as another producer may)")
	flag.DurationVar(&o.poll, "poll", 100*time.Millisecond, "how often a sink run counts check_results")
	flag.BoolVar(&o.trace, "trace", false, "print, at every poll of a sink run, the rows stored, the events the windows and alerts processors consumed and the processor's CPU (the scrapes cost the processor some CPU)")
	flag.StringVar(&o.perf, "perf", "", "record cmd/processor with perf during the last sink run into this file")
	flag.StringVar(&o.processorRun, "processor-run", "", "cmd/processor's -run in a sink run (empty: its default, all parts, as the issue measures; sink-results alone tells the sink's own speed from the other parts' CPU)")
	flag.IntVar(&o.results, "results", 100000, "result events produced")
	flag.IntVar(&o.urls, "urls", 1000, "URLs the results are spread over")
	flag.DurationVar(&o.interval, "interval", 30*time.Second, "event-time interval between two checks of one URL")
	flag.IntVar(&o.latePercent, "late", 2, "percent of events produced up to 40s (event time) late")
	flag.IntVar(&o.partitions, "partitions", 12, "partitions of the topics (the processor's default)")
	flag.IntVar(&o.batchSize, "batch-size", sinks.DefaultBatchSize, "sink batch size (the processor's -batch-size)")
	flag.DurationVar(&o.flushInterval, "flush-interval", sinks.DefaultFlushInterval, "sink flush interval (the processor's -flush-interval)")
	flag.Parse()
	if o.sinkIDs != "slot" && o.sinkIDs != "uuid" {
		fmt.Fprintf(os.Stderr, "-sink-ids: %q, want slot or uuid\n", o.sinkIDs)
		return 2
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	kafkaconn.RouteSaramaLogs(log)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	do := bench
	if o.mode == "sink" {
		do = benchSinkRuns
	}
	if err := do(ctx, o, log); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func runtimeLine() string {
	return fmt.Sprintf("%s, GOMAXPROCS=%d", runtime.Version(), runtime.GOMAXPROCS(0))
}

func bench(ctx context.Context, o options, log *slog.Logger) error {
	fmt.Printf("processor benchmark: %s, GOMAXPROCS=%d, %d results over %d URLs (one every %s of event time, %d%% late), %d partitions, sink batch %d / flush %s\n",
		runtime.Version(), runtime.GOMAXPROCS(0), o.results, o.urls, o.interval, o.latePercent, o.partitions, o.batchSize, o.flushInterval)

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(o.partitions))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	k := &kafkaconn.Options{Brokers: cluster.ListenAddrs(), Partitions: o.partitions, Replication: 1, ClientID: "sitewatch-bench"}
	cfg, err := k.Sarama()
	if err != nil {
		return err
	}
	topics := k.Topics()
	if err := k.EnsureTopics(ctx, cfg, log, topics.All()...); err != nil {
		return err
	}

	dbURL, drop, err := freshDatabase(ctx)
	if err != nil {
		return err
	}
	defer drop()
	if err := postgres.Migrate(ctx, dbURL, log); err != nil {
		return err
	}
	store, err := postgres.Open(ctx, dbURL, postgres.Options{Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	// As the processor does at start: today's partition and a few ahead.
	if err := store.MaintainPartitions(ctx, time.Now(), 3, 0); err != nil {
		return err
	}
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer db.Close(context.Background())

	rs := generate(o, "backlog")
	start := time.Now()
	if err := produce(k, topics, rs, 0, 0); err != nil {
		return err
	}
	fmt.Printf("\nproduced %d results to kfake in %s\n", len(rs), time.Since(start).Round(time.Millisecond))

	if err := benchSink(ctx, o, k, topics, store, db, rs, log); err != nil {
		return err
	}
	if err := benchWindows(ctx, o, k, topics, store, db, len(rs), log); err != nil {
		return err
	}
	return benchLive(ctx, o, k, store, db, log)
}

// freshDatabase creates a database for this run and returns its URL and
// a function that drops it.
func freshDatabase(ctx context.Context) (string, func(), error) {
	dsn, drop, err := testkit.CreateDatabase(ctx, "sw_bench_")
	if err != nil {
		return "", nil, err
	}
	return dsn, func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}, nil
}

// generate makes the results in production order: every URL checked every
// interval of event time ending an hour ago, most up, some down (404, 503,
// regexp, no response), a few produced late, then one flush event per URL
// that closes its last window.
func generate(o options, name string) []*codecs.Result {
	rng := mrand.New(mrand.NewPCG(1, 2))
	perURL := max(o.results/o.urls, 1)
	end := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	begin := end.Add(-time.Duration(perURL) * o.interval)
	type item struct {
		r   *codecs.Result
		key time.Time
	}
	items := make([]item, 0, o.results)
	str := func(s string) *string { return &s }
	for i := 0; len(items) < o.results; i++ {
		u, n := i%o.urls, i/o.urls
		at := begin.Add(time.Duration(n)*o.interval + time.Duration(rng.Int64N(int64(o.interval))))
		ms := 5 + rng.ExpFloat64()*40
		r := &codecs.Result{
			EventID: fmt.Sprintf("%s-%d-%d", name, u, n), URL: fmt.Sprintf("https://%s-%04d.example/", name, u),
			ScheduledAt: at.Truncate(time.Second), CheckedAt: at, Outcome: codecs.OutcomeUp, StatusCode: 200,
			ResponseTimeMS: &ms, TTFBMS: &ms, BodyBytes: 5120, Checker: "bench",
		}
		switch p := rng.IntN(100); {
		case p < 3:
			r.Outcome, r.StatusCode, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, 503, str(codecs.ErrStatus), str("status 503")
		case p < 5:
			r.Outcome, r.StatusCode, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, 404, str(codecs.ErrStatus), str("status 404")
		case p < 6:
			no := false
			r.Outcome, r.ErrorKind, r.ErrorMessage, r.Regexp, r.RegexpMatched = codecs.OutcomeDown, str(codecs.ErrRegexp), str("no match"), str("ok"), &no
		case p < 7:
			r.Outcome, r.StatusCode, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, 0, str(codecs.ErrTimeout), str("timeout")
			r.ResponseTimeMS, r.TTFBMS, r.BodyBytes = nil, nil, 0
		}
		key := at
		if rng.IntN(100) < o.latePercent {
			key = at.Add(time.Duration(rng.Int64N(int64(40 * time.Second))))
		}
		items = append(items, item{r, key})
	}
	// Production order: event time, with the late ones held back.
	slices.SortStableFunc(items, func(a, b item) int { return a.key.Compare(b.key) })
	out := make([]*codecs.Result, 0, len(items)+o.urls)
	for _, it := range items {
		out = append(out, it.r)
	}
	for u := range o.urls {
		at := end.Add(10 * time.Minute)
		out = append(out, &codecs.Result{
			EventID: fmt.Sprintf("%s-%d-flush", name, u), URL: fmt.Sprintf("https://%s-%04d.example/", name, u),
			ScheduledAt: at, CheckedAt: at, Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "bench",
		})
	}
	return out
}

// produce writes the results the way the url_checker does: keyed by URL,
// partitioned by goka's hasher. With pace set it sends them in chunks of
// chunk, one chunk per pace, as checks arriving live would.
func produce(k *kafkaconn.Options, topics kafkaconn.Topics, rs []*codecs.Result, chunk int, pace time.Duration) error {
	cfg, err := k.Sarama()
	if err != nil {
		return err
	}
	emitters := map[goka.Stream]*goka.Emitter{}
	for _, t := range []goka.Stream{topics.Succeeded, topics.Failed} {
		c := *cfg
		e, err := goka.NewEmitter(k.Brokers, t, codecs.ResultCodec{},
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(&c)),
			goka.WithEmitterTopicManagerBuilder(k.TopicManagerBuilder(cfg)))
		if err != nil {
			return fmt.Errorf("emitter %s: %w", t, err)
		}
		emitters[t] = e
	}
	var mu sync.Mutex
	var failed error
	for i, r := range rs {
		if pace > 0 && i > 0 && i%chunk == 0 {
			time.Sleep(pace)
		}
		t := topics.Succeeded
		if !r.Up() {
			t = topics.Failed
		}
		p, err := emitters[t].Emit(r.URL, r)
		if err != nil {
			return fmt.Errorf("emit: %w", err)
		}
		p.Then(func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && failed == nil {
				failed = err
			}
		})
	}
	for t, e := range emitters {
		if err := e.Finish(); err != nil {
			return fmt.Errorf("flush %s: %w", t, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return failed
}

// benchSink times the results sink over the backlog, and a plain COPY of
// the same rows, each into an empty check_results. To tell where the time
// goes it also times the two halves of the sink alone: reading and
// decoding from Kafka with a store that writes nothing, and the store's
// writes in the sink's batches without Kafka.
func benchSink(ctx context.Context, o options, k *kafkaconn.Options, topics kafkaconn.Topics, store *postgres.Store, db *pgx.Conn, rs []*codecs.Result, log *slog.Logger) error {
	truncate := func() error {
		if _, err := db.Exec(ctx, "TRUNCATE check_results"); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
		return nil
	}
	copyOnce := func() (time.Duration, error) {
		if err := truncate(); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := copyResults(ctx, db, "check_results", rs); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	copy1, err := copyOnce()
	if err != nil {
		return err
	}

	// The store alone, fed as the sink feeds it: one writer per topic
	// partition, batches of up to BatchSize in offset order.
	if err := truncate(); err != nil {
		return err
	}
	storeTime, err := storeOnly(ctx, o, store, rs)
	if err != nil {
		return err
	}

	// The Kafka half alone: the sink over a store that writes nothing.
	noop, noopFirst, err := timeSink(ctx, o, k, topics, "bench_noop_results", discard{}, len(rs), log)
	if err != nil {
		return fmt.Errorf("sink without a store: %w", err)
	}

	if err := truncate(); err != nil {
		return err
	}
	sinkTime, first, err := timeSink(ctx, o, k, topics, "sink_results", store, len(rs), log)
	if err != nil {
		return fmt.Errorf("results sink: %w", err)
	}
	var stored int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM check_results").Scan(&stored); err != nil {
		return err
	}
	if stored != len(rs) {
		return fmt.Errorf("results sink stored %d rows of %d", stored, len(rs))
	}
	copy2, err := copyOnce()
	if err != nil {
		return err
	}

	n := float64(len(rs))
	rate := func(d time.Duration) float64 { return n / d.Seconds() }
	copyRate := rate(min(copy1, copy2))
	fmt.Printf("\nresults sink: %d rows Kafka → check_results in %s: %.0f rows/s from the sink's start (group join and the last partial batches' %s flush wait included); first rows stored after %s, %.0f rows/s from then\n",
		len(rs), sinkTime.Round(time.Millisecond), rate(sinkTime), o.flushInterval, first.Round(time.Millisecond), rate(sinkTime-first))
	fmt.Printf("plain pgx CopyFrom of the same rows into the truncated check_results: %s and %s: %.0f rows/s (the faster)\n",
		copy1.Round(time.Millisecond), copy2.Round(time.Millisecond), copyRate)
	fmt.Printf("ratio sink / CopyFrom: %.2f from the sink's start, %.2f from its first write (goal ≥ 0.7)\n",
		rate(sinkTime)/copyRate, rate(sinkTime-first)/copyRate)
	fmt.Printf("  where the time goes: the sink's Kafka half alone (read + decode, store writing nothing): %.0f rows/s from its first batch; the store alone (WriteResults in the sink's batches, no Kafka): %.0f rows/s\n",
		rate(noop-noopFirst), rate(storeTime))
	return nil
}

// storeOnly writes rs with store.WriteResults the way the sink would:
// one writer per topic partition, batches of BatchSize.
func storeOnly(ctx context.Context, o options, store *postgres.Store, rs []*codecs.Result) (time.Duration, error) {
	hasher := goka.DefaultHasher()
	parts := map[string][]*codecs.Result{}
	for _, r := range rs {
		h := hasher()
		_, _ = h.Write([]byte(r.URL))
		k := fmt.Sprintf("%v/%d", r.Up(), h.Sum32()%uint32(o.partitions))
		parts[k] = append(parts[k], r)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, prs := range parts {
		wg.Go(func() {
			for i := 0; i < len(prs); i += o.batchSize {
				if _, err := store.WriteResults(ctx, prs[i:min(i+o.batchSize, len(prs))]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

// discard is a store that writes nothing.
type discard struct{}

func (discard) WriteResults(context.Context, []*codecs.Result) ([]sinks.Rejected, error) {
	return nil, nil
}

func (discard) WriteWindows(context.Context, []*codecs.Window) ([]sinks.Rejected, error) {
	return nil, nil
}

// timeSink runs a results sink in its own consumer group until it has
// written want rows, and returns how long that took from its start and
// when its first rows were written.
func timeSink(ctx context.Context, o options, k *kafkaconn.Options, topics kafkaconn.Topics, group string, store sinks.Store, want int, log *slog.Logger) (total, first time.Duration, err error) {
	reg := prometheus.NewRegistry()
	sc, err := k.Sarama()
	if err != nil {
		return 0, 0, err
	}
	s, err := sinks.New(sinks.Config{
		Brokers: k.Brokers, Sarama: sc, Group: group,
		Topics: []string{string(topics.Succeeded), string(topics.Failed)}, Kind: sinks.Results,
		DeadLetterTopic: string(topics.DeadLetters), BatchSize: o.batchSize, FlushInterval: o.flushInterval,
		Logger: log, Registerer: reg,
	}, store)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	err = runUntil(ctx, s.Run, 5*time.Minute, func() bool {
		w := metric(reg, "sitewatch_sink_rows_written_total", "")
		if w > 0 && first == 0 {
			first = time.Since(start)
		}
		return int(w) >= want
	})
	return time.Since(start), first, err
}

// benchWindows times the windows processor over the same backlog, then
// runs the windows sink over what it emitted and counts the writes.
func benchWindows(ctx context.Context, o options, k *kafkaconn.Options, topics kafkaconn.Topics, store *postgres.Store, db *pgx.Conn, events int, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	cfg, err := k.Sarama()
	if err != nil {
		return err
	}
	wp, err := windows.New(windows.Config{
		Brokers: k.Brokers, Sarama: cfg,
		Topics: windows.Topics{Succeeded: topics.Succeeded, Failed: topics.Failed, Windows: topics.Windows, DeadLetters: topics.DeadLetters},
		Group:  "windows", Storage: storage.MemoryBuilder(), Logger: log, Registerer: reg,
		TopicManager: k.TopicManagerBuilder(cfg),
	})
	if err != nil {
		return err
	}
	consumed := func() float64 { return metric(reg, "sitewatch_windows_events_consumed_total", "") }
	start := time.Now()
	var first time.Duration
	err = runUntil(ctx, wp.Run, 5*time.Minute, func() bool {
		c := consumed()
		if c > 0 && first == 0 {
			first = time.Since(start)
		}
		return int(c) >= events
	})
	took := time.Since(start)
	if err != nil {
		return fmt.Errorf("windows processor: %w", err)
	}
	emitted := metric(reg, "sitewatch_windows_emitted_total", "")
	fmt.Printf("\nwindows processor: %d events in %s: %.0f events/s (from its start, group join and table setup included; first event after %s, %.0f events/s from then)\n",
		events, took.Round(time.Millisecond), float64(events)/took.Seconds(), first.Round(time.Millisecond), float64(events)/(took-first).Seconds())
	var triggers []string
	for _, t := range []string{"watermark", "late", "idle", "redelivery"} {
		triggers = append(triggers, fmt.Sprintf("%s %.0f", t, metric(reg, "sitewatch_windows_emitted_total", t)))
	}
	fmt.Printf("  emitted %.0f windows (%s); %.0f events too late, %.0f duplicates\n", emitted, strings.Join(triggers, ", "),
		metric(reg, "sitewatch_windows_too_late_events_total", ""), metric(reg, "sitewatch_windows_duplicate_events_total", ""))

	sreg := prometheus.NewRegistry()
	sc, err := k.Sarama()
	if err != nil {
		return err
	}
	s, err := sinks.New(sinks.Config{
		Brokers: k.Brokers, Sarama: sc, Group: "sink_windows", Topics: []string{string(topics.Windows)},
		Kind: sinks.Windows, DeadLetterTopic: string(topics.DeadLetters),
		BatchSize: o.batchSize, FlushInterval: o.flushInterval, Logger: log, Registerer: sreg,
	}, store)
	if err != nil {
		return err
	}
	sinkStart := time.Now()
	err = runUntil(ctx, s.Run, 5*time.Minute, func() bool {
		// Consumed everything emitted, and the last batch is committed.
		return metric(sreg, "sitewatch_sink_events_consumed_total", "") >= emitted &&
			metric(sreg, "sitewatch_sink_consumer_lag", "") == 0
	})
	if err != nil {
		return fmt.Errorf("windows sink: %w", err)
	}
	sinkTook := time.Since(sinkStart)
	var distinct int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM check_windows").Scan(&distinct); err != nil {
		return err
	}
	writes := metric(sreg, "sitewatch_sink_rows_written_total", "")
	fmt.Printf("\nwindow writes: %d distinct windows in check_windows; %.0f emissions on status_windows (%.2f per window); %.0f upserts by the windows sink (%.2f per window), in %s\n",
		distinct, emitted, emitted/float64(distinct), writes, writes/float64(distinct), sinkTook.Round(time.Millisecond))
	fmt.Println("  (a backlog read from the start: goka interleaves the two result topics regardless of event time, so windows are emitted early and corrected; the sink keeps one row per window and batch)")
	return nil
}

// benchLive counts window emissions and writes when results arrive live
// (paced below what the processor handles) rather than as a backlog: on
// topics of their own, with the windows processor and the windows sink
// running before the first event.
func benchLive(ctx context.Context, o options, k0 *kafkaconn.Options, store *postgres.Store, db *pgx.Conn, log *slog.Logger) error {
	k := *k0
	k.TopicPrefix = "live_"
	topics := k.Topics()
	cfg, err := k.Sarama()
	if err != nil {
		return err
	}
	if err := k.EnsureTopics(ctx, cfg, log, topics.All()...); err != nil {
		return err
	}
	lo := o
	lo.results, lo.urls = max(o.results/4, 1), max(o.urls/4, 1)
	rs := generate(lo, "live")

	reg := prometheus.NewRegistry()
	wp, err := windows.New(windows.Config{
		Brokers: k.Brokers, Sarama: cfg,
		Topics: windows.Topics{Succeeded: topics.Succeeded, Failed: topics.Failed, Windows: topics.Windows, DeadLetters: topics.DeadLetters},
		Group:  k.Group("windows"), Storage: storage.MemoryBuilder(), Logger: log, Registerer: reg,
		TopicManager: k.TopicManagerBuilder(cfg),
	})
	if err != nil {
		return err
	}
	sreg := prometheus.NewRegistry()
	sc, err := k.Sarama()
	if err != nil {
		return err
	}
	s, err := sinks.New(sinks.Config{
		Brokers: k.Brokers, Sarama: sc, Group: string(k.Group("sink_windows")), Topics: []string{string(topics.Windows)},
		Kind: sinks.Windows, DeadLetterTopic: string(topics.DeadLetters),
		BatchSize: o.batchSize, FlushInterval: o.flushInterval, Logger: log, Registerer: sreg,
	}, store)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- wp.Run(rctx) }()
	go func() { errc <- s.Run(rctx) }()
	if err := wp.WaitForReady(rctx); err != nil {
		return err
	}
	// 500 results every 50ms: 10,000 a second, about half what the
	// processor handles here, so it keeps up as it would with live checks.
	start := time.Now()
	if err := produce(&k, topics, rs, 500, 50*time.Millisecond); err != nil {
		return err
	}
	produced := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	var stable int
	for last := -1.0; stable < 10; time.Sleep(100 * time.Millisecond) {
		emitted := metric(reg, "sitewatch_windows_emitted_total", "")
		done := int(metric(reg, "sitewatch_windows_events_consumed_total", "")) >= len(rs) &&
			metric(sreg, "sitewatch_sink_events_consumed_total", "") >= emitted &&
			metric(sreg, "sitewatch_sink_consumer_lag", "") == 0
		if done && emitted == last {
			stable++
		} else {
			stable = 0
		}
		last = emitted
		if time.Now().After(deadline) {
			return errors.New("live run: not done after 5 minutes")
		}
	}
	cancel()
	for range 2 {
		if err := <-errc; err != nil {
			return err
		}
	}
	var distinct int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM check_windows WHERE url LIKE 'https://live-%'").Scan(&distinct); err != nil {
		return err
	}
	emitted := metric(reg, "sitewatch_windows_emitted_total", "")
	writes := metric(sreg, "sitewatch_sink_rows_written_total", "")
	var triggers []string
	for _, t := range []string{"watermark", "late", "idle", "redelivery"} {
		triggers = append(triggers, fmt.Sprintf("%s %.0f", t, metric(reg, "sitewatch_windows_emitted_total", t)))
	}
	fmt.Printf("\nwindow writes, live: %d results over %d URLs produced at 10,000/s (%s), the processor and sinks running: %d distinct windows; %.0f emissions (%.2f per window: %s); %.0f upserts by the windows sink (%.2f per window)\n",
		len(rs), lo.urls, produced.Round(time.Millisecond), distinct, emitted, emitted/float64(distinct), strings.Join(triggers, ", "), writes, writes/float64(distinct))
	return nil
}

// runUntil runs fn until done reports true (polled every 10ms), then
// stops it and waits for it to return.
func runUntil(ctx context.Context, fn func(context.Context) error, timeout time.Duration, done func() bool) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- fn(rctx) }()
	deadline := time.Now().Add(timeout)
	for !done() {
		select {
		case err := <-errc:
			if err == nil {
				err = errors.New("stopped early")
			}
			return err
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			<-errc
			return fmt.Errorf("not done after %s", timeout)
		}
	}
	cancel()
	return <-errc
}

// metric sums a metric's samples in reg, those with any label equal to
// label when label is set.
func metric(reg *prometheus.Registry, name, label string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !hasLabel(m, label) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetValue() == v {
			return true
		}
	}
	return false
}
