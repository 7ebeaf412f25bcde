package urlchecker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
	"github.com/sitewatch/sitewatch/scheduler"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// saramaConfig is goka's default configuration, reading from the oldest
// offset as the contract requires of every group.
func saramaConfig() *sarama.Config {
	c := goka.DefaultConfig()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Producer.Flush.Frequency = 10 * time.Millisecond
	return c
}

func topicManagerConfig() *goka.TopicManagerConfig {
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication = 1
	tm.Stream.Replication = 1
	return tm
}

// cluster starts kfake with the four topics url_checker uses.
func cluster(t *testing.T) (*kfake.Cluster, []string) {
	t.Helper()
	c, addrs := testkit.Kafka(t)
	tm, err := goka.NewTopicManager(addrs, saramaConfig(), topicManagerConfig())
	if err != nil {
		t.Fatalf("topic manager: %v", err)
	}
	defer tm.Close()
	for _, topic := range []string{codecs.TopicRequests, codecs.TopicSucceeded, codecs.TopicFailed, codecs.TopicDeadLetters} {
		if err := tm.EnsureStreamExists(topic, 3); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	return c, addrs
}

// startProcessor runs a url_checker instance until the test ends.
func startProcessor(t *testing.T, addrs []string, instance string, reg prometheus.Registerer) *urlchecker.Processor {
	t.Helper()
	p, err := urlchecker.New(urlchecker.Config{
		Brokers:      addrs,
		Sarama:       saramaConfig(),
		TopicManager: topicManagerConfig(),
		InstanceID:   instance,
		Checker:      checker.New(checker.Options{}),
		Logger:       quiet(),
		Registerer:   reg,
	})
	if err != nil {
		t.Errorf("New: %v", err)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run %s: %v", instance, err)
		}
	})
	select {
	case <-p.Ready():
	case <-time.After(30 * time.Second):
		t.Errorf("%s not ready after 30s", instance)
	}
	return p
}

// startRequestEmitter runs a RequestEmitter; the returned stop func ends
// it and waits for its drain.
func startRequestEmitter(t *testing.T, addrs []string, reg prometheus.Registerer) (*urlchecker.RequestEmitter, func()) {
	t.Helper()
	re, err := urlchecker.NewRequestEmitter(urlchecker.RequestEmitterConfig{Brokers: addrs, Sarama: saramaConfig(), Logger: quiet(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- re.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("request emitter: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return re, stop
}

// record is one event read back from Kafka.
type record struct {
	topic, key string
	value      []byte
}

// reader collects every record of the given topics from the start.
type reader struct {
	mu  sync.Mutex
	got []record
}

func readTopics(t *testing.T, addrs []string, topics ...string) *reader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r := &reader{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(rec *kgo.Record) {
				r.mu.Lock()
				r.got = append(r.got, record{rec.Topic, string(rec.Key), rec.Value})
				r.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return r
}

func (r *reader) records(topic string) []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []record
	for _, rec := range r.got {
		if topic == "" || rec.topic == topic {
			out = append(out, rec)
		}
	}
	return out
}

// results decodes every result event read so far.
func (r *reader) results(t *testing.T) []*codecs.Result {
	t.Helper()
	var out []*codecs.Result
	for _, rec := range r.records("") {
		if rec.topic != codecs.TopicSucceeded && rec.topic != codecs.TopicFailed {
			continue
		}
		res, err := codecs.DecodeResult(rec.value)
		if err != nil {
			t.Fatalf("result on %s does not decode: %v\n%s", rec.topic, err, rec.value)
		}
		if rec.key != res.URL {
			t.Fatalf("result keyed %q, url %q", rec.key, res.URL)
		}
		if (rec.topic == codecs.TopicSucceeded) != res.Up() {
			t.Fatalf("%s result on %s", res.Outcome, rec.topic)
		}
		out = append(out, res)
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// held holds a test server's answer to r until release receives or is
// closed (true), or the client hangs up (false).
func held(r *http.Request, release <-chan struct{}) bool {
	select {
	case <-release:
		return true
	case <-r.Context().Done():
		return false
	}
}

// hits counts requests per path at a test server.
type hits struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *hits) add(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[path]++
}

func (h *hits) of(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[path]
}

func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return v
}

// TestTwoEmittersCheckEachSlotOnce runs two complete emitter instances
// (scheduler, request producer, url_checker in one consumer group) on the
// same 20 sites. Every slot is requested twice, yet every (site, slot) is
// checked exactly once, and every request is accounted for as checked,
// duplicate or stale.
func TestTwoEmittersCheckEachSlotOnce(t *testing.T) {
	kc, addrs := cluster(t)
	var h hits
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.add(r.URL.Path)
		switch r.URL.Path {
		case "/site/3", "/site/13":
			time.Sleep(300 * time.Millisecond)
		case "/site/7":
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "all good")
	}))
	defer srv.Close()
	results := readTopics(t, addrs, codecs.TopicSucceeded, codecs.TopicFailed)

	var sites []config.Site
	for i := range 20 {
		sites = append(sites, config.Site{URL: fmt.Sprintf("%s/site/%d", srv.URL, i), Method: "GET", Interval: 3 * time.Second, Timeout: 2 * time.Second})
	}

	begin := time.Now()
	regs := map[string]*prometheus.Registry{"instance-a": prometheus.NewRegistry(), "instance-b": prometheus.NewRegistry()}
	var starting sync.WaitGroup
	for id, reg := range regs {
		starting.Go(func() { startProcessor(t, addrs, id, reg) })
	}
	starting.Wait()
	if t.Failed() {
		t.FailNow()
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if _, err := kc.WaitGroupStable(wctx, string(urlchecker.DefaultGroup), 2); err != nil {
		t.Fatalf("group never stable with both instances: %v", err)
	}
	started := time.Now()

	// Both instances schedule every site; record what they requested.
	var (
		mu        sync.Mutex
		requested = map[string]int{} // url|slot -> requests
		total     int
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stops []func()
	for _, reg := range regs {
		re, stop := startRequestEmitter(t, addrs, reg)
		stops = append(stops, stop)
		s, err := scheduler.New(sites, scheduler.Options{Registerer: reg, Logger: quiet(), Emit: func(ctx context.Context, r *codecs.Request) error {
			mu.Lock()
			requested[r.URL+"|"+r.ScheduledAt.String()]++
			total++
			mu.Unlock()
			return re.Emit(ctx, r)
		}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx); err != nil {
				t.Errorf("scheduler: %v", err)
			}
		}()
	}
	time.Sleep(6 * time.Second)
	cancel()
	t.Logf("group stable after %v", started.Sub(begin))
	wg.Wait()
	for _, stop := range stops {
		stop() // flushes the buffered requests
	}

	sum := func(name string) float64 {
		var v float64
		for _, reg := range regs {
			v += gather(t, reg, name)
		}
		return v
	}
	mu.Lock()
	distinct, sent := len(requested), total
	mu.Unlock()
	if distinct < 20 {
		t.Fatalf("only %d slots requested in 5s", distinct)
	}
	// Every request ends as a result, a duplicate or a stale skip.
	waitFor(t, "every request accounted for", 60*time.Second, func() bool {
		return float64(len(results.results(t)))+sum("sitewatch_requests_duplicate_total")+sum("sitewatch_requests_stale_total") >= float64(sent)
	})
	got := results.results(t)
	t.Logf("%d requests for %d slots: %d checked, %v duplicates, %v stale", sent, distinct, len(got),
		sum("sitewatch_requests_duplicate_total"), sum("sitewatch_requests_stale_total"))
	if n := float64(len(got)) + sum("sitewatch_requests_duplicate_total") + sum("sitewatch_requests_stale_total"); n != float64(sent) {
		t.Errorf("results+duplicates+stale = %v, requests sent = %d", n, sent)
	}
	if sum("sitewatch_requests_duplicate_total") == 0 {
		t.Error("no duplicate detected although both instances requested every slot")
	}
	if sum("sitewatch_requests_emitted_total") != float64(sent) || sum("sitewatch_requests_dropped_total") != 0 {
		t.Errorf("request producer: %v emitted, %v dropped, of %d", sum("sitewatch_requests_emitted_total"), sum("sitewatch_requests_dropped_total"), sent)
	}

	perSlot := map[string]int{}
	perURL := map[string]int{}
	checkers := map[string]bool{}
	timeouts := map[string]int{}
	for _, r := range got {
		k := r.URL + "|" + r.ScheduledAt.String()
		perSlot[k]++
		perURL[r.URL]++
		checkers[r.Checker] = true
		if r.ErrorKind != nil && *r.ErrorKind == codecs.ErrTimeout {
			timeouts[r.URL]++
		}
		if requested[k] == 0 {
			t.Errorf("result for a slot nobody requested: %s", k)
		}
		if want := scheduler.RequestID(r.URL, r.ScheduledAt, codecs.DefaultRegion); r.EventID != want {
			t.Errorf("%s: event_id %q, want the request id %q", k, r.EventID, want)
		}
		if r.CheckedAt.Before(r.ScheduledAt) {
			t.Errorf("%s: checked at %v, before its slot", k, r.CheckedAt)
		}
		if r.ErrorKind != nil && *r.ErrorKind == codecs.ErrTimeout {
			// A loaded machine may not answer within the timeout; that is
			// a correct result, not a double check.
			t.Logf("%s: timed out: %s", k, deref(r.ErrorMessage))
			continue
		}
		wantUp := !strings.HasSuffix(r.URL, "/site/7")
		if r.Up() != wantUp || (wantUp && r.StatusCode != 200) || (!wantUp && (r.StatusCode != 500 || *r.ErrorKind != codecs.ErrStatus)) {
			t.Errorf("%s: outcome %s status %d kind %v: %v", k, r.Outcome, r.StatusCode, deref(r.ErrorKind), deref(r.ErrorMessage))
		}
		if r.ResponseTimeMS == nil {
			t.Errorf("%s: no response time", k)
		}
	}
	for k, n := range perSlot {
		if n != 1 {
			t.Errorf("%s checked %d times", k, n)
		}
	}
	for _, s := range sites {
		path := strings.TrimPrefix(s.URL, srv.URL)
		// One HTTP request per result; a check that timed out before the
		// server read its request has a result but no hit.
		if h.of(path) > perURL[s.URL] || h.of(path) < perURL[s.URL]-timeouts[s.URL] {
			t.Errorf("%s: %d HTTP requests for %d results (%d timeouts)", path, h.of(path), perURL[s.URL], timeouts[s.URL])
		}
	}
	if !checkers["instance-a"] || !checkers["instance-b"] {
		t.Errorf("checks ran on %v; both instances of the group should share them", checkers)
	}
}

// TestHangingSiteDoesNotDelayOthers holds one site's response until every
// other site's result has arrived: if the hanging check blocked the
// others, their results would never come (or the hanging check would time
// out first and be reported down).
func TestHangingSiteDoesNotDelayOthers(t *testing.T) {
	_, addrs := cluster(t)
	var h hits
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.add(r.URL.Path)
		if r.URL.Path == "/hang" && !held(r, release) {
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	defer close(release)
	results := readTopics(t, addrs, codecs.TopicSucceeded, codecs.TopicFailed, codecs.TopicDeadLetters)
	reg := prometheus.NewRegistry()
	startProcessor(t, addrs, "solo", reg)
	re, stop := startRequestEmitter(t, addrs, nil)

	now := time.Now().UTC()
	req := func(url string, timeout time.Duration) *codecs.Request {
		return &codecs.Request{RequestID: scheduler.RequestID(url, now, codecs.DefaultRegion), URL: url, ScheduledAt: now, NextAt: now.Add(2 * time.Minute), Method: "GET", TimeoutMS: timeout.Milliseconds()}
	}
	// The hanging site first: all sites share the 3 partitions, so a
	// blocked partition would hold most of the others back.
	if err := re.Emit(context.Background(), req(srv.URL+"/hang", time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hanging check to start", 30*time.Second, func() bool { return h.of("/hang") == 1 })
	for i := range 30 {
		if err := re.Emit(context.Background(), req(fmt.Sprintf("%s/fast/%d", srv.URL, i), 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// A malformed request on the way does not stop anything either.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: codecs.TopicRequests, Key: []byte("junk"), Value: []byte("{not json")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stop()

	waitFor(t, "30 fast results", 60*time.Second, func() bool { return len(results.results(t)) >= 30 })
	for _, r := range results.results(t) {
		if strings.HasSuffix(r.URL, "/hang") {
			t.Fatalf("the hanging site has a result before it was released: %+v", r)
		}
		if !r.Up() {
			t.Errorf("%s: %s %v", r.URL, r.Outcome, *r.ErrorMessage)
		}
	}
	if got := gather(t, reg, "sitewatch_checks_in_flight"); got != 1 {
		t.Errorf("in-flight checks = %v, want 1 (the hanging one)", got)
	}
	release <- struct{}{}
	waitFor(t, "the released site's result", 30*time.Second, func() bool { return len(results.results(t)) == 31 })
	for _, r := range results.results(t) {
		if strings.HasSuffix(r.URL, "/hang") && !r.Up() {
			t.Errorf("released site reported down: %v", *r.ErrorMessage)
		}
	}

	waitFor(t, "the dead letter", 30*time.Second, func() bool { return len(results.records(codecs.TopicDeadLetters)) == 1 })
	dl, err := codecs.DecodeDeadLetter(results.records(codecs.TopicDeadLetters)[0].value)
	if err != nil {
		t.Fatal(err)
	}
	if string(dl.Value) != "{not json" || string(dl.Key) != "junk" || dl.Topic != codecs.TopicRequests || !strings.Contains(dl.Reason, "invalid json") || dl.Consumer != "url_checker" {
		t.Errorf("dead letter: %+v", dl)
	}
}

// TestShutdownFinishesInFlightChecks stops the processor while a check is
// running: Run must wait for it and deliver its result before returning.
func TestShutdownFinishesInFlightChecks(t *testing.T) {
	_, addrs := cluster(t)
	var h hits
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.add(r.URL.Path)
		<-release
		fmt.Fprintln(w, "finally")
	}))
	defer srv.Close()
	results := readTopics(t, addrs, codecs.TopicSucceeded, codecs.TopicFailed)

	p, err := urlchecker.New(urlchecker.Config{
		Brokers: addrs, Sarama: saramaConfig(), TopicManager: topicManagerConfig(),
		InstanceID: "stopping", Checker: checker.New(checker.Options{}), Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-p.Ready()
	re, stop := startRequestEmitter(t, addrs, nil)
	now := time.Now().UTC()
	url := srv.URL + "/slow"
	if err := re.Emit(ctx, &codecs.Request{RequestID: "r1", URL: url, ScheduledAt: now, NextAt: now.Add(time.Minute), Method: "GET", TimeoutMS: 30000}); err != nil {
		t.Fatal(err)
	}
	stop()
	waitFor(t, "the check to start", 30*time.Second, func() bool { return h.of("/slow") == 1 })

	cancel() // SIGTERM
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a check was still running", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitFor(t, "the result of the check that was running at shutdown", 30*time.Second, func() bool { return len(results.results(t)) == 1 })
	if r := results.results(t)[0]; r.URL != url || !r.Up() || r.Checker != "stopping" {
		t.Errorf("result: %+v", r)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
