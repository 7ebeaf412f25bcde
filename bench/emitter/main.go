// Command emitter is the load benchmark of the emitter, measured the way
// an outsider measures it (issue 8), so that both get the same numbers:
//
//   - bare loop, the baseline: 64 goroutines, each looping GET /ok?i=N
//     against a web server in this process, a fresh connection per check
//     (DisableKeepAlives), net/http/httptrace timings, the body read and
//     matched against a regexp; for 10 s; successes per second, and the
//     CPU of this process (client and server both) per check;
//   - emitter: the real cmd/emitter as a child process, -sites F -brokers
//     B, F being 20,000 sites /ok?i=N at a 1 s interval with a 1 s timeout
//     and the same regexp (demand far above capacity); Kafka is kfake in
//     this process, which also serves the target. After 10 s of warm-up,
//     the up result events whose checked_at falls in the next 20 s, per
//     second; the child's CPU (utime+stime from /proc) over the same 20 s
//     per check; its peak RSS; and, from its Go runtime metrics, the heap
//     bytes it allocated per check and its GC cycles over the window
//     (allocation is what drives its GC, and it hardly moves with the
//     load of a shared machine, unlike CPU);
//   - the same with 100,000 sites, for the peak RSS of an emitter far
//     beyond its capacity (it must skip, count and stay bounded);
//   - lateness: 10,000 sites at a 60 s interval for a minute: check start
//     (checked_at) minus the slot (scheduled_at), p50, p99 and max.
//
// The bare loop and the emitter run in turn, -runs times; every ratio is
// of one bare loop and the emitter run right after it, and the summary is
// the median. Everything is on loopback and stops by itself:
//
//	go run ./bench/emitter                    # about 4 minutes
//	go run ./bench/emitter -runs 1 -only throughput
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/bench/internal/benchkit"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

func main() { os.Exit(run()) }

type options struct {
	runs         int
	only         string
	workers      int
	bareFor      time.Duration
	sites        int
	bigSites     int
	warmup       time.Duration
	window       time.Duration
	lateSites    int
	lateInterval time.Duration
	lateFor      time.Duration
	emitterArgs  string
	other        string
	perf         string
	keep         bool
}

// pattern is the regexp every check matches against the body.
const pattern = "all good"

var body = []byte("<html><body>status: all good, build 42</body></html>\n")

func run() int {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "bare loop + emitter pairs; the summary is their median")
	flag.StringVar(&o.only, "only", "", "run only one part: throughput, rss or lateness")
	flag.IntVar(&o.workers, "workers", 64, "goroutines of the bare loop")
	flag.DurationVar(&o.bareFor, "bare-duration", 10*time.Second, "length of the bare loop")
	flag.IntVar(&o.sites, "sites", 20000, "sites of the throughput run (1 s interval)")
	flag.IntVar(&o.bigSites, "big-sites", 100000, "sites of the peak-RSS run (1 s interval)")
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "emitter warm-up before counting")
	flag.DurationVar(&o.window, "window", 20*time.Second, "emitter counting window")
	flag.IntVar(&o.lateSites, "late-sites", 10000, "sites of the lateness run")
	flag.DurationVar(&o.lateInterval, "late-interval", 60*time.Second, "interval of the lateness run")
	flag.DurationVar(&o.lateFor, "late-duration", 60*time.Second, "slots of the lateness run measured")
	flag.StringVar(&o.emitterArgs, "emitter-args", "", "extra flags for the emitter child, space separated")
	flag.StringVar(&o.other, "other-emitter", "", "an emitter binary of another build (say main's) to run after this build's in every throughput run, for a same-run comparison")
	flag.StringVar(&o.perf, "perf", "", "record the emitter child with perf over the counting window of the last throughput run into this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (sites files, child logs)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := bench(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "sitewatch-bench-emitter-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bins, err := benchkit.Build(ctx, dir, "github.com/sitewatch/sitewatch/cmd/emitter")
	if err != nil {
		return err
	}
	b := &bencher{o: o, dir: dir, bin: bins[0]}
	b.target = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write(body)
	}))
	defer b.target.Close()
	fmt.Printf("emitter benchmark: %s, GOMAXPROCS=%d, NumCPU=%d, target %s\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), b.target.URL)

	var (
		bareRate, emRate, ratio, bareCPU, emCPU, cpuRatio, rss20, emAlloc []float64
		vsRate, vsCPU, vsAlloc                                            []float64
	)
	if o.only == "" || o.only == "throughput" {
		for i := range o.runs {
			bare, err := b.bareLoop(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("\nrun %d/%d\n  bare loop : %6.0f checks/s (%d ok, %d failed in %s), %5.0f µs CPU per check (this process: client and server)\n",
				i+1, o.runs, bare.rate(), bare.ok, bare.failed, bare.took.Round(time.Millisecond), bare.cpuPerCheck())
			em, err := b.emitter(ctx, o.sites, i == o.runs-1 && o.perf != "")
			if err != nil {
				return err
			}
			em.print("emitter   ")
			bareRate = append(bareRate, bare.rate())
			emRate = append(emRate, em.rate())
			ratio = append(ratio, em.rate()/bare.rate())
			bareCPU = append(bareCPU, bare.cpuPerCheck())
			emCPU = append(emCPU, em.cpuPerCheck())
			cpuRatio = append(cpuRatio, em.cpuPerCheck()/bare.cpuPerCheck())
			rss20 = append(rss20, benchkit.MiB(em.peakRSS))
			emAlloc = append(emAlloc, em.allocPerCheck()/1024)
			fmt.Printf("  ratio emitter / bare loop: %.2f checks/s, %.2f CPU per check\n", ratio[i], cpuRatio[i])
			if o.other != "" {
				other, err := b.emitterOf(ctx, o.other, o.sites, false)
				if err != nil {
					return fmt.Errorf("other emitter: %w", err)
				}
				other.print("other build")
				fmt.Printf("  ratio this build / other build: %.2f checks/s, %.2f CPU per check, %.2f allocated per check\n", em.rate()/other.rate(), em.cpuPerCheck()/other.cpuPerCheck(), em.allocPerCheck()/other.allocPerCheck())
				vsRate = append(vsRate, em.rate()/other.rate())
				vsCPU = append(vsCPU, em.cpuPerCheck()/other.cpuPerCheck())
				vsAlloc = append(vsAlloc, em.allocPerCheck()/other.allocPerCheck())
			}
		}
	}
	var big *emitterRun
	if o.only == "" || o.only == "rss" {
		if big, err = b.emitter(ctx, o.bigSites, false); err != nil {
			return err
		}
		fmt.Println()
		big.print(fmt.Sprintf("emitter with %d sites", o.bigSites))
	}
	var late *lateness
	if o.only == "" || o.only == "lateness" {
		if late, err = b.lateness(ctx); err != nil {
			return err
		}
	}

	fmt.Printf("\nsummary (median of %d runs, min and max in brackets; each ratio is of a bare loop and the emitter run right after it)\n", len(ratio))
	if len(ratio) > 0 {
		fmt.Printf("  emitter up checks/s, %d sites at 1 s : %s\n", o.sites, benchkit.Spread(emRate, "%.0f"))
		fmt.Printf("  bare loop checks/s                   : %s\n", benchkit.Spread(bareRate, "%.0f"))
		fmt.Printf("  ratio emitter / bare loop            : %s   (goal ≥ 0.8)\n", benchkit.Spread(ratio, "%.2f"))
		fmt.Printf("  CPU µs per check, emitter            : %s\n", benchkit.Spread(emCPU, "%.0f"))
		fmt.Printf("  CPU µs per check, bare loop          : %s\n", benchkit.Spread(bareCPU, "%.0f"))
		fmt.Printf("  ratio of CPU per check               : %s   (goal ≤ 1.5)\n", benchkit.Spread(cpuRatio, "%.2f"))
		fmt.Printf("  KiB allocated per check, emitter     : %s\n", benchkit.Spread(emAlloc, "%.1f"))
		fmt.Printf("  peak RSS, %d sites                : %s MiB\n", o.sites, benchkit.Spread(rss20, "%.0f"))
	}
	if len(vsRate) > 0 {
		fmt.Printf("  this build / %s: checks/s %s, CPU per check %s, allocated per check %s\n", o.other, benchkit.Spread(vsRate, "%.2f"), benchkit.Spread(vsCPU, "%.2f"), benchkit.Spread(vsAlloc, "%.2f"))
	}
	if big != nil {
		fmt.Printf("  peak RSS, %d sites               : %.0f MiB (%.0f up checks/s, %.0f requests skipped as stale, %.0f slots shed)\n", o.bigSites, benchkit.MiB(big.peakRSS), big.rate(), big.metrics["sitewatch_requests_stale_total"], big.metrics["sitewatch_schedule_shed_slots_total"])
	}
	if late != nil {
		fmt.Printf("  lateness, %d sites at %s          : p50 %s  p99 %s  max %s (%d checks)\n", o.lateSites, o.lateInterval, late.p50, late.p99, late.max, late.n)
	}
	return nil
}

type bencher struct {
	o      options
	dir    string
	bin    string
	target *httptest.Server
	runs   int
}

// bareResult is one run of the bare loop.
type bareResult struct {
	ok, failed int64
	took       time.Duration
	cpu        time.Duration
}

func (r bareResult) rate() float64 { return float64(r.ok) / r.took.Seconds() }
func (r bareResult) cpuPerCheck() float64 {
	return float64(r.cpu.Microseconds()) / float64(max(r.ok+r.failed, 1))
}

// phases are the httptrace timestamps of one check, as a checker keeps
// them.
type phases struct {
	dnsStart, dnsDone, connStart, connDone, gotConn, wrote, firstByte time.Time
}

func (p *phases) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart:             func(httptrace.DNSStartInfo) { p.dnsStart = time.Now() },
		DNSDone:              func(httptrace.DNSDoneInfo) { p.dnsDone = time.Now() },
		ConnectStart:         func(string, string) { p.connStart = time.Now() },
		ConnectDone:          func(string, string, error) { p.connDone = time.Now() },
		GotConn:              func(httptrace.GotConnInfo) { p.gotConn = time.Now() },
		WroteRequest:         func(httptrace.WroteRequestInfo) { p.wrote = time.Now() },
		GotFirstResponseByte: func() { p.firstByte = time.Now() },
	}
}

// bareLoop is the baseline: what a plain Go program checking the same
// target does on this machine.
func (b *bencher) bareLoop(ctx context.Context) (bareResult, error) {
	re := regexp.MustCompile(pattern)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	defer client.CloseIdleConnections()
	var (
		n, ok, failed atomic.Int64
		firstErr      atomic.Pointer[error]
		wg            sync.WaitGroup
	)
	lctx, cancel := context.WithTimeout(ctx, b.o.bareFor)
	defer cancel()
	cpu0, start := benchkit.SelfCPU(), time.Now()
	for range b.o.workers {
		wg.Go(func() {
			for lctx.Err() == nil {
				var ph phases
				url := fmt.Sprintf("%s/ok?i=%d", b.target.URL, n.Add(1))
				req, err := http.NewRequestWithContext(httptrace.WithClientTrace(lctx, ph.trace()), http.MethodGet, url, nil)
				if err == nil {
					err = check(client, req, re, &ph)
				}
				switch {
				case err == nil:
					ok.Add(1)
				case lctx.Err() == nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	r := bareResult{ok: ok.Load(), failed: failed.Load(), took: time.Since(start), cpu: benchkit.SelfCPU() - cpu0}
	client.CloseIdleConnections()
	if e := firstErr.Load(); e != nil && r.failed*100 > r.ok {
		return r, fmt.Errorf("bare loop: %d of %d checks failed, first: %w", r.failed, r.ok+r.failed, *e)
	}
	return r, nil
}

func check(client *http.Client, req *http.Request, re *regexp.Regexp, ph *phases) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	end := time.Now()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if !re.Match(b) {
		return errors.New("no match")
	}
	// The timings a checker reports, computed as it would.
	if ph.firstByte.IsZero() || end.Before(ph.firstByte) || ph.connDone.Before(ph.connStart) {
		return errors.New("trace incomplete")
	}
	return nil
}

// emitterRun is one emitter child's figures.
type emitterRun struct {
	sites      int
	window     time.Duration
	up, down   int64
	cpu        time.Duration
	parentCPU  time.Duration
	peakRSS    int64
	firstAfter time.Duration
	metrics    map[string]float64
	// allocs and gcs are the child's heap bytes allocated and GC cycles
	// over the window (its Go runtime metrics): allocation per check is
	// what drives its GC, and unlike CPU it hardly moves with the load of
	// the machine.
	allocs, gcs float64
}

func (r *emitterRun) rate() float64 { return float64(r.up) / r.window.Seconds() }
func (r *emitterRun) cpuPerCheck() float64 {
	return float64(r.cpu.Microseconds()) / float64(max(r.up+r.down, 1))
}

func (r *emitterRun) allocPerCheck() float64 {
	return r.allocs / float64(max(r.up+r.down, 1))
}

func (r *emitterRun) print(name string) {
	fmt.Printf("  %s: %6.0f up checks/s (%d up, %d down with checked_at in the %s window), %5.0f µs CPU per check (the child), peak RSS %.0f MiB; first result %s after start; skipped as stale %.0f, checks %.0f\n",
		name, r.rate(), r.up, r.down, r.window, r.cpuPerCheck(), benchkit.MiB(r.peakRSS), r.firstAfter.Round(100*time.Millisecond),
		r.metrics["sitewatch_requests_stale_total"], r.metrics["sitewatch_checks_total"])
	fmt.Printf("      %.1f KiB allocated per check, %.0f GC cycles in the window; requests dropped by the request buffer %.0f; slots shed by the scheduler %.0f\n",
		r.allocPerCheck()/1024, r.gcs, r.metrics["sitewatch_requests_dropped_total"], r.metrics["sitewatch_schedule_shed_slots_total"])
	fmt.Printf("      (the measuring process, which serves the target and runs kfake and the result reader: %.0f µs CPU per check)\n",
		float64(r.parentCPU.Microseconds())/float64(max(r.up+r.down, 1)))
}

// writeSites writes a sites file of n sites /ok?i=N on the target.
func (b *bencher) writeSites(n int, interval, timeout time.Duration) (string, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "defaults:\n  interval: %s\n  timeout: %s\nsites:\n", interval, timeout)
	for i := range n {
		fmt.Fprintf(&sb, "  - url: %s/ok?i=%d\n    regexp: %q\n", b.target.URL, i, pattern)
	}
	b.runs++
	path := filepath.Join(b.dir, fmt.Sprintf("sites-%d.yaml", b.runs))
	return path, os.WriteFile(path, []byte(sb.String()), 0o644)
}

// cluster is a kfake cluster and a reader of the result topics.
type cluster struct {
	c       *kfake.Cluster
	brokers string
	reader  *kgo.Client
}

func newCluster() (*cluster, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(12))
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	r, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics(kafkaconn.TopicSucceeded, kafkaconn.TopicFailed),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.AllowAutoTopicCreation(), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		c.Close()
		return nil, err
	}
	return &cluster{c: c, brokers: strings.Join(c.ListenAddrs(), ","), reader: r}, nil
}

func (c *cluster) close() {
	c.reader.Close()
	c.c.Close()
}

// reader reads the result topics in the background.
type reader struct {
	mu    sync.Mutex
	first time.Time
	stop  context.CancelFunc
	err   chan error
	done  bool
	last  error
}

// startReading hands every result event to fn, one at a time, until
// close; after close fn is not called again.
func (c *cluster) startReading(ctx context.Context, fn func(*codecs.Result)) *reader {
	rctx, stop := context.WithCancel(ctx)
	rd := &reader{stop: stop, err: make(chan error, 1)}
	go func() {
		var bad error
		for rctx.Err() == nil && bad == nil {
			c.reader.PollFetches(rctx).EachRecord(func(rec *kgo.Record) {
				res, err := codecs.DecodeResult(rec.Value)
				if err != nil {
					bad = fmt.Errorf("bad result event: %w", err)
					return
				}
				rd.mu.Lock()
				if rd.first.IsZero() {
					rd.first = time.Now()
				}
				fn(res)
				rd.mu.Unlock()
			})
		}
		rd.err <- bad
	}()
	return rd
}

// firstAt is when the first result arrived (zero: none yet).
func (rd *reader) firstAt() time.Time {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.first
}

// close stops reading and returns what went wrong; it may be called again.
func (rd *reader) close() error {
	if !rd.done {
		rd.stop()
		rd.last, rd.done = <-rd.err, true
	}
	return rd.last
}

// startEmitter runs the emitter child on sites against c.
func (b *bencher) startEmitter(c *cluster, sites string) (*benchkit.Child, string, error) {
	return b.startBinary(b.bin, c, sites)
}

func (b *bencher) startBinary(bin string, c *cluster, sites string) (*benchkit.Child, string, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	args := []string{"-sites", sites, "-brokers", c.brokers, "-metrics-addr", addr, "-log-level", "warn"}
	args = append(args, strings.Fields(b.o.emitterArgs)...)
	b.runs++
	child, err := benchkit.Start(bin, args, filepath.Join(b.dir, fmt.Sprintf("emitter-%d.log", b.runs)))
	return child, "http://" + addr + "/metrics", err
}

// runtimeMetrics are read at both ends of the window.
var runtimeMetrics = []string{"go_memstats_alloc_bytes_total", "go_gc_duration_seconds_count"}

var emitterMetrics = []string{"sitewatch_requests_stale_total", "sitewatch_checks_total", "sitewatch_requests_duplicate_total",
	"sitewatch_results_dropped_total", "sitewatch_requests_dropped_total", "sitewatch_schedule_missed_slots_total",
	"sitewatch_schedule_shed_slots_total"}

// emitter runs the child on n sites at 1 s and counts as the issue says.
func (b *bencher) emitter(ctx context.Context, n int, perf bool) (*emitterRun, error) {
	return b.emitterOf(ctx, b.bin, n, perf)
}

// emitterOf runs the emitter binary bin.
func (b *bencher) emitterOf(ctx context.Context, bin string, n int, perf bool) (*emitterRun, error) {
	sites, err := b.writeSites(n, time.Second, time.Second)
	if err != nil {
		return nil, err
	}
	c, err := newCluster()
	if err != nil {
		return nil, err
	}
	defer c.close()
	child, metricsURL, err := b.startBinary(bin, c, sites)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	defer child.Stop(30 * time.Second)
	r := &emitterRun{sites: n, window: b.o.window}
	from, to := start.Add(b.o.warmup), start.Add(b.o.warmup+b.o.window)
	rd := c.startReading(ctx, func(res *codecs.Result) {
		if res.CheckedAt.Before(from) || !res.CheckedAt.Before(to) {
			return
		}
		if res.Up() {
			r.up++
		} else {
			r.down++
		}
	})
	defer rd.close()
	pid := child.Cmd.Process.Pid
	if !sleepUntil(ctx, from, child) {
		return nil, fmt.Errorf("emitter exited during warm-up:\n%s", child.Tail())
	}
	cpu0, err := benchkit.ProcCPU(pid)
	if err != nil {
		return nil, err
	}
	parent0 := benchkit.SelfCPU()
	rt0, err := benchkit.Scrape(metricsURL, runtimeMetrics...)
	if err != nil {
		return nil, fmt.Errorf("scrape the emitter: %w", err)
	}
	var perfDone chan error
	if perf {
		perfDone = make(chan error, 1)
		go func() {
			out, err := benchkit.Output(ctx, "perf", "record", "-F", "499", "-g", "-o", b.o.perf, "-p", fmt.Sprint(pid), "--", "sleep", fmt.Sprint(int(b.o.window.Seconds())))
			if err != nil {
				err = fmt.Errorf("perf: %w: %s", err, out)
			}
			perfDone <- err
		}()
	}
	if !sleepUntil(ctx, to, child) {
		return nil, fmt.Errorf("emitter exited during the window:\n%s", child.Tail())
	}
	cpu1, err := benchkit.ProcCPU(pid)
	if err != nil {
		return nil, err
	}
	r.cpu = cpu1 - cpu0
	r.parentCPU = benchkit.SelfCPU() - parent0
	if r.metrics, err = benchkit.Scrape(metricsURL, append(emitterMetrics, runtimeMetrics...)...); err != nil {
		return nil, fmt.Errorf("scrape the emitter: %w", err)
	}
	r.allocs = r.metrics["go_memstats_alloc_bytes_total"] - rt0["go_memstats_alloc_bytes_total"]
	r.gcs = r.metrics["go_gc_duration_seconds_count"] - rt0["go_gc_duration_seconds_count"]
	// Results checked within the window may still be on their way.
	if !sleepUntil(ctx, to.Add(3*time.Second), child) {
		return nil, fmt.Errorf("emitter exited after the window:\n%s", child.Tail())
	}
	if r.peakRSS, err = benchkit.PeakRSS(pid); err != nil {
		return nil, err
	}
	if perfDone != nil {
		if err := <-perfDone; err != nil {
			return nil, err
		}
	}
	if err := rd.close(); err != nil {
		return nil, err
	}
	first := rd.firstAt()
	if first.IsZero() {
		return nil, fmt.Errorf("no result from the emitter:\n%s", child.Tail())
	}
	r.firstAfter = first.Sub(start)
	if err := child.Stop(30 * time.Second); err != nil {
		return nil, fmt.Errorf("emitter shutdown: %w\n%s", err, child.Tail())
	}
	return r, nil
}

// lateness is how late checks started relative to their slot.
type lateness struct {
	n             int
	p50, p99, max time.Duration
}

// lateness runs the child on lateSites at lateInterval and measures the
// slots that begin after every part is up (the first result seen) plus a
// second, for lateFor.
func (b *bencher) lateness(ctx context.Context) (*lateness, error) {
	sites, err := b.writeSites(b.o.lateSites, b.o.lateInterval, time.Second)
	if err != nil {
		return nil, err
	}
	c, err := newCluster()
	if err != nil {
		return nil, err
	}
	defer c.close()
	child, _, err := b.startEmitter(c, sites)
	if err != nil {
		return nil, err
	}
	defer child.Stop(30 * time.Second)
	fmt.Printf("\nlateness: %d sites at %s, slots of %s measured...\n", b.o.lateSites, b.o.lateInterval, b.o.lateFor)
	var all []*codecs.Result
	rd := c.startReading(ctx, func(res *codecs.Result) { all = append(all, res) })
	defer rd.close()
	for rd.firstAt().IsZero() {
		if _, done := child.Exited(); done || !sleepUntil(ctx, time.Now().Add(100*time.Millisecond), child) {
			return nil, fmt.Errorf("emitter exited before its first result:\n%s", child.Tail())
		}
	}
	from := rd.firstAt().Add(time.Second)
	to := from.Add(b.o.lateFor)
	if !sleepUntil(ctx, to.Add(3*time.Second), child) {
		return nil, fmt.Errorf("emitter exited during the lateness run:\n%s", child.Tail())
	}
	if err := rd.close(); err != nil {
		return nil, err
	}
	var ds []time.Duration
	for _, r := range all {
		if !r.ScheduledAt.Before(from) && r.ScheduledAt.Before(to) {
			ds = append(ds, r.CheckedAt.Sub(r.ScheduledAt))
		}
	}
	if len(ds) == 0 {
		return nil, errors.New("lateness: no checks measured")
	}
	slices.Sort(ds)
	l := &lateness{n: len(ds), p50: pct(ds, 50), p99: pct(ds, 99), max: ds[len(ds)-1].Round(10 * time.Microsecond)}
	fmt.Printf("  %d checks: check start − scheduled_at p50 %s  p99 %s  max %s\n", l.n, l.p50, l.p99, l.max)
	return l, child.Stop(30 * time.Second)
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))].Round(10 * time.Microsecond)
}

// sleepUntil waits for t; false when the child exited or ctx ended first.
func sleepUntil(ctx context.Context, t time.Time, child *benchkit.Child) bool {
	for time.Now().Before(t) {
		if _, done := child.Exited(); done || ctx.Err() != nil {
			return false
		}
		time.Sleep(min(50*time.Millisecond, time.Until(t)))
	}
	_, done := child.Exited()
	return !done
}
