package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

// topics are the default topic names (no prefix).
var topics = (&kafkaconn.Options{}).Topics()

// partitions is the partition count of every topic: more than one, so that
// goka's partitioning matters, few enough to start fast.
const partitions = 4

// allTopics lists the stream topics to seed a cluster with.
func allTopics() []string {
	var out []string
	for _, s := range topics.All() {
		out = append(out, string(s))
	}
	return out
}

// child is one run of a real binary in its own process.
type child struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	logs *testkit.SyncBuffer
	done chan struct{}
	code int // exit status once done; -1 when killed by a signal
}

// childEnv is the test's environment without the variables the programs
// read as flag defaults, so that only what a test passes applies.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "KAFKA_") || strings.HasPrefix(name, "SITEWATCH_") || name == "DATABASE_URL" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// startChild starts bin with args (and extra environment variables) and
// serves its metrics on a free loopback port. The process is killed when
// the test ends; its output is checked for data races and shown when the
// test failed.
func startChild(t *testing.T, name, bin string, args []string, env ...string) *child {
	t.Helper()
	args = append([]string{"-metrics-addr", "127.0.0.1:0"}, args...)
	c := &child{t: t, name: name, cmd: exec.Command(bin, args...), logs: &testkit.SyncBuffer{}, done: make(chan struct{})}
	c.cmd.Env = append(childEnv(), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := c.cmd.Wait()
		c.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			c.code = ee.ExitCode()
		}
		close(c.done)
	}()
	t.Cleanup(func() {
		if dir := os.Getenv("SITEWATCH_FAULT_DUMP"); dir != "" && t.Failed() && !c.exited() {
			// SIGQUIT makes a Go program print every goroutine's stack
			// and exit: where a stuck process is stuck.
			_ = c.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
			}
			name := strings.NewReplacer("/", "_", "#", "_").Replace(t.Name() + "-" + c.name + ".log")
			_ = os.WriteFile(filepath.Join(dir, name), []byte(c.logs.String()), 0o644)
		}
		c.kill()
		if i := strings.Index(c.logs.String(), "WARNING: DATA RACE"); i >= 0 {
			t.Errorf("%s: data race:\n%s", c.name, clip(c.logs.String()[i:], 6000))
		}
		if t.Failed() {
			t.Logf("%s (pid %d) output, tail:\n%s", c.name, c.cmd.Process.Pid, tail(c.logs.String(), 50))
		}
	})
	return c
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill is kill -9: no flush, no offset commit, no leaving the groups.
func (c *child) kill() {
	if !c.exited() {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-c.done
}

// stop is SIGTERM, the clean shutdown, and returns the exit status.
func (c *child) stop(timeout time.Duration) int {
	c.t.Helper()
	if !c.exited() {
		// The program handles SIGTERM once it logged where it serves its
		// metrics; earlier, the signal's default action kills it.
		waitFor(c.t, 60*time.Second, c.name+" to install its signal handler", func() (bool, string) {
			return c.exited() || metricsAddrRE.MatchString(c.logs.String()), ""
		})
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.t.Errorf("%s did not stop within %v of SIGTERM; killing it", c.name, timeout)
		c.kill()
	}
	return c.code
}

// waitLog waits until the output contains sub, failing the test after
// timeout.
func (c *child) waitLog(sub string, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, fmt.Sprintf("%s to log %q", c.name, sub), func() (bool, string) {
		if c.exited() {
			return false, fmt.Sprintf("%s exited with status %d", c.name, c.code)
		}
		return strings.Contains(c.logs.String(), sub), ""
	})
}

var metricsAddrRE = regexp.MustCompile(`serving metrics"?,?\s*"?addr"?[=:]"?([0-9.]+:[0-9]+)`)

// metricsURL is the /metrics address the child logged.
func (c *child) metricsURL() string {
	c.t.Helper()
	var addr string
	waitFor(c.t, 60*time.Second, c.name+" to serve /metrics", func() (bool, string) {
		if m := metricsAddrRE.FindStringSubmatch(c.logs.String()); m != nil {
			addr = m[1]
			return true, ""
		}
		return false, ""
	})
	return "http://" + addr + "/metrics"
}

// scrape returns the child's /metrics page.
func (c *child) scrape() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.metricsURL(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metric is the sum of a metric's samples over all its label sets, or -1
// when the page cannot be read.
func (c *child) metric(name string) float64 {
	page, err := c.scrape()
	if err != nil {
		return -1
	}
	return metricValue(page, name)
}

func metricValue(page, name string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (len(rest) > 0 && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// vmHWM is the child's peak resident memory in bytes, from
// /proc/<pid>/status (it must still be running).
func (c *child) vmHWM() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// waitFor polls cond every 200ms until it holds, failing the test after
// timeout with what cond said last.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = clip(l, 600)
	}
	return strings.Join(lines, "\n")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// env is one test's Kafka and database.
type env struct {
	t       *testing.T
	cluster *kfake.Cluster
	addrs   []string
	db      string
}

// newEnv starts a kfake cluster seeded with the sitewatch topics and
// creates a fresh database.
func newEnv(t *testing.T, opts ...kfake.Opt) *env {
	t.Helper()
	opts = append([]kfake.Opt{kfake.SeedTopics(partitions, allTopics()...)}, opts...)
	c, addrs := testkit.Kafka(t, opts...)
	logGroupsOnFailure(t, c)
	return &env{t: t, cluster: c, addrs: addrs, db: testkit.Postgres(t)}
}

// logGroupsOnFailure shows the consumer groups' members and assignments
// when the test failed: who holds which partition when a rebalance hangs.
func logGroupsOnFailure(t *testing.T, c *kfake.Cluster) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, g := range []string{"windows", "sink_results", "sink_windows", "url_checker"} {
			gi := c.GroupInfo(g)
			if gi == nil {
				continue
			}
			var ms []string
			for _, m := range gi.Members {
				ms = append(ms, fmt.Sprintf("%s %s %v", m.MemberID, m.ClientHost, m.Assignment))
			}
			t.Logf("group %s: state %s, generation %d, members %v", g, gi.State, gi.Epoch, ms)
		}
	})
}

func (e *env) brokers() string { return testkit.JoinAddrs(e.addrs) }

// processorArgs are the processor's flags for this environment; databaseURL
// may differ from e.db (a proxy in front of it).
func (e *env) processorArgs(databaseURL string, extra ...string) []string {
	return append([]string{
		"-brokers", e.brokers(),
		"-database-url", databaseURL,
		"-topic-partitions", strconv.Itoa(partitions),
		"-flush-interval", "200ms",
		"-batch-size", "100",
	}, extra...)
}

func (e *env) emitterArgs(sites string, extra ...string) []string {
	return append([]string{
		"-sites", sites,
		"-brokers", e.brokers(),
		"-topic-partitions", strconv.Itoa(partitions),
	}, extra...)
}

// startProcessor runs the processor binary against this environment.
func (e *env) startProcessor(name, databaseURL string, extra ...string) *child {
	e.t.Helper()
	return startChild(e.t, name, bins.processor, e.processorArgs(databaseURL, extra...))
}

func (e *env) startEmitter(name, sites string, extra ...string) *child {
	e.t.Helper()
	return startChild(e.t, name, bins.emitter, e.emitterArgs(sites, extra...))
}

// connect opens a connection to the test database for the checks.
func (e *env) connect() *pgx.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.db)
	if err != nil {
		e.t.Fatalf("connect to test database: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// producer writes to the sitewatch topics the way the url_checker does:
// keyed by URL and partitioned by goka's hasher, so that the windows
// processor's table partitions match its input partitions.
type producer struct {
	t        *testing.T
	emitters map[goka.Stream]*goka.Emitter
	wg       sync.WaitGroup
	mu       sync.Mutex
	errs     []error
	once     sync.Once
}

func (e *env) producer() *producer {
	e.t.Helper()
	p := &producer{t: e.t, emitters: map[goka.Stream]*goka.Emitter{}}
	for _, s := range []goka.Stream{topics.Succeeded, topics.Failed, topics.Windows} {
		cfg := goka.DefaultConfig()
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		em, err := goka.NewEmitter(e.addrs, s, new(codec.Bytes), goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(cfg)))
		if err != nil {
			e.t.Fatalf("emitter %s: %v", s, err)
		}
		p.emitters[s] = em
	}
	e.t.Cleanup(func() { p.close() })
	return p
}

// raw sends one message as is; wait reports whether Kafka took it.
func (p *producer) raw(topic goka.Stream, key string, value []byte) {
	p.wg.Add(1)
	pr, err := p.emitters[topic].Emit(key, value)
	if err != nil {
		p.fail(fmt.Errorf("emit to %s: %w", topic, err))
		p.wg.Done()
		return
	}
	pr.Then(func(err error) {
		if err != nil {
			p.fail(fmt.Errorf("produce to %s: %w", topic, err))
		}
		p.wg.Done()
	})
}

func (p *producer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

// results sends results to the topic of their outcome, in order.
func (p *producer) results(rs ...*codecs.Result) {
	for _, r := range rs {
		b, err := codecs.ResultCodec{}.Encode(r)
		if err != nil {
			p.fail(fmt.Errorf("encode result: %w", err))
			continue
		}
		p.raw(resultTopic(r), r.URL, b)
	}
}

// wait blocks until Kafka acknowledged everything sent so far and fails the
// test if it refused anything.
func (p *producer) wait() {
	p.t.Helper()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) > 0 {
		p.t.Fatalf("produce: %v", errors.Join(p.errs...))
	}
}

func (p *producer) close() {
	p.once.Do(func() {
		for _, em := range p.emitters {
			_ = em.Finish()
		}
	})
}

func resultTopic(r *codecs.Result) goka.Stream {
	if r.Outcome == codecs.OutcomeDown {
		return topics.Failed
	}
	return topics.Succeeded
}

// kafkaRecord is one message read back from Kafka.
type kafkaRecord struct {
	topic     string
	partition int32
	offset    int64
	key       []byte
	value     []byte
}

// readAll reads the given topics from the start up to their current end
// offsets.
func (e *env) readAll(names ...string) []kafkaRecord {
	e.t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	sc, err := sarama.NewClient(e.addrs, cfg)
	if err != nil {
		e.t.Fatalf("read %v: %v", names, err)
	}
	defer sc.Close()
	ends := map[string]map[int32]int64{}
	want := 0
	for _, tp := range names {
		ends[tp] = map[int32]int64{}
		ps, err := sc.Partitions(tp)
		if err != nil {
			e.t.Fatalf("partitions of %s: %v", tp, err)
		}
		for _, p := range ps {
			off, err := sc.GetOffset(tp, p, sarama.OffsetNewest)
			if err != nil {
				e.t.Fatalf("end offset of %s/%d: %v", tp, p, err)
			}
			if off > 0 {
				ends[tp][p] = off
				want++
			}
		}
	}
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumeTopics(names...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafkaRecord
	reached := map[string]bool{}
	for len(reached) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			out = append(out, kafkaRecord{r.Topic, r.Partition, r.Offset, r.Key, r.Value})
			if r.Offset+1 >= ends[r.Topic][r.Partition] {
				reached[fmt.Sprintf("%s/%d", r.Topic, r.Partition)] = true
			}
		})
	}
	if len(reached) < want {
		e.t.Fatalf("read %v: reached the end of %d of %d partitions", names, len(reached), want)
	}
	return out
}

// resultMessages reads and decodes every message of both result topics, in
// topic and offset order, repeats included.
func (e *env) resultMessages() []*codecs.Result {
	e.t.Helper()
	var out []*codecs.Result
	for _, r := range e.readAll(string(topics.Succeeded), string(topics.Failed)) {
		res, err := codecs.DecodeResult(r.value)
		if err != nil {
			continue // poison a test put there itself
		}
		out = append(out, res)
	}
	return out
}

// producedResults reads both result topics and returns the distinct results
// by event_id (the first of each) and how many messages repeated an event
// already seen (a producer retry after a timeout, a re-checked slot).
func (e *env) producedResults() (map[string]*codecs.Result, int) {
	e.t.Helper()
	out := map[string]*codecs.Result{}
	repeats := 0
	for _, res := range e.resultMessages() {
		if out[res.EventID] != nil {
			repeats++
			continue
		}
		out[res.EventID] = res
	}
	return out, repeats
}

// deadLetters reads sitewatch_dead_letters.
func (e *env) deadLetters() []*codecs.DeadLetter {
	e.t.Helper()
	var out []*codecs.DeadLetter
	for _, r := range e.readAll(string(topics.DeadLetters)) {
		d, err := codecs.DecodeDeadLetter(r.value)
		if err != nil {
			e.t.Errorf("undecodable dead letter at %s/%d@%d: %v", r.topic, r.partition, r.offset, err)
			continue
		}
		out = append(out, d)
	}
	return out
}

// countRows counts check_results on a connection of its own (safe from any
// goroutine), or returns -1.
func (e *env) countRows() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.db)
	if err != nil {
		return -1
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM check_results`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// Consumer groups of the programs.
var (
	processorGroups = []string{"windows", "sink_results", "sink_windows"}
	emitterGroups   = []string{"url_checker"}
)

// waitGroups waits until every group is stable with n members and a
// generation newer than prev's (nil: any), and returns the generations.
// The kills of this suite wait for it because of a kfake bug: a member that
// dies while its JoinGroup or SyncGroup answer is pending never gets a
// session timer again (kfake stops it when the member joins and restarts it
// only once the answer was delivered), so it keeps its partitions forever,
// where Kafka would expire it after the session timeout.
func (e *env) waitGroups(prev map[string]int32, n int, groups ...string) map[string]int32 {
	e.t.Helper()
	gens := map[string]int32{}
	waitFor(e.t, 120*time.Second, fmt.Sprintf("groups %v to be stable with %d members", groups, n), func() (bool, string) {
		for _, g := range groups {
			gi := e.cluster.GroupInfo(g)
			if gi == nil || gi.State != "Stable" || len(gi.Members) != n || gi.Epoch <= prev[g] {
				if gi == nil {
					return false, "group " + g + " does not exist yet"
				}
				return false, fmt.Sprintf("group %s: %s, generation %d, %d members", g, gi.State, gi.Epoch, len(gi.Members))
			}
			gens[g] = gi.Epoch
		}
		return true, ""
	})
	return gens
}

// groupTopics are the topics each processor group consumes.
var groupTopics = map[string][]string{
	"windows":      {string(topics.Succeeded), string(topics.Failed)},
	"sink_results": {string(topics.Succeeded), string(topics.Failed)},
	"sink_windows": {string(topics.Windows)},
}

// waitCaughtUp waits until every processor group has committed offsets up
// to the end of its topics: whatever a crash left uncommitted has been
// read again and handled, so a check after this sees its effect.
func (e *env) waitCaughtUp(timeout time.Duration) {
	e.t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	sc, err := sarama.NewClient(e.addrs, cfg)
	if err != nil {
		e.t.Fatalf("kafka client: %v", err)
	}
	defer sc.Close()
	waitFor(e.t, timeout, "the processor groups to commit up to the end of their topics", func() (bool, string) {
		for _, g := range processorGroups {
			gi := e.cluster.GroupInfo(g)
			for _, tp := range groupTopics[g] {
				ps, err := sc.Partitions(tp)
				if err != nil {
					return false, err.Error()
				}
				for _, p := range ps {
					end, err := sc.GetOffset(tp, p, sarama.OffsetNewest)
					if err != nil {
						return false, err.Error()
					}
					var committed int64
					if gi != nil {
						committed = gi.Commits[tp][p].Offset
					}
					if end > 0 && committed < end {
						return false, fmt.Sprintf("group %s at %d of %d on %s/%d", g, committed, end, tp, p)
					}
				}
			}
		}
		return true, ""
	})
}

// settle waits until the database matches the events (see settle), then
// until the processor has caught up with every topic, and checks again:
// events a crash left uncommitted are re-read after the first match, and
// must not change it. It returns the time to the first match.
func (e *env) settle(db *pgx.Conn, want map[string]bool, closedBefore time.Time, skip func(string, time.Time) bool, timeout time.Duration) time.Duration {
	e.t.Helper()
	took := settle(e.t, db, want, closedBefore, skip, timeout)
	e.waitCaughtUp(timeout)
	settle(e.t, db, want, closedBefore, skip, 30*time.Second)
	return took
}
