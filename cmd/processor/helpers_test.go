package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/processors/windows/hist"
)

// childArgsEnv, when set, makes the test binary run the processor itself
// (its arguments separated by childArgsSep) instead of the tests, so that a
// test can kill it with SIGKILL.
const (
	childArgsEnv = "SITEWATCH_PROCESSOR_CHILD_ARGS"
	childArgsSep = "\x1f"
)

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Exit(run(context.Background(), strings.Split(args, childArgsSep), os.Stderr))
	}
	// The program points sarama's package-level logger at its own once
	// per process; doing it before any test starts a Kafka client keeps
	// that write from racing with the tests' own clients.
	kafkaconn.RouteSaramaLogs(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// topics are the default topic names (no prefix).
var topics = (&kafkaconn.Options{}).Topics()

// testPartitions is the partition count of every topic in these tests: few
// enough to start fast, more than one so that goka's partitioning matters.
const testPartitions = 4

// env is one test's Kafka (kfake, with the sitewatch topics) and database.
type env struct {
	addrs []string
	db    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, addrs := testkit.Kafka(t)
	e := &env{addrs: addrs, db: testkit.Postgres(t)}
	tm, err := goka.NewTopicManager(addrs, e.sarama(), e.topicManagerConfig())
	if err != nil {
		t.Fatalf("topic manager: %v", err)
	}
	defer tm.Close()
	for _, s := range topics.All() {
		if err := tm.EnsureStreamExists(string(s), testPartitions); err != nil {
			t.Fatalf("create %s: %v", s, err)
		}
	}
	return e
}

func (e *env) sarama() *sarama.Config {
	c := goka.DefaultConfig()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

func (e *env) topicManagerConfig() *goka.TopicManagerConfig {
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1
	tmc.Stream.Retention = 7 * 24 * time.Hour // the processor's own default
	return tmc
}

// args are the processor's flags for this environment, with a database URL
// that may differ from e.db (a proxy in front of it).
func (e *env) args(databaseURL string, extra ...string) []string {
	return append([]string{
		"-brokers", testkit.JoinAddrs(e.addrs),
		"-database-url", databaseURL,
		"-topic-partitions", fmt.Sprint(testPartitions),
		"-flush-interval", "100ms",
		"-batch-size", "250",
	}, extra...)
}

// producer writes to the sitewatch topics the way the url_checker does:
// keyed by URL and partitioned by goka's hasher, so that the windows
// processor's table partitions match its input partitions.
type producer struct {
	t        *testing.T
	emitters map[goka.Stream]*goka.Emitter
	mu       sync.Mutex
	errs     []error

	finishOnce sync.Once
}

func (e *env) producer(t *testing.T) *producer {
	t.Helper()
	p := &producer{t: t, emitters: map[goka.Stream]*goka.Emitter{}}
	for _, s := range []goka.Stream{topics.Succeeded, topics.Failed, topics.Windows} {
		em, err := goka.NewEmitter(e.addrs, s, new(codec.Bytes),
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(e.sarama())),
			goka.WithEmitterTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(e.sarama(), e.topicManagerConfig())))
		if err != nil {
			t.Fatalf("emitter %s: %v", s, err)
		}
		p.emitters[s] = em
	}
	t.Cleanup(func() { _ = p.finish() })
	return p
}

// raw sends one message as is. Errors are collected and reported by done,
// so that raw may be called from any goroutine.
func (p *producer) raw(topic goka.Stream, key string, value []byte) {
	pr, err := p.emitters[topic].Emit(key, value)
	if err != nil {
		p.fail(fmt.Errorf("emit to %s: %w", topic, err))
		return
	}
	pr.Then(func(err error) {
		if err != nil {
			p.fail(fmt.Errorf("produce to %s: %w", topic, err))
		}
	})
}

func (p *producer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

// results sends results to the topic of their outcome, in order.
func (p *producer) results(rs []*codecs.Result) {
	for _, r := range rs {
		b, err := codecs.ResultCodec{}.Encode(r)
		if err != nil {
			p.fail(fmt.Errorf("encode result: %w", err))
			continue
		}
		p.raw(resultTopic(r), r.URL, b)
	}
}

func (p *producer) finish() error {
	var errs []error
	p.finishOnce.Do(func() {
		for _, em := range p.emitters {
			if err := em.Finish(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) > 0 {
		errs = append(errs, p.errs...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("produce: %v", errs)
	}
	return nil
}

// done finishes the emitters and fails the test if a message was not
// acknowledged.
func (p *producer) done() {
	p.t.Helper()
	if err := p.finish(); err != nil {
		p.t.Fatal(err)
	}
}

func resultTopic(r *codecs.Result) goka.Stream {
	if r.Outcome == codecs.OutcomeDown {
		return topics.Failed
	}
	return topics.Succeeded
}

func encodeResult(t testing.TB, r *codecs.Result) []byte {
	t.Helper()
	b, err := codecs.ResultCodec{}.Encode(r)
	if err != nil {
		t.Fatalf("encode result: %v", err)
	}
	return b
}

// processor is one run of the program in a goroutine.
type processor struct {
	stop func() int
	logs *testkit.SyncBuffer
}

// startProcessor runs the real program; stop cancels its context (what
// SIGTERM does) and returns its exit status.
func startProcessor(t *testing.T, args []string) *processor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testkit.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, logs) }()
	var once sync.Once
	var code int
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("processor did not stop within 60s; logs:\n%s", logs.String())
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return &processor{stop: stop, logs: logs}
}

// child is the processor running as a separate process (the test binary
// re-executed), which a test can kill without letting it flush anything.
type child struct {
	cmd  *exec.Cmd
	logs *testkit.SyncBuffer
	done chan struct{}
}

func startChild(t *testing.T, args []string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(exe), logs: &testkit.SyncBuffer{}, done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, childArgsSep))
	c.cmd.Stderr = c.logs
	c.cmd.Stdout = c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start processor process: %v", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(c.kill)
	return c
}

// kill is kill -9: no flush, no commit, no leaving the consumer groups.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stream is a generated workload: results in production order, and what a
// correct pipeline must make of them.
type stream struct {
	// events are the results in the order to produce them, the flush
	// events last.
	events []*codecs.Result
	// flushFrom is the start of the flush events' windows: those windows
	// are never closed by an event and are not compared.
	flushFrom time.Time
	// lateCrossings counts events produced after a later event of their URL
	// that is already in a following window, i.e. after their window was
	// closed: each must re-emit its window with a higher revision.
	lateCrossings int
}

const (
	windowSize = 5 * time.Minute
	// maxLateness is how far (event time) behind its URL's newest event an
	// event may be produced; below the processor's one-minute grace, so
	// every such event must still count.
	maxLateness = 40 * time.Second
)

// genStream makes n results over urls URLs and two hours of event time
// ending an hour ago, with every outcome the windows aggregate: up with 200
// and 301, down on 404 and 503, regexp failures with a 200, and checks that
// got no response (status 0, null response time); some events arrive late
// (within the grace), and one flush event per URL ten minutes after the
// rest closes the last real windows.
func genStream(seed uint64, urls, n int) *stream {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	base := time.Now().UTC().Truncate(windowSize).Add(-3 * time.Hour)
	span := 2 * time.Hour
	perURL := n / urls
	step := span / time.Duration(perURL)
	type item struct {
		r   *codecs.Result
		key time.Time // production order
	}
	var items []item
	for u := range urls {
		site := fmt.Sprintf("http://site-%02d.test/path", u)
		first := len(items)
		for i := range perURL {
			// Nanosecond timestamps, as the checker sends them.
			at := base.Add(time.Duration(i)*step + time.Duration(rng.Int64N(int64(step/2))))
			r := genResult(rng, site, fmt.Sprintf("ev-%d-%02d-%04d", seed, u, i), at)
			key := at
			if rng.IntN(100) < 3 {
				key = at.Add(time.Duration(rng.Int64N(int64(maxLateness))))
			}
			items = append(items, item{r, key})
		}
		// Half the events whose successor is in the next window and close
		// enough are held back until just after it: their window is then
		// closed when they arrive, still within the grace.
		for i := first; i+1 < len(items); i++ {
			at, next := items[i].r.CheckedAt, items[i+1].r.CheckedAt
			gap := next.Sub(at)
			if gap < maxLateness && next.Truncate(windowSize) != at.Truncate(windowSize) && rng.IntN(2) == 0 {
				items[i].key = next.Add((maxLateness - gap) / 2)
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].key.Before(items[j].key) })
	s := &stream{flushFrom: base.Add(span + 10*time.Minute)}
	newest := map[string]time.Time{}
	for _, it := range items {
		r := it.r
		if w := newest[r.URL]; !w.IsZero() && !w.Before(r.CheckedAt.Truncate(windowSize).Add(windowSize)) {
			s.lateCrossings++
		}
		if r.CheckedAt.After(newest[r.URL]) {
			newest[r.URL] = r.CheckedAt
		}
		s.events = append(s.events, r)
	}
	for u := range urls {
		site := fmt.Sprintf("http://site-%02d.test/path", u)
		r := genResult(rng, site, fmt.Sprintf("ev-%d-%02d-flush", seed, u), s.flushFrom.Add(time.Duration(u)*time.Second))
		s.events = append(s.events, r)
	}
	return s
}

// genResult makes one result at the given time with a random outcome.
func genResult(rng *rand.Rand, site, id string, at time.Time) *codecs.Result {
	ms := func() *float64 {
		v := math.Round(math.Exp(3+rng.NormFloat64())*1e3) / 1e3 // lognormal around 20 ms, µs resolution
		if rng.IntN(200) == 0 {
			v = 0 // kept exactly by the histogram
		}
		return &v
	}
	str := func(s string) *string { return &s }
	r := &codecs.Result{
		EventID: id, URL: site,
		ScheduledAt: at.Truncate(time.Second), CheckedAt: at,
		Outcome: codecs.OutcomeUp, StatusCode: 200,
		ResponseTimeMS: ms(), ConnectMS: ms(), TTFBMS: ms(),
		BodyBytes: rng.Int64N(5000), Checker: "test-checker",
	}
	switch p := rng.IntN(100); {
	case p < 62:
	case p < 70:
		r.StatusCode = 301
	case p < 77:
		r.Outcome, r.StatusCode, r.ErrorKind = codecs.OutcomeDown, 404, str(codecs.ErrStatus)
	case p < 84:
		r.Outcome, r.StatusCode, r.ErrorKind = codecs.OutcomeDown, 503, str(codecs.ErrStatus)
	case p < 92:
		no := false
		r.Outcome, r.ErrorKind, r.Regexp, r.RegexpMatched = codecs.OutcomeDown, str(codecs.ErrRegexp), str("all good"), &no
	default:
		kind := codecs.ErrTimeout
		if p%2 == 0 {
			kind = codecs.ErrConnect
		}
		r.Outcome, r.StatusCode, r.ErrorKind = codecs.OutcomeDown, 0, str(kind)
		r.ResponseTimeMS, r.TTFBMS, r.BodyBytes = nil, nil, 0
	}
	if r.ErrorKind != nil {
		r.ErrorMessage = str("failed: " + *r.ErrorKind)
	}
	if r.Outcome == codecs.OutcomeUp && rng.IntN(4) == 0 {
		yes := true
		r.Regexp, r.RegexpMatched = str("all good"), &yes
	}
	return r
}

// connect opens a connection to the test database for the checks.
func connect(t *testing.T, databaseURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// resultsCheck compares check_results with the events produced: every
// event_id exactly once, nothing else. It returns "" when they agree.
func resultsCheck(ctx context.Context, db *pgx.Conn, want []*codecs.Result) (string, error) {
	rows, err := db.Query(ctx, `SELECT event_id, count(*) FROM check_results GROUP BY event_id`)
	if err != nil {
		return "", fmt.Errorf("read check_results: %w", err)
	}
	got := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return "", err
		}
		got[id] = n
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	var missing, doubled, unexpected []string
	wantIDs := map[string]bool{}
	for _, r := range want {
		wantIDs[r.EventID] = true
		switch got[r.EventID] {
		case 1:
		case 0:
			missing = append(missing, r.EventID)
		default:
			doubled = append(doubled, r.EventID)
		}
	}
	for id := range got {
		if !wantIDs[id] {
			unexpected = append(unexpected, id)
		}
	}
	if len(missing)+len(doubled)+len(unexpected) == 0 {
		return "", nil
	}
	return fmt.Sprintf("check_results: %d rows for %d events; missing %d %v, doubled %d %v, unexpected %d %v",
		len(got), len(want), len(missing), head(missing), len(doubled), head(doubled), len(unexpected), head(unexpected)), nil
}

func head(s []string) []string {
	slices.Sort(s)
	if len(s) > 5 {
		return append(s[:5:5], "…")
	}
	return s
}

// windowRow is one row of check_windows or check_windows_recomputed.
type windowRow struct {
	url                             string
	start, end                      time.Time
	checks, failures, responses, re int64
	min, avg, max, p50, p95, p99    *float64
	statusCounts                    map[string]int64
	revision                        int64
}

func (w windowRow) String() string {
	return fmt.Sprintf("%s@%s", w.url, w.start.UTC().Format("15:04"))
}

func readWindows(ctx context.Context, db *pgx.Conn, query string) (map[string]windowRow, error) {
	rows, err := db.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	out := map[string]windowRow{}
	for rows.Next() {
		var w windowRow
		var counts string
		if err := rows.Scan(&w.url, &w.start, &w.end, &w.checks, &w.failures, &w.responses, &w.re,
			&w.min, &w.avg, &w.max, &w.p50, &w.p95, &w.p99, &counts, &w.revision); err != nil {
			return nil, fmt.Errorf("scan window: %w", err)
		}
		if err := json.Unmarshal([]byte(counts), &w.statusCounts); err != nil {
			return nil, fmt.Errorf("status_counts %s: %w", counts, err)
		}
		out[w.url+"|"+w.start.UTC().Format(time.RFC3339Nano)] = w
	}
	return out, rows.Err()
}

const windowColumns = `url, window_start, window_end, checks, failures, responses, regexp_failures,
    response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
    status_counts::text`

// windowsCheck compares every row of check_windows with
// check_windows_recomputed, the SQL reference computed from check_results,
// and requires a row for every reference window that is closed (before
// flushFrom). excludeURLs are left out of both. It returns "" when they
// agree, else the first differences and the first window that differs.
func windowsCheck(ctx context.Context, db *pgx.Conn, flushFrom time.Time, excludeURLs ...string) (string, *windowRow, error) {
	got, err := readWindows(ctx, db, `SELECT `+windowColumns+`, revision FROM check_windows`)
	if err != nil {
		return "", nil, err
	}
	want, err := readWindows(ctx, db, `SELECT `+windowColumns+`, 0::bigint FROM check_windows_recomputed`)
	if err != nil {
		return "", nil, err
	}
	type diff struct {
		w    windowRow
		what string
	}
	var diffs []diff
	skip := func(w windowRow) bool { return slices.Contains(excludeURLs, w.url) }
	for k, g := range got {
		if skip(g) {
			continue
		}
		w, ok := want[k]
		if !ok {
			diffs = append(diffs, diff{g, "in check_windows, no such window in check_results"})
			continue
		}
		if d := diffWindow(g, w); d != "" {
			diffs = append(diffs, diff{g, fmt.Sprintf("revision %d: %s", g.revision, d)})
		}
	}
	closed := 0
	for k, w := range want {
		if skip(w) || w.start.Add(windowSize).After(flushFrom) {
			continue
		}
		closed++
		if _, ok := got[k]; !ok {
			diffs = append(diffs, diff{w, fmt.Sprintf("missing from check_windows (%d checks)", w.checks)})
		}
	}
	if closed == 0 {
		return "no closed window in check_windows_recomputed at all", nil, nil
	}
	if len(diffs) == 0 {
		return "", nil, nil
	}
	slices.SortFunc(diffs, func(a, b diff) int { return strings.Compare(a.w.String(), b.w.String()) })
	var lines []string
	for _, d := range diffs[:min(len(diffs), 8)] {
		lines = append(lines, d.w.String()+": "+d.what)
	}
	if len(diffs) > 8 {
		lines = append(lines, fmt.Sprintf("… %d windows differ in all", len(diffs)))
	}
	return strings.Join(lines, "\n"), &diffs[0].w, nil
}

// diffWindow compares a stored window with the SQL reference: counts and
// status_counts exactly, min and max exactly, the mean within 1e-9
// relative, and each percentile within the histogram's relative accuracy
// (1%) of percentile_cont, plus 1e-9 relative for floating-point rounding.
//
// That bound is exact for this histogram: each of the two order statistics
// percentile_cont interpolates is estimated within 1% of its exact value,
// and a convex combination of two non-negative values each within 1% is
// within 1% of the exact combination.
func diffWindow(g, w windowRow) string {
	var d []string
	ints := []struct {
		name     string
		got, ref int64
	}{{"checks", g.checks, w.checks}, {"failures", g.failures, w.failures}, {"responses", g.responses, w.responses}, {"regexp_failures", g.re, w.re}}
	for _, c := range ints {
		if c.got != c.ref {
			d = append(d, fmt.Sprintf("%s %d, want %d", c.name, c.got, c.ref))
		}
	}
	if !g.end.Equal(w.end) {
		d = append(d, fmt.Sprintf("window_end %v, want %v", g.end, w.end))
	}
	if !mapsEqual(g.statusCounts, w.statusCounts) {
		d = append(d, fmt.Sprintf("status_counts %v, want %v", g.statusCounts, w.statusCounts))
	}
	floats := []struct {
		name     string
		got, ref *float64
		tol      float64 // relative
	}{
		{"response_min_ms", g.min, w.min, 0},
		{"response_max_ms", g.max, w.max, 0},
		{"response_avg_ms", g.avg, w.avg, 1e-9},
		{"response_p50_ms", g.p50, w.p50, hist.RelativeAccuracy + 1e-9},
		{"response_p95_ms", g.p95, w.p95, hist.RelativeAccuracy + 1e-9},
		{"response_p99_ms", g.p99, w.p99, hist.RelativeAccuracy + 1e-9},
	}
	for _, f := range floats {
		switch {
		case f.got == nil && f.ref == nil:
		case f.got == nil || f.ref == nil:
			d = append(d, fmt.Sprintf("%s %v, want %v", f.name, deref(f.got), deref(f.ref)))
		case math.Abs(*f.got-*f.ref) > f.tol*math.Abs(*f.ref):
			d = append(d, fmt.Sprintf("%s %v, want %v (±%g relative)", f.name, *f.got, *f.ref, f.tol))
		}
	}
	return strings.Join(d, "; ")
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func deref(p *float64) any {
	if p == nil {
		return "NULL"
	}
	return *p
}

// checker compares the database with a stream and explains differences.
type checker struct {
	t    *testing.T
	e    *env
	db   *pgx.Conn
	s    *stream
	skip []string // URLs not compared (windows written by hand)
}

func (e *env) checker(t *testing.T, db *pgx.Conn, s *stream, excludeURLs ...string) *checker {
	return &checker{t: t, e: e, db: db, s: s, skip: excludeURLs}
}

// diff returns "" when check_results holds exactly the events and
// check_windows equals SQL's recomputation, else what differs.
func (c *checker) diff(ctx context.Context) (string, *windowRow) {
	c.t.Helper()
	rd, err := resultsCheck(ctx, c.db, c.s.events)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != "" {
		return rd, nil
	}
	wd, bad, err := windowsCheck(ctx, c.db, c.s.flushFrom, c.skip...)
	if err != nil {
		c.t.Fatal(err)
	}
	return wd, bad
}

// settle polls the database until it is consistent with the stream or
// the timeout passes, and then fails the test with the differences, the
// emission history of the first window that differs and the logs.
func (c *checker) settle(timeout time.Duration, logs fmt.Stringer) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	deadline := time.Now().Add(timeout)
	for {
		diff, bad := c.diff(ctx)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			c.fail(diff, bad, logs)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// assert is the end state every scenario must reach, checked once (the
// processor stopped): each event exactly once in check_results and every
// window equal to SQL's.
func (c *checker) assert(logs fmt.Stringer) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if diff, bad := c.diff(ctx); diff != "" {
		c.fail(diff, bad, logs)
	}
	var n int
	if err := c.db.QueryRow(ctx, `SELECT count(*) FROM check_windows`).Scan(&n); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("%d events stored once each; %d windows equal to SQL's; %d events arrived after their window had been emitted",
		len(c.s.events), n, c.s.lateCrossings)
	// Late events are what makes windows be emitted again; a stream
	// without them would leave that path untested.
	if c.s.lateCrossings < 10 {
		c.t.Errorf("the stream has only %d events arriving after their window closed", c.s.lateCrossings)
	}
}

func (c *checker) fail(diff string, bad *windowRow, logs fmt.Stringer) {
	c.t.Helper()
	history := ""
	if bad != nil {
		history = fmt.Sprintf("\nemissions of %s in %s: %s", bad, topics.Windows, emissions(c.t, c.e.addrs, bad.url, bad.start))
	}
	c.t.Fatalf("the database does not match the events produced:\n%s%s\nlogs (tail):\n%s", diff, history, tail(logs.String(), 30))
}

// emissions lists every emission of one window on status_windows.
func emissions(t *testing.T, addrs []string, url string, start time.Time) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(string(topics.Windows)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err.Error()
	}
	defer cl.Close()
	var out []string
	// Read until a poll comes back empty-handed for a second.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			if w, err := codecs.DecodeWindow(r.Value); err == nil && w.URL == url && w.WindowStart.Equal(start) {
				out = append(out, fmt.Sprintf("offset %d: revision %d, %d checks", r.Offset, w.Revision, w.Checks))
			}
		})
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// storedResults counts check_results, or returns -1 while it cannot (the
// processor has not migrated the database yet).
func storedResults(db *pgx.Conn) int {
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM check_results`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, logs fmt.Stringer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; logs (tail):\n%s", timeout, what, tail(logs.String(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// withHost returns databaseURL pointing at host:port instead.
func withHost(t *testing.T, databaseURL, hostport string) string {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = hostport
	return u.String()
}

// deadLetters reads sitewatch_dead_letters from the start until done says
// enough arrived or the timeout passes.
func deadLetters(t *testing.T, addrs []string, timeout time.Duration, done func([]*codecs.DeadLetter) bool) []*codecs.DeadLetter {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(string(topics.DeadLetters)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*codecs.DeadLetter
	for !done(out) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			d, err := codecs.DecodeDeadLetter(r.Value)
			if err != nil {
				t.Errorf("undecodable dead letter at offset %d: %v: %q", r.Offset, err, r.Value)
				return
			}
			out = append(out, d)
		})
	}
	return out
}
