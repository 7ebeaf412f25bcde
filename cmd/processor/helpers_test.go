package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
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
		os.Exit(run(context.Background(), strings.Split(args, childArgsSep), os.Stdout, os.Stderr))
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
	go func() { done <- run(ctx, args, logs, logs) }()
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
			r := testkit.RandomResult(rng, site, fmt.Sprintf("ev-%d-%02d-%04d", seed, u, i), at, "test-checker")
			if u%3 == 0 && i%2 == 1 {
				// A second region checks every third URL: its windows
				// are per region, each equal to SQL's for that region.
				r.Region = "eu"
			}
			if u%2 == 0 {
				// An emitter's id, its slot's: the windows keep such an
				// event by slot, any other by its id.
				r.EventID = codecs.SlotEventID(site, r.ScheduledAt, codecs.RegionOrDefault(r.Region))
			}
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
		r := testkit.RandomResult(rng, site, fmt.Sprintf("ev-%d-%02d-flush", seed, u), s.flushFrom.Add(time.Duration(u)*time.Second), "test-checker")
		s.events = append(s.events, r)
	}
	return s
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
// check_windows equals SQL's recomputation, else what differs and the
// first window that differs.
func (c *checker) diff(ctx context.Context) (string, *testkit.WindowRow) {
	c.t.Helper()
	stored, err := testkit.StoredEventCounts(ctx, c.db)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		// The processor is still migrating the fresh database (a loaded
		// machine takes seconds): nothing is stored yet.
		return "the processor has not created check_results yet", nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	if d := testkit.ExactlyOnce(stored, testkit.EventIDs(c.s.events)); d != "" {
		return d, nil
	}
	cmp, err := testkit.CompareWindows(ctx, c.db, c.s.flushFrom, func(url string, _ time.Time) bool {
		return slices.Contains(c.skip, url)
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if cmp.Closed == 0 {
		return "no closed window in check_windows_recomputed at all", nil
	}
	if len(cmp.Diffs) == 0 {
		return "", nil
	}
	return cmp.String(), &cmp.Diffs[0].Window
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

func (c *checker) fail(diff string, bad *testkit.WindowRow, logs fmt.Stringer) {
	c.t.Helper()
	history := ""
	if bad != nil {
		history = fmt.Sprintf("\nemissions of %s in %s: %s", bad, topics.Windows, emissions(c.t, c.e.addrs, bad.URL, bad.Region, bad.Start))
	}
	c.t.Fatalf("the database does not match the events produced:\n%s%s\nlogs (tail):\n%s", diff, history, tail(logs.String(), 30))
}

// emissions lists every emission of one window on status_windows.
func emissions(t *testing.T, addrs []string, url, region string, start time.Time) string {
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
			if w, err := codecs.DecodeWindow(r.Value); err == nil && w.URL == url && w.Region == region && w.WindowStart.Equal(start) {
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
	return readTopic(t, addrs, topics.DeadLetters, timeout, codecs.DecodeDeadLetter, done)
}

// readTopic reads topic from its start, decoding every record, until done
// says so or the timeout passes.
func readTopic[T any](t *testing.T, addrs []string, topic goka.Stream, timeout time.Duration, decode func([]byte) (*T, error), done func([]*T) bool) []*T {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(string(topic)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*T
	for !done(out) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			v, err := decode(r.Value)
			if err != nil {
				t.Errorf("undecodable record on %s at offset %d: %v: %q", topic, r.Offset, err, r.Value)
				return
			}
			out = append(out, v)
		})
	}
	return out
}
