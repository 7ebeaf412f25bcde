package windows

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// kafkaEnv is an in-process Kafka (kfake) with the sitewatch topics, and
// the sarama and topic-manager configuration to reach it.
type kafkaEnv struct {
	cluster *kfake.Cluster
	brokers []string
	tmc     *goka.TopicManagerConfig
}

func (k *kafkaEnv) sarama() *sarama.Config {
	c := goka.DefaultConfig()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

func (k *kafkaEnv) topicManager() goka.TopicManagerBuilder {
	return goka.TopicManagerBuilderWithConfig(k.sarama(), k.tmc)
}

func newKafkaEnv(t *testing.T) *kafkaEnv {
	t.Helper()
	cluster, brokers := testkit.Kafka(t)
	k := &kafkaEnv{cluster: cluster, brokers: brokers, tmc: goka.NewTopicManagerConfig()}
	k.tmc.Table.Replication = 1
	k.tmc.Stream.Replication = 1
	tm, err := goka.NewTopicManager(brokers, k.sarama(), k.tmc)
	if err != nil {
		t.Fatalf("topic manager: %v", err)
	}
	defer tm.Close()
	for _, topic := range []goka.Stream{testTopics.Succeeded, testTopics.Failed, testTopics.Windows, testTopics.DeadLetters} {
		if err := tm.EnsureStreamExists(string(topic), 3); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	return k
}

// produce writes results to their topics the way the url_checker does:
// keyed by URL and partitioned by goka's hasher.
func (k *kafkaEnv) produce(t *testing.T, rs []*codecs.Result) {
	t.Helper()
	emitters := map[goka.Stream]*goka.Emitter{}
	for _, topic := range []goka.Stream{testTopics.Succeeded, testTopics.Failed} {
		e, err := goka.NewEmitter(k.brokers, topic, new(codec.Bytes),
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(k.sarama())),
			goka.WithEmitterTopicManagerBuilder(k.topicManager()),
			goka.WithEmitterLogger(kafkarun.Logger(testLogger(t, slog.LevelWarn), "goka")))
		if err != nil {
			t.Fatalf("emitter %s: %v", topic, err)
		}
		emitters[topic] = e
	}
	var mu sync.Mutex
	var errs []error
	for _, r := range rs {
		topic := testTopics.Succeeded
		if r.Outcome == codecs.OutcomeDown {
			topic = testTopics.Failed
		}
		p, err := emitters[topic].Emit(r.URL, encode(t, r))
		if err != nil {
			t.Fatalf("emit: %v", err)
		}
		p.Then(func(err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	for topic, e := range emitters {
		if err := e.Finish(); err != nil {
			t.Fatalf("flush %s: %v", topic, err)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("produce: %v", errs)
	}
}

// windowLog consumes status_windows and keeps the highest revision of
// every window, and checks that two emissions of the same revision carry
// the same aggregate.
type windowLog struct {
	mu     sync.Mutex
	latest map[windowKey]*codecs.Window
	errs   []string
}

func (k *kafkaEnv) consumeWindows(t *testing.T) *windowLog {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ConsumeTopics(string(testTopics.Windows)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("window consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	wl := &windowLog{latest: map[windowKey]*codecs.Window{}}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(rec *kgo.Record) {
				w, err := codecs.DecodeWindow(rec.Value)
				wl.mu.Lock()
				defer wl.mu.Unlock()
				if err != nil {
					wl.errs = append(wl.errs, fmt.Sprintf("undecodable window: %v", err))
					return
				}
				key := windowKey{w.URL, w.WindowStart, w.Region}
				prev := wl.latest[key]
				switch {
				case prev == nil || w.Revision > prev.Revision:
					wl.latest[key] = w
				case w.Revision == prev.Revision:
					if d := diffWindow(w, prev); d != "" {
						wl.errs = append(wl.errs, fmt.Sprintf("revision %d of %s %v emitted twice with different content: %s", w.Revision, w.URL, w.WindowStart, d))
					}
				}
			})
		}
	}()
	return wl
}

// diff compares the latest windows with want and describes the first few
// differences.
func (wl *windowLog) diff(want map[windowKey]*codecs.Window) string {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	var d []string
	if len(wl.errs) > 0 {
		d = append(d, wl.errs...)
	}
	for k, w := range want {
		got := wl.latest[k]
		if got == nil {
			d = append(d, fmt.Sprintf("%s %v: missing", k.url, k.start.Format("15:04")))
			continue
		}
		if s := diffWindow(got, w); s != "" {
			d = append(d, fmt.Sprintf("%s %v rev %d: %s", k.url, k.start.Format("15:04"), got.Revision, s))
		}
	}
	for k := range wl.latest {
		if want[k] == nil {
			d = append(d, fmt.Sprintf("%s %v: unexpected window", k.url, k.start.Format("15:04")))
		}
	}
	if len(d) > 5 {
		d = append(d[:5], fmt.Sprintf("... and %d more", len(d)-5))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func (wl *windowLog) revisions() (total int, max int64) {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	for _, w := range wl.latest {
		total++
		if w.Revision > max {
			max = w.Revision
		}
	}
	return total, max
}

// eventually polls cond until it reports true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %v: %s", what, timeout, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func gatherCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// generateResults makes 30 minutes of checks for five URLs, one about
// every 30 s each, in checked_at order with some events displaced by up
// to 20 s (late, within the grace period), and a mix of outcomes.
func generateResults() []*codecs.Result {
	rnd := rand.New(rand.NewPCG(11, 12))
	var rs []*codecs.Result
	for u := range 5 {
		url := fmt.Sprintf("https://site%d.example/", u)
		for i := range 60 {
			checkedAt := at(12, 0, 0).Add(time.Duration(i)*30*time.Second + time.Duration(rnd.IntN(25e9)))
			id := fmt.Sprintf("%d-%d", u, i)
			var r *codecs.Result
			switch x := rnd.IntN(20); {
			case x == 0:
				r = result(url, id, checkedAt, failed(codecs.ErrConnect, 0, nil))
			case x == 1:
				r = result(url, id, checkedAt, failed(codecs.ErrRegexp, 200, ptr(30+100*rnd.Float64())))
			case x == 2 || (u == 3 && i >= 20 && i < 34): // site 3 is down for a while
				r = result(url, id, checkedAt, failed(codecs.ErrStatus, 503, ptr(5+10*rnd.Float64())))
			default:
				r = result(url, id, checkedAt, responseMS(20+200*rnd.ExpFloat64()))
				if x == 3 {
					r.StatusCode = 301
				}
			}
			rs = append(rs, r)
		}
	}
	// Order by time, then displace some events by up to 20 s.
	slices.SortStableFunc(rs, func(a, b *codecs.Result) int { return a.CheckedAt.Compare(b.CheckedAt) })
	for i := range rs {
		if j := i + 1 + rnd.IntN(3); rnd.IntN(5) == 0 && j < len(rs) && rs[j].CheckedAt.Sub(rs[i].CheckedAt) < 20*time.Second {
			rs[i], rs[j] = rs[j], rs[i]
		}
	}
	return rs
}

func TestIntegrationKfakeWindowsEqualRawAggregatesAndSurviveRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test with in-process Kafka")
	}
	k := newKafkaEnv(t)
	rs := generateResults()
	k.produce(t, rs) // before the processor first starts: none may be lost
	windows := k.consumeWindows(t)
	clock := newFakeClock(at(12, 31, 0))

	start := func(reg *prometheus.Registry) (stop func()) {
		p, err := New(Config{
			Brokers:      k.brokers,
			Sarama:       k.sarama(),
			Topics:       testTopics,
			Now:          clock.Now,
			Registerer:   reg,
			Logger:       testLogger(t, slog.LevelWarn),
			IdleCheck:    100 * time.Millisecond,
			TopicManager: k.topicManager(),
		})
		if err != nil {
			t.Fatalf("new: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}

	// First run: every result consumed, then the clock moves on so that
	// the last window of every URL is closed by the idle close.
	reg := prometheus.NewRegistry()
	hitsBefore := cacheCheck.Hits.Load()
	stop := start(reg)
	eventually(t, 45*time.Second, "all results consumed", func() (bool, string) {
		n := gatherCounter(t, reg, "sitewatch_windows_events_consumed_total")
		return n == float64(len(rs)), fmt.Sprintf("%v of %d", n, len(rs))
	})
	// Each URL's next event finds its state in memory rather than
	// decoding it: held, not yet written, while the backlog drains, or
	// stored by the URL's last event (kafkarun.CachedCodec); all but each
	// URL's first, give or take the idle passes, which read without
	// storing.
	held := gatherCounter(t, reg, "sitewatch_windows_events_held_total")
	if hits := cacheCheck.Hits.Load() - hitsBefore + int64(held); hits < int64(len(rs))/2 {
		t.Errorf("%d of %d events found their URL's state in memory (%v of them held); the state cache is not used", hits, len(rs), held)
	}
	// The results were all there before the processor started: a backlog,
	// whose states are written behind.
	if writes := gatherCounter(t, reg, "sitewatch_windows_state_writes_total"); writes >= float64(len(rs))/2 || held == 0 {
		t.Errorf("%v state writes for a backlog of %d events (%v applied to held states); want them written behind", writes, len(rs), held)
	}
	clock.Set(at(12, 40, 0))
	want := expectedWindows(rs, DefaultWindowSize)
	eventually(t, 20*time.Second, "windows equal raw aggregates", func() (bool, string) {
		d := windows.diff(want)
		return d == "", d
	})
	if n := gatherCounter(t, reg, "sitewatch_windows_too_late_events_total"); n != 0 {
		t.Fatalf("%v events too late", n)
	}
	total, maxRev := windows.revisions()
	t.Logf("first run: %d results, %d windows, highest revision %d, %v emissions",
		len(rs), total, maxRev, gatherCounter(t, reg, "sitewatch_windows_emitted_total"))
	stop()

	// Second run on new memory storage: the state comes back from the
	// table topic. Re-sent events (a crash before the offsets were
	// committed, a producer retry) change nothing; a new event in the last
	// window updates it on top of the recovered state.
	clock.Set(at(12, 41, 0))
	var again []*codecs.Result
	for i := 0; i < len(rs); i += 15 {
		again = append(again, rs[i])
	}
	again = append(again, rs[len(rs)-10:]...)
	fresh := result("https://site0.example/", "0-new", at(12, 29, 59), failed(codecs.ErrTimeout, 0, nil))
	reg2 := prometheus.NewRegistry()
	start(reg2)
	k.produce(t, append(again, fresh))
	eventually(t, 45*time.Second, "re-sent results consumed", func() (bool, string) {
		n := gatherCounter(t, reg2, "sitewatch_windows_duplicate_events_total") +
			gatherCounter(t, reg2, "sitewatch_windows_too_late_events_total")
		// At least: a few of the first run's last events may be delivered
		// again too, if their offsets were not committed before it stopped.
		return n >= float64(len(again)), fmt.Sprintf("%v of %d recognised", n, len(again))
	})
	if d := windows.diff(want); d != "" {
		t.Fatalf("re-sent events changed the windows: %s", d)
	}
	clock.Set(at(12, 45, 0))
	want = expectedWindows(append(rs, fresh), DefaultWindowSize)
	eventually(t, 20*time.Second, "windows include the new event", func() (bool, string) {
		d := windows.diff(want)
		return d == "", d
	})
}
