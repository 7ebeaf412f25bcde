// Command emitter is the load benchmark of the emitter half of sitewatch:
// scheduler → Kafka (kfake, in process) → url_checker → Kafka, checking
// local httptest targets. It prints three figures:
//
//   - throughput: checks per second through the whole pipeline, beside a
//     bare net/http loop and a loop of checker.Check doing the same checks
//     with the same concurrency in the same run, and their ratio;
//   - memory: heap held by the scheduler per 10,000 sites;
//   - lateness: how late checks start relative to their slot (p50, p99,
//     max) with 10,000 sites at a 60 s interval on the real clock, for a
//     shortened run (-duration, 90 s by default), and the scheduler's own
//     lag.
//
// Everything runs on loopback and stops by itself:
//
//	go run ./bench/emitter                 # all three, about 2.5 minutes
//	go run ./bench/emitter -mode throughput -checks 20000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
	"github.com/sitewatch/sitewatch/scheduler"
)

func main() { os.Exit(run()) }

type options struct {
	mode        string
	checks      int
	sites       int
	interval    time.Duration
	duration    time.Duration
	concurrency int
	targets     int
	partitions  int
}

func run() int {
	var o options
	flag.StringVar(&o.mode, "mode", "all", "throughput, memory, lateness or all")
	flag.IntVar(&o.checks, "checks", 10000, "checks in the throughput run")
	flag.IntVar(&o.sites, "sites", 10000, "sites in the memory and lateness runs")
	flag.DurationVar(&o.interval, "interval", 60*time.Second, "interval of the sites in the lateness run")
	flag.DurationVar(&o.duration, "duration", 90*time.Second, "length of the lateness run")
	flag.IntVar(&o.concurrency, "concurrency", urlchecker.DefaultConcurrency, "concurrent checks (pipeline and bare loops alike)")
	flag.IntVar(&o.targets, "targets", 8, "httptest servers the sites are spread over (each server port has its own pool of loopback connections)")
	flag.IntVar(&o.partitions, "partitions", 12, "partitions of the topics")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	fmt.Printf("emitter benchmark: %s, GOMAXPROCS=%d, %d targets, concurrency %d\n", runtime.Version(), runtime.GOMAXPROCS(0), o.targets, o.concurrency)

	var err error
	if o.mode == "memory" || o.mode == "all" {
		err = errors.Join(err, benchMemory(ctx, o))
	}
	if o.mode == "throughput" || o.mode == "all" {
		err = errors.Join(err, benchThroughput(ctx, o, log))
	}
	if o.mode == "lateness" || o.mode == "all" {
		err = errors.Join(err, benchLateness(ctx, o, log))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// targets starts n local web servers answering like a small healthy site.
func targets(n int) (urls []string, hits *atomic.Int64, stop func()) {
	hits = new(atomic.Int64)
	body := []byte("<html><body>status: all good, build 42</body></html>\n")
	var srvs []*httptest.Server
	for range n {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Content-Type", "text/html")
			w.Write(body)
		}))
		srvs = append(srvs, s)
		urls = append(urls, s.URL)
	}
	return urls, hits, func() {
		for _, s := range srvs {
			s.Close()
		}
	}
}

func makeSites(bases []string, n int, interval time.Duration) []config.Site {
	sites := make([]config.Site, n)
	for i := range sites {
		sites[i] = config.Site{
			URL:      fmt.Sprintf("%s/site/%d", bases[i%len(bases)], i),
			Name:     fmt.Sprintf("site %d", i),
			Method:   "GET",
			Interval: interval,
			Timeout:  min(10*time.Second, interval),
			Regexp:   nil,
			Line:     i + 1,
		}
	}
	return sites
}

// benchMemory measures the heap the scheduler holds for o.sites sites.
func benchMemory(ctx context.Context, o options) error {
	bases := make([]string, o.targets)
	for i := range bases {
		bases[i] = fmt.Sprintf("http://127.0.0.1:%d", 20000+i)
	}
	sites := makeSites(bases, o.sites, o.interval)
	before := heapInuse()
	clock := &stoppedClock{now: time.Now()}
	s, err := scheduler.New(sites, scheduler.Options{Clock: clock, Emit: func(context.Context, *codecs.Request) error { return nil }})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	clock.waitTimer() // the heap of sites is built
	after := heapInuse()
	cancel()
	if err := <-done; err != nil {
		return err
	}
	runtime.KeepAlive(sites)
	per := float64(after-before) / float64(o.sites) * 10000
	fmt.Printf("\nmemory: scheduler with %d sites holds %.2f MiB of heap (HeapInuse delta after GC), %.2f MiB per 10,000 sites, %.0f bytes per site\n",
		o.sites, mib(after-before), per/(1<<20), float64(after-before)/float64(o.sites))
	fmt.Printf("        (the sites themselves, as config.Load returns them, are excluded: they exist before the scheduler)\n")
	return nil
}

func heapInuse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// stoppedClock never fires: the scheduler builds its heap and waits.
type stoppedClock struct {
	now   time.Time
	mu    sync.Mutex
	armed bool
}

func (c *stoppedClock) Now() time.Time { return c.now }
func (c *stoppedClock) NewTimer(time.Duration) scheduler.Timer {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
	return neverTimer{}
}
func (c *stoppedClock) waitTimer() {
	for {
		c.mu.Lock()
		armed := c.armed
		c.mu.Unlock()
		if armed {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

type neverTimer struct{}

func (neverTimer) C() <-chan time.Time { return nil }
func (neverTimer) Stop() bool          { return true }

// instantClock runs simulated time as fast as the scheduler consumes it:
// every timer fires at once, moving the clock to its deadline. The
// scheduler thus produces one interval's requests for all sites in a
// burst, each still valid (next_at) for a whole interval of real time.
type instantClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *instantClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *instantClock) NewTimer(d time.Duration) scheduler.Timer {
	c.mu.Lock()
	c.now = c.now.Add(d)
	at := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- at
	return firedTimer(ch)
}

type firedTimer chan time.Time

func (t firedTimer) C() <-chan time.Time { return t }
func (t firedTimer) Stop() bool          { return false }

// pipeline is an in-process Kafka with the emitter's topics, a url_checker
// and a RequestEmitter.
type pipeline struct {
	cluster  *kfake.Cluster
	brokers  []string
	requests *urlchecker.RequestEmitter
	results  atomic.Int64
	mu       sync.Mutex
	got      []*codecs.Result
	keep     bool
	peakHeap atomic.Int64
	stop     func() error
}

func startPipeline(ctx context.Context, o options, log *slog.Logger, keepResults bool) (*pipeline, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(o.partitions))
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	k := &kafkaconn.Options{Brokers: c.ListenAddrs(), Partitions: o.partitions, Replication: 1}
	cfg, err := k.Sarama()
	if err != nil {
		c.Close()
		return nil, err
	}
	topics := k.Topics()
	if err := k.EnsureTopics(ctx, cfg, log, topics.All()...); err != nil {
		c.Close()
		return nil, err
	}
	p := &pipeline{cluster: c, brokers: k.Brokers, keep: keepResults}
	proc, err := urlchecker.New(urlchecker.Config{
		Brokers: k.Brokers, Sarama: cfg, TopicManager: k.TopicManagerConfig(),
		Topics:      urlchecker.Topics{Requests: topics.Requests, Succeeded: topics.Succeeded, Failed: topics.Failed, DeadLetters: topics.DeadLetters},
		Concurrency: o.concurrency, InstanceID: "bench", Checker: checker.New(checker.Options{}), Logger: log,
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	p.requests, err = urlchecker.NewRequestEmitter(urlchecker.RequestEmitterConfig{Brokers: k.Brokers, Sarama: cfg, Topic: topics.Requests, Logger: log})
	if err != nil {
		c.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() { errs <- proc.Run(rctx) })
	wg.Go(func() { errs <- p.requests.Run(rctx) })

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics(string(topics.Succeeded), string(topics.Failed)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		cancel()
		c.Close()
		return nil, err
	}
	wg.Go(func() {
		for rctx.Err() == nil {
			cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
				res, err := codecs.DecodeResult(r.Value)
				if err != nil {
					errs <- fmt.Errorf("bad result: %w", err)
					return
				}
				if p.keep {
					p.mu.Lock()
					p.got = append(p.got, res)
					p.mu.Unlock()
				}
				p.results.Add(1)
			})
		}
		errs <- nil
	})
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if v := int64(m.HeapInuse); v > p.peakHeap.Load() {
					p.peakHeap.Store(v)
				}
			}
		}
	})
	p.stop = func() error {
		cancel()
		wg.Wait()
		cl.Close()
		c.Close()
		close(errs)
		var all []error
		for e := range errs {
			all = append(all, e)
		}
		return errors.Join(all...)
	}
	select {
	case <-proc.Ready():
	case <-time.After(60 * time.Second):
		_ = p.stop()
		return nil, errors.New("url_checker not ready after 60s")
	}
	return p, nil
}

// benchThroughput pushes o.checks requests, made by the scheduler on a
// simulated clock, through the pipeline, then does the same checks with a
// bare net/http loop and a checker.Check loop.
func benchThroughput(ctx context.Context, o options, log *slog.Logger) error {
	bases, hits, stopTargets := targets(o.targets)
	defer stopTargets()
	// A long interval keeps every burst request valid for the whole run.
	sites := makeSites(bases, o.checks, time.Hour)
	for i := range sites {
		sites[i].Timeout = 10 * time.Second
	}
	p, err := startPipeline(ctx, o, log, false)
	if err != nil {
		return err
	}
	var emitted atomic.Int64
	sctx, stopSched := context.WithCancel(ctx)
	defer stopSched()
	s, err := scheduler.New(sites, scheduler.Options{
		Clock: &instantClock{now: time.Now()}, Grace: -1,
		Emit: func(ctx context.Context, r *codecs.Request) error {
			if emitted.Add(1) > int64(o.checks) {
				stopSched()
				return nil
			}
			return p.requests.Emit(ctx, r)
		},
	})
	if err != nil {
		return err
	}
	start := time.Now()
	schedDone := make(chan error, 1)
	go func() { schedDone <- s.Run(sctx) }()
	deadline := time.After(10 * time.Minute)
	for p.results.Load() < int64(o.checks) {
		select {
		case <-deadline:
			return fmt.Errorf("throughput: %d of %d results after 10 minutes", p.results.Load(), o.checks)
		case <-time.After(10 * time.Millisecond):
		}
	}
	pipe := time.Since(start)
	<-schedDone
	peak := p.peakHeap.Load()
	if err := p.stop(); err != nil {
		return err
	}
	pipeHits := hits.Load()

	// The same checks without Kafka: net/http alone, then checker.Check.
	urls := make([]string, len(sites))
	for i, s := range sites {
		urls[i] = s.URL
	}
	bare := loop(urls, o.concurrency, bareGet(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}))
	keepAlive := loop(urls, o.concurrency, bareGet(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}, Timeout: 10 * time.Second}))
	chk := checker.New(checker.Options{})
	direct := loop(urls, o.concurrency, func(u string) error {
		r := chk.Check(context.Background(), checker.Target{URL: u, Method: "GET", Timeout: 10 * time.Second})
		if !r.Up {
			return fmt.Errorf("%s down: %s", u, r.ErrorMessage)
		}
		return nil
	})

	rate := func(d time.Duration) float64 { return float64(o.checks) / d.Seconds() }
	fmt.Printf("\nthroughput: %d checks, concurrency %d, %d partitions\n", o.checks, o.concurrency, o.partitions)
	fmt.Printf("  pipeline  scheduler → kfake → url_checker → kfake : %8.0f checks/s (%v, %d HTTP hits, peak heap %.0f MiB incl. kfake)\n", rate(pipe), pipe.Round(time.Millisecond), pipeHits, mib(peak))
	fmt.Printf("  checker.Check loop (fresh connection per check)  : %8.0f checks/s (%v)\n", rate(direct.took), direct.took.Round(time.Millisecond))
	fmt.Printf("  bare net/http loop, keep-alive off              : %8.0f checks/s (%v)\n", rate(bare.took), bare.took.Round(time.Millisecond))
	fmt.Printf("  bare net/http loop, keep-alive on               : %8.0f checks/s (%v)\n", rate(keepAlive.took), keepAlive.took.Round(time.Millisecond))
	fmt.Printf("  ratio pipeline / bare net/http (keep-alive off) : %8.2f\n", rate(pipe)/rate(bare.took))
	fmt.Printf("  ratio pipeline / checker.Check loop             : %8.2f\n", rate(pipe)/rate(direct.took))
	return errors.Join(bare.err, keepAlive.err, direct.err)
}

type loopResult struct {
	took time.Duration
	err  error
}

// loop runs fn over urls with n workers.
func loop(urls []string, n int, fn func(string) error) loopResult {
	work := make(chan string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for range n {
		wg.Go(func() {
			for u := range work {
				if err := fn(u); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, u := range urls {
		work <- u
	}
	close(work)
	wg.Wait()
	return loopResult{time.Since(start), first}
}

func bareGet(c *http.Client) func(string) error {
	return func(u string) error {
		resp, err := c.Get(u)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", u, resp.Status)
		}
		return nil
	}
}

// benchLateness runs o.sites sites at o.interval on the real clock through
// the pipeline for o.duration and reports when checks started relative to
// their slot.
func benchLateness(ctx context.Context, o options, log *slog.Logger) error {
	bases, hits, stopTargets := targets(o.targets)
	defer stopTargets()
	sites := makeSites(bases, o.sites, o.interval)
	p, err := startPipeline(ctx, o, log, true)
	if err != nil {
		return err
	}
	var (
		mu        sync.Mutex
		lag       []time.Duration
		requested int
	)
	start := time.Now()
	s, err := scheduler.New(sites, scheduler.Options{Emit: func(ctx context.Context, r *codecs.Request) error {
		d := time.Since(r.ScheduledAt)
		mu.Lock()
		requested++
		// Slots that began before the start (within the grace) are
		// requested at once by design; they are not lateness.
		if !r.ScheduledAt.Before(start) {
			lag = append(lag, d)
		}
		mu.Unlock()
		return p.requests.Emit(ctx, r)
	}})
	if err != nil {
		return err
	}
	sctx, stopSched := context.WithTimeout(ctx, o.duration)
	defer stopSched()
	fmt.Printf("\nlateness: %d sites, interval %v, running %v on the real clock...\n", o.sites, o.interval, o.duration)
	if err := s.Run(sctx); err != nil {
		return err
	}
	mu.Lock()
	total := requested
	mu.Unlock()
	// Let the last checks finish.
	for wait := time.Now(); p.results.Load() < int64(total) && time.Since(wait) < 30*time.Second; {
		time.Sleep(50 * time.Millisecond)
	}
	ran := time.Since(start)
	peak := p.peakHeap.Load()
	if err := p.stop(); err != nil {
		return err
	}
	p.mu.Lock()
	got := p.got
	p.mu.Unlock()
	var late, startup []time.Duration
	down := 0
	for _, r := range got {
		if r.ScheduledAt.Before(start) {
			startup = append(startup, r.CheckedAt.Sub(r.ScheduledAt))
		} else {
			late = append(late, r.CheckedAt.Sub(r.ScheduledAt))
		}
		if !r.Up() {
			down++
		}
	}
	fmt.Printf("  %d requests, %d results (%d down), %d HTTP hits in %v; %.0f checks/s sustained\n",
		total, len(got), down, hits.Load(), ran.Round(time.Second), float64(len(got))/o.duration.Seconds())
	fmt.Printf("  slots starting during the run (%d checks):\n", len(late))
	fmt.Printf("    check start − scheduled_at         : p50 %v  p99 %v  max %v\n", pct(late, 50), pct(late, 99), pct(late, 100))
	fmt.Printf("    scheduler lag (emit − scheduled_at): p50 %v  p99 %v  max %v\n", pct(lag, 50), pct(lag, 99), pct(lag, 100))
	fmt.Printf("  slots that began within the start-up grace, requested at once (%d checks): check start − scheduled_at p50 %v  max %v\n",
		len(startup), pct(startup, 50), pct(startup, 100))
	fmt.Printf("  peak heap of the whole process (pipeline + in-process kfake + results kept): %.0f MiB\n", mib(peak))
	if len(got) < total {
		return fmt.Errorf("lateness: %d requests but only %d results", total, len(got))
	}
	return nil
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(0, min(i, len(s)-1))].Round(10 * time.Microsecond)
}
