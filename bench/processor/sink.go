package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/bench/internal/benchkit"
	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
	"github.com/sitewatch/sitewatch/scheduler"
	"github.com/sitewatch/sitewatch/sinks/postgres"
)

// The sink figure, measured the way an outsider measures it (issue 8):
// result events made from a real emitter event are produced into
// status_request_succeeded before the real cmd/processor starts, with all
// of its parts, as a user runs it; rows per second are counted from the
// first poll of count(*) that sees rows to the first that sees them all;
// then every event_id must be stored exactly once. The baseline is pgx
// CopyFrom of the same rows, 10,000 per call, into an indexed twin of
// check_results, after a CHECKPOINT, in the same database and run.

type sinkRun struct {
	events        int
	copyTook      time.Duration
	sinkTook      time.Duration
	firstSeen     int
	startToFirst  time.Duration
	processorRSS  int64
	processorCPU  time.Duration
	alreadyStored float64
	// windowsAt and alertsAt are the events the windows and alerts
	// processors had consumed when the sink had stored every row;
	// allTook and allCPU how long after the first rows, and the CPU, it
	// took every part to consume every event (zero when not measured).
	windowsAt, alertsAt float64
	allTook             time.Duration
	allCPU              time.Duration
}

func (r sinkRun) copyRate() float64 { return float64(r.events) / r.copyTook.Seconds() }
func (r sinkRun) sinkRate() float64 {
	return float64(r.events-r.firstSeen) / r.sinkTook.Seconds()
}

// benchSinkRuns builds the processor and does o.runs sink runs, each with
// its own Kafka and database.
func benchSinkRuns(ctx context.Context, o options, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "sitewatch-bench-processor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins, err := benchkit.Build(ctx, dir, "github.com/sitewatch/sitewatch/cmd/processor")
	if err != nil {
		return err
	}
	tmpl, err := emitterEvent(ctx)
	if err != nil {
		return err
	}
	parts := "all of its parts"
	if o.processorRun != "" {
		parts = "-run " + o.processorRun
	}
	fmt.Printf("processor sink benchmark: %s, %d result events over %d URLs produced before cmd/processor (%s) starts; baseline pgx CopyFrom (%d rows per call) into an indexed twin of check_results\n",
		runtimeLine(), o.sinkEvents, o.sinkURLs, parts, copyChunk)
	var sink, base, ratio []float64
	for i := range o.runs {
		r, err := sinkOnce(ctx, o, log, bins[0], filepath.Join(dir, fmt.Sprintf("processor-%d.log", i+1)), tmpl, i)
		if err != nil {
			return err
		}
		sink, base, ratio = append(sink, r.sinkRate()), append(base, r.copyRate()), append(ratio, r.sinkRate()/r.copyRate())
		fmt.Printf("\nrun %d/%d\n  sink: %.0f rows/s (%d rows from the first poll that saw rows, %d, to the first that saw all, in %s; first rows %s after the processor started; peak RSS %.0f MiB, %.1f s CPU; %.0f rows skipped as already stored)\n",
			i+1, o.runs, r.sinkRate(), r.events-r.firstSeen, r.firstSeen, r.sinkTook.Round(time.Millisecond), r.startToFirst.Round(time.Millisecond),
			benchkit.MiB(r.processorRSS), r.processorCPU.Seconds(), r.alreadyStored)
		if r.allTook > 0 {
			fmt.Printf("  when every row was stored, windows had consumed %.0f events and alerts %.0f; all parts were done %s after the first rows, %.1f s CPU\n",
				r.windowsAt, r.alertsAt, r.allTook.Round(time.Millisecond), r.allCPU.Seconds())
		}
		fmt.Printf("  COPY: %.0f rows/s (%d rows in %s)\n  ratio sink / COPY: %.2f; every event_id stored exactly once\n",
			r.copyRate(), r.events, r.copyTook.Round(time.Millisecond), ratio[i])
	}
	fmt.Printf("\nsummary (median of %d runs, min and max in brackets; each ratio within one run)\n", o.runs)
	fmt.Printf("  sink rows/s into check_results : %s\n", benchkit.Spread(sink, "%.0f"))
	fmt.Printf("  pgx CopyFrom rows/s into twin  : %s\n", benchkit.Spread(base, "%.0f"))
	fmt.Printf("  ratio sink / COPY              : %s   (goal ≥ 0.7)\n", benchkit.Spread(ratio, "%.2f"))
	return nil
}

// copyChunk is the baseline's rows per CopyFrom call.
const copyChunk = 10000

// emitterEvent is a result event as the emitter makes it: a real check of
// a local page, completed as the url_checker completes it.
func emitterEvent(ctx context.Context) (*codecs.Result, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>status: all good, build 42</body></html>\n"))
	}))
	defer srv.Close()
	u := srv.URL + "/ok?i=0"
	re := "all good"
	res := checker.New(checker.Options{}).Check(ctx, checker.Target{URL: u, Method: http.MethodGet, Timeout: time.Second, Regexp: regexp.MustCompile(re)})
	at := res.CheckedAt.Truncate(time.Second)
	req := &codecs.Request{V: codecs.Version, RequestID: scheduler.RequestID(u, at, codecs.DefaultRegion), URL: u, ScheduledAt: at, NextAt: at.Add(time.Second),
		Method: http.MethodGet, TimeoutMS: 1000, Regexp: &re}
	ev := urlchecker.ResultEvent(req, res, "bench-emitter-1")
	if !ev.Up() {
		return nil, fmt.Errorf("template check of %s is down: %v", u, ev.ErrorMessage)
	}
	return ev, nil
}

// sinkEvents are n copies of tmpl over urls URLs, checked_at spread evenly
// over the hour before now, each with its own slot and so its own id.
func sinkEvents(tmpl *codecs.Result, n, urls int, now time.Time, uuids bool) []*codecs.Result {
	base := strings.TrimSuffix(tmpl.URL, "0")
	begin := now.Add(-time.Hour)
	step := time.Hour / time.Duration(n)
	rs := make([]*codecs.Result, n)
	for i := range rs {
		r := *tmpl
		r.URL = fmt.Sprintf("%s%d", base, i%urls)
		r.CheckedAt = begin.Add(time.Duration(i) * step).UTC()
		// A URL's events are urls·step apart, more than a second: slots
		// (whole seconds) and so ids are all distinct.
		r.ScheduledAt = r.CheckedAt.Truncate(time.Second)
		r.EventID = scheduler.RequestID(r.URL, r.ScheduledAt, codecs.DefaultRegion)
		if uuids {
			r.EventID = randomUUID()
		}
		rs[i] = &r
	}
	return rs
}

func sinkOnce(ctx context.Context, o options, log *slog.Logger, bin, logPath string, tmpl *codecs.Result, run int) (r sinkRun, err error) {
	rs := sinkEvents(tmpl, o.sinkEvents, o.sinkURLs, time.Now().Add(-time.Duration(run)*time.Second), o.sinkIDs == "uuid")
	r.events = len(rs)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(o.partitions))
	if err != nil {
		return r, fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	k := &kafkaconn.Options{Brokers: cluster.ListenAddrs(), Partitions: o.partitions, Replication: 1, ClientID: "sitewatch-bench"}
	cfg, err := k.Sarama()
	if err != nil {
		return r, err
	}
	topics := k.Topics()
	if err := k.EnsureTopics(ctx, cfg, log, topics.All()...); err != nil {
		return r, err
	}
	if err := produce(k, topics, rs, 0, 0); err != nil {
		return r, err
	}

	dbURL, drop, err := freshDatabase(ctx)
	if err != nil {
		return r, err
	}
	defer drop()
	if err := postgres.Migrate(ctx, dbURL, log); err != nil {
		return r, err
	}
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return r, fmt.Errorf("connect: %w", err)
	}
	defer db.Close(context.Background())
	if _, err := db.Exec(ctx, "CREATE TABLE twin (LIKE check_results INCLUDING ALL)"); err != nil {
		return r, fmt.Errorf("create twin: %w", err)
	}
	if _, err := db.Exec(ctx, "CHECKPOINT"); err != nil {
		return r, fmt.Errorf("checkpoint: %w", err)
	}
	start := time.Now()
	for i := 0; i < len(rs); i += copyChunk {
		if err := copyResults(ctx, db, "twin", rs[i:min(i+copyChunk, len(rs))]); err != nil {
			return r, err
		}
	}
	r.copyTook = time.Since(start)
	if _, err := db.Exec(ctx, "CHECKPOINT"); err != nil {
		return r, fmt.Errorf("checkpoint: %w", err)
	}

	metricsAddr, err := benchkit.FreeAddr()
	if err != nil {
		return r, err
	}
	args := []string{"-brokers", strings.Join(k.Brokers, ","), "-database-url", dbURL,
		"-metrics-addr", metricsAddr, "-log-level", "warn"}
	if o.processorRun != "" {
		args = append(args, "-run", o.processorRun)
	}
	child, err := benchkit.Start(bin, args, logPath)
	if err != nil {
		return r, err
	}
	defer child.Stop(30 * time.Second)
	started := time.Now()
	var perf *benchkit.Child
	if o.perf != "" && run == o.runs-1 {
		if perf, err = benchkit.Start("perf", []string{"record", "-F", "1999", "-g", "-o", o.perf, "-p", fmt.Sprint(child.Cmd.Process.Pid)}, logPath+".perf"); err != nil {
			return r, err
		}
		defer perf.StopWith(os.Interrupt, 10*time.Second)
	}
	// Without the results sink (-processor-run of other parts), the
	// events the slowest part has consumed stand for the rows: that times
	// those parts alone.
	count := func() int { return testkit.StoredRows(db) }
	if o.processorRun != "" && !slices.Contains(strings.Split(o.processorRun, ","), "sink-results") {
		count = func() int {
			m, err := benchkit.Scrape("http://"+metricsAddr+"/metrics", "sitewatch_windows_events_consumed_total", "sitewatch_alerts_events_consumed_total")
			if err != nil || len(m) == 0 {
				return 0
			}
			n := len(rs)
			for _, v := range m {
				n = min(n, int(v))
			}
			return n
		}
	}
	var firstAt time.Time
	deadline := started.Add(5 * time.Minute)
	for {
		if _, done := child.Exited(); done {
			return r, fmt.Errorf("processor exited:\n%s", child.Tail())
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("processor: %d of %d rows after 5 minutes:\n%s", count(), len(rs), child.Tail())
		}
		n := count()
		now := time.Now()
		if n > 0 && firstAt.IsZero() {
			firstAt, r.firstSeen, r.startToFirst = now, n, now.Sub(started)
		}
		if o.trace && !firstAt.IsZero() {
			m, _ := benchkit.Scrape("http://"+metricsAddr+"/metrics", "sitewatch_windows_events_consumed_total", "sitewatch_alerts_events_consumed_total")
			cpu, _ := benchkit.ProcCPU(child.Cmd.Process.Pid)
			fmt.Printf("  %6.2fs rows %6d windows %6.0f alerts %6.0f cpu %.2fs\n", now.Sub(firstAt).Seconds(), n,
				m["sitewatch_windows_events_consumed_total"], m["sitewatch_alerts_events_consumed_total"], cpu.Seconds())
		}
		if n >= len(rs) {
			r.sinkTook = now.Sub(firstAt)
			break
		}
		time.Sleep(o.poll)
	}
	if perf != nil {
		// perf writes its file on SIGINT and exits with the signal.
		_ = perf.StopWith(os.Interrupt, 10*time.Second)
	}
	pid := child.Cmd.Process.Pid
	r.processorRSS, _ = benchkit.PeakRSS(pid)
	r.processorCPU, _ = benchkit.ProcCPU(pid)
	if o.processorRun == "" {
		// How far the other consumers of the result topics were, and when
		// they are done too: what the sink's rows/s leaves out.
		consumed := func() (w, a float64) {
			m, err := benchkit.Scrape("http://"+metricsAddr+"/metrics", "sitewatch_windows_events_consumed_total", "sitewatch_alerts_events_consumed_total")
			if err != nil {
				return 0, 0
			}
			return m["sitewatch_windows_events_consumed_total"], m["sitewatch_alerts_events_consumed_total"]
		}
		r.windowsAt, r.alertsAt = consumed()
		for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(o.poll) {
			if w, a := consumed(); w >= float64(len(rs)) && a >= float64(len(rs)) {
				r.allTook = time.Since(firstAt)
				r.allCPU, _ = benchkit.ProcCPU(pid)
				break
			}
		}
	}
	if m, err := benchkit.Scrape("http://"+metricsAddr+"/metrics", "sitewatch_store_results_already_stored_total"); err == nil {
		r.alreadyStored = m["sitewatch_store_results_already_stored_total"]
	}
	if err := child.Stop(30 * time.Second); err != nil {
		return r, fmt.Errorf("processor shutdown: %w\n%s", err, child.Tail())
	}
	if o.processorRun != "" && !slices.Contains(strings.Split(o.processorRun, ","), "sink-results") {
		return r, nil
	}
	stored, err := testkit.StoredEventCounts(ctx, db)
	if err != nil {
		return r, err
	}
	if diff := testkit.ExactlyOnce(stored, testkit.EventIDs(rs)); diff != "" {
		return r, fmt.Errorf("sink run %d: %s", run+1, diff)
	}
	return r, nil
}

// copyResults is the baseline's write: one pgx CopyFrom of rs into table.
func copyResults(ctx context.Context, db *pgx.Conn, table string, rs []*codecs.Result) error {
	cols := []string{"event_id", "url", "scheduled_at", "checked_at", "outcome", "status_code",
		"response_time_ms", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms",
		"body_bytes", "regexp", "regexp_matched", "error_kind", "error_message", "checker"}
	n, err := db.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
		r := rs[i]
		return []any{r.EventID, r.URL, r.ScheduledAt, r.CheckedAt, r.Outcome, int16(r.StatusCode),
			r.ResponseTimeMS, r.DNSMS, r.ConnectMS, r.TLSMS, r.TTFBMS, r.TransferMS,
			r.BodyBytes, r.Regexp, r.RegexpMatched, r.ErrorKind, r.ErrorMessage, r.Checker}, nil
	}))
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	if int(n) != len(rs) {
		return fmt.Errorf("copy into %s stored %d of %d rows", table, n, len(rs))
	}
	return nil
}

// randomUUID is a version-4 UUID in its canonical text.
func randomUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
