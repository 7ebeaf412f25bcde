package faults

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sitewatch/sitewatch/internal/testkit"
)

// pipeline is the real emitter checking live websites and the real
// processor storing what it emits.
type pipeline struct {
	t    *testing.T
	e    *env
	db   *pgx.Conn
	st   *sites
	em   *child
	proc *child
}

// startPipeline starts n websites, the emitter and the processor, and
// waits until results are being stored.
func (e *env) startPipeline(n int, emitterArgs, processorArgs []string) *pipeline {
	e.t.Helper()
	pl := &pipeline{t: e.t, e: e, db: e.connect(), st: newSites(e.t, n, "")}
	pl.em = e.startEmitter("emitter", pl.st.path, emitterArgs...)
	pl.proc = e.startProcessor("processor", e.db, processorArgs...)
	waitFor(e.t, 90*time.Second, "the pipeline to store results", func() (bool, string) {
		n := testkit.StoredRows(pl.db)
		return n >= 2*len(pl.st.urls), fmt.Sprintf("%d rows", n)
	})
	return pl
}

// finish stops the emitter cleanly, closes the live windows and waits until
// every result in Kafka is stored exactly once and the closed windows equal
// SQL's. It returns the distinct results, how many messages repeated one,
// and the stored counts.
func (pl *pipeline) finish(timeout time.Duration) (map[string]bool, int, map[string]int) {
	pl.t.Helper()
	if code := pl.em.stop(90 * time.Second); code != 0 {
		pl.t.Errorf("emitter exit status %d after SIGTERM, want 0", code)
	}
	p := pl.e.producer()
	_, closedBefore := closeLiveWindows(p, pl.st.urls)
	p.wait()
	produced, repeats := pl.e.producedResults()
	want := map[string]bool{}
	for id := range produced {
		want[id] = true
	}
	pl.e.settle(pl.db, want, closedBefore, nil, timeout)
	stored, err := testkit.StoredEventCounts(context.Background(), pl.db)
	if err != nil {
		pl.t.Fatal(err)
	}
	if code := pl.proc.stop(60 * time.Second); code != 0 {
		pl.t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
	return want, repeats, stored
}

// onTopics is one fault per topic, each matching requests of key until
// removed.
func onTopics(key kmsg.Key, err *kerr.Error, names ...string) []kfake.Fault {
	var out []kfake.Fault
	for _, n := range names {
		out = append(out, kfake.Fault{Keys: []kmsg.Key{key}, Topic: n, Err: err, Count: -1})
	}
	return out
}

var resultTopics = []string{string(topics.Succeeded), string(topics.Failed)}

// TestKafkaProduceErrorsAndTimeouts fails the emitter's result produce
// requests and the processor's window produce requests for a while: with
// errors sarama retries itself (NOT_LEADER_FOR_PARTITION), errors it hands
// back (UNKNOWN_SERVER_ERROR, retried by the emitter's outbox and by the
// restarted windows processor), and REQUEST_TIMED_OUT after the broker
// stored the batch, whose retry writes it a second time. Nothing may be
// dropped, and the duplicates the timeouts cause must not be stored or
// counted twice.
func TestKafkaProduceErrorsAndTimeouts(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	pl := e.startPipeline(12, nil, nil)
	phases := []struct {
		name string
		err  *kerr.Error
	}{
		{"timeout after append", kerr.RequestTimedOut},
		{"not leader", kerr.NotLeaderForPartition},
		{"unknown server error", kerr.UnknownServerError},
	}
	hits := 0
	var recoveries []time.Duration
	for _, ph := range phases {
		h := e.cluster.Fault(onTopics(kmsg.Produce, ph.err, append(resultTopics, string(topics.Windows))...)...)
		time.Sleep(3 * time.Second)
		h.Remove()
		removed := time.Now()
		hits += h.Hits()
		t.Logf("%s: %d produce requests failed", ph.name, h.Hits())
		if h.Hits() == 0 {
			t.Errorf("%s: no produce request was faulted", ph.name)
		}
		// Recovered once the emitter's buffer is empty again.
		waitFor(t, 60*time.Second, "the emitter's results buffer to drain", func() (bool, string) {
			v := pl.em.metric("sitewatch_results_pending")
			return v >= 0 && v <= float64(len(pl.st.urls)), fmt.Sprintf("%v pending", v)
		})
		recoveries = append(recoveries, time.Since(removed))
	}
	dropped := pl.em.metric("sitewatch_results_dropped_total")
	emitErrs := pl.em.metric("sitewatch_results_emit_errors_total")
	restarts := pl.proc.metric("sitewatch_windows_restarts_total")
	want, repeats, stored := pl.finish(120 * time.Second)
	if dropped != 0 {
		t.Errorf("sitewatch_results_dropped_total = %v; the buffer was never full, nothing may be dropped", dropped)
	}
	if emitErrs == 0 {
		t.Errorf("sitewatch_results_emit_errors_total = 0 after produce errors")
	}
	record(t, figure{fault: "produce errors + timeouts (results, windows)", injected: hits, produced: len(want), stored: len(stored),
		dupes: duplicates(stored), recovery: maxDuration(recoveries),
		note: fmt.Sprintf("%d results written twice to Kafka; emit errors %v; dropped %v; windows restarts %v", repeats, emitErrs, dropped, restarts)})
}

// TestKafkaFetchErrors fails every fetch of the topics the processor reads
// for five seconds while results keep arriving.
func TestKafkaFetchErrors(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "fe", 8, 50)
	p := e.producer()
	half := len(s.events) / 2
	p.results(s.events[:half]...)
	p.wait()
	proc := e.startProcessor("processor", e.db)
	waitFor(t, 90*time.Second, "rows stored", func() (bool, string) {
		return testkit.StoredRows(db) > 0, ""
	})
	h := e.cluster.Fault(append(onTopics(kmsg.Fetch, kerr.UnknownServerError, append(resultTopics, string(topics.Windows))...),
		onTopics(kmsg.Fetch, kerr.NotLeaderForPartition, resultTopics...)...)...)
	wait := feed(t, p, s.events[half:], 20, 200*time.Millisecond)
	time.Sleep(5 * time.Second)
	h.Remove()
	removed := time.Now()
	wait()
	e.settle(db, s.ids(), s.closedBefore, nil, 120*time.Second)
	if h.Hits() == 0 {
		t.Errorf("no fetch was faulted")
	}
	stored, _ := testkit.StoredEventCounts(context.Background(), db)
	record(t, figure{fault: "fetch errors (5 s)", injected: h.Hits(), produced: len(s.events), stored: len(stored),
		dupes: duplicates(stored), recovery: time.Since(removed),
		note: fmt.Sprintf("windows restarts %v", proc.metric("sitewatch_windows_restarts_total"))})
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}

// TestKafkaCoordinatorChanges moves every group coordinator between three
// brokers several times, and answers NOT_COORDINATOR to the groups'
// requests for a while, as a broker that lost leadership of the
// __consumer_offsets partition does.
func TestKafkaCoordinatorChanges(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t, kfake.NumBrokers(3))
	db := e.connect()
	s := genStream(r, "co", 8, 50)
	p := e.producer()
	wait := feed(t, p, s.events, 10, 150*time.Millisecond)
	proc := e.startProcessor("processor", e.db)
	waitFor(t, 90*time.Second, "rows stored", func() (bool, string) { return testkit.StoredRows(db) > 0, "" })
	injected := 0
	for i := range 4 {
		e.cluster.RehashCoordinators()
		injected++
		var fs []kfake.Fault
		for _, g := range []string{"windows", "sink_results", "sink_windows"} {
			fs = append(fs, kfake.Fault{Group: g, Err: kerr.NotCoordinator, Count: 3})
		}
		h := e.cluster.Fault(fs...)
		time.Sleep(time.Duration(500+r.IntN(1500)) * time.Millisecond)
		injected += h.Hits()
		h.Remove()
		t.Logf("coordinator move %d: %d requests answered NOT_COORDINATOR", i+1, h.Hits())
	}
	removed := time.Now()
	wait()
	e.settle(db, s.ids(), s.closedBefore, nil, 120*time.Second)
	stored, _ := testkit.StoredEventCounts(context.Background(), db)
	record(t, figure{fault: "coordinator changes (3 brokers)", injected: injected, produced: len(s.events), stored: len(stored),
		dupes: duplicates(stored), recovery: time.Since(removed),
		note: fmt.Sprintf("4 rehashes + NOT_COORDINATOR answers; windows restarts %v", proc.metric("sitewatch_windows_restarts_total"))})
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}

// TestKafkaBrokerRestartWithPersistedData stops the (single) broker while
// the emitter and the processor run, and starts a new one on the same port
// from the same data directory ten seconds later: the emitter buffers what
// it checks meanwhile, and everything reaches the database exactly once.
func TestKafkaBrokerRestartWithPersistedData(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	start := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir),
			kfake.SeedTopics(partitions, allTopics()...))
		if err != nil {
			t.Fatalf("start kfake on port %d: %v", port, err)
		}
		return c
	}
	c := start()
	current := c
	t.Cleanup(func() { current.Close() })
	e := &env{t: t, cluster: c, addrs: c.ListenAddrs(), db: testkit.Postgres(t)}
	pl := e.startPipeline(10, nil, nil)
	rowsBefore := testkit.StoredRows(pl.db)
	c.Close()
	down := time.Now()
	time.Sleep(10 * time.Second)
	current = start()
	e.cluster = current
	up := time.Now()
	t.Logf("broker down for %v with %d rows stored", up.Sub(down).Round(time.Millisecond), rowsBefore)
	// While the broker is away no check runs: requests reach the checkers
	// through Kafka, and those buffered meanwhile are stale (their slot
	// has passed) once they arrive, so they are counted and skipped.
	// Recovered once results of checks after the restart are stored.
	waitFor(t, 120*time.Second, "results of checks after the restart to be stored", func() (bool, string) {
		var n int
		err := pl.db.QueryRow(context.Background(), `SELECT count(DISTINCT url) FROM check_results WHERE checked_at > $1`, up).Scan(&n)
		return err == nil && n == len(pl.st.urls), fmt.Sprintf("%d of %d sites, err %v", n, len(pl.st.urls), err)
	})
	recovery := time.Since(up)
	time.Sleep(2 * time.Second)
	dropped := pl.em.metric("sitewatch_results_dropped_total") + pl.em.metric("sitewatch_requests_dropped_total")
	stale := pl.em.metric("sitewatch_requests_stale_total")
	want, repeats, stored := pl.finish(120 * time.Second)
	if dropped != 0 {
		t.Errorf("%v events dropped over a 10 s broker outage; the buffers hold far more", dropped)
	}
	record(t, figure{fault: "broker restart, persisted data (10 s down)", injected: 1, produced: len(want), stored: len(stored),
		dupes: duplicates(stored), recovery: recovery,
		note: fmt.Sprintf("%d repeated in Kafka; dropped %v; %v stale requests skipped (no check while Kafka is down)", repeats, dropped, stale)})
}

// TestGroupRebalanceWhileBatchInFlight makes the sinks hold a batch for up
// to three seconds and starts a second processor while the first has
// consumed events it has not written yet: the rebalance moves partitions
// whose batch is in flight. Then the second processor is killed, moving
// them back. Nothing is lost or doubled.
func TestGroupRebalanceWhileBatchInFlight(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "rb", 8, 50)
	p := e.producer()
	slow := []string{"-flush-interval", "3s", "-batch-size", "1000"}
	first := e.startProcessor("processor#1", e.db, slow...)
	first.waitLog(started, 90*time.Second)
	wait := feed(t, p, s.events, 10, 100*time.Millisecond)
	inFlight := func(c *child) (bool, string) {
		page, err := c.scrape()
		if err != nil {
			return false, err.Error()
		}
		consumed := metricValue(page, "sitewatch_sink_events_consumed_total")
		written := metricValue(page, "sitewatch_sink_rows_written_total") + metricValue(page, "sitewatch_sink_dead_letters_total")
		return consumed > written, fmt.Sprintf("consumed %v, written %v", consumed, written)
	}
	waitFor(t, 60*time.Second, "a batch in flight in processor#1", func() (bool, string) { return inFlight(first) })
	rebalanceAt := time.Now()
	second := e.startProcessor("processor#2", e.db, slow...)
	second.waitLog("partitions assigned", 90*time.Second)
	waitFor(t, 60*time.Second, "a batch in flight in processor#2", func() (bool, string) { return inFlight(second) })
	e.waitGroups(nil, 2, processorGroups...)
	second.kill()
	wait()
	took := e.settle(db, s.ids(), s.closedBefore, nil, 120*time.Second)
	stored, _ := testkit.StoredEventCounts(context.Background(), db)
	record(t, figure{fault: "group rebalance with a batch in flight", injected: 2, produced: len(s.events), stored: len(stored),
		dupes: duplicates(stored), recovery: took,
		note: fmt.Sprintf("join, then kill -9 of the second member; %v from the first rebalance to consistent", time.Since(rebalanceAt).Round(time.Second))})
	if code := first.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}

// TestEmitterBufferBoundedAndDropsCounted fails every produce of the
// emitter (requests and results) for eight seconds while it schedules 40
// sites every second with -buffer 50: it must keep within its buffer, drop
// the oldest events when it is full, count and log every drop, and resume
// as soon as Kafka answers again.
func TestEmitterBufferBoundedAndDropsCounted(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	st := &sites{path: filepath.Join(t.TempDir(), "sites.yaml")}
	for i := range 40 {
		st.urls = append(st.urls, srv.URL+"/site/"+strconv.Itoa(i))
	}
	st.write(t, st.urls, "")
	em := e.startEmitter("emitter", st.path, "-buffer", "50")
	waitFor(t, 60*time.Second, "checks", func() (bool, string) { return hits.Load() > 80, "" })

	h := e.cluster.Fault(onTopics(kmsg.Produce, kerr.UnknownServerError, append(resultTopics, string(topics.Requests))...)...)
	time.Sleep(8 * time.Second)
	pendingAtPeak := em.metric("sitewatch_requests_pending") + em.metric("sitewatch_results_pending")
	hwm := em.vmHWM()
	h.Remove()
	removed := time.Now()
	hitsAtRemoval := hits.Load()
	waitFor(t, 60*time.Second, "checks to resume", func() (bool, string) {
		return hits.Load() > hitsAtRemoval+int64(len(st.urls)), ""
	})
	recovery := time.Since(removed)
	// Every request scheduled was sent, dropped, or is still pending; every
	// check's result likewise: nothing vanished without a count. The
	// counters are read in one scrape while checks go on, so one scrape may
	// catch an event between two of them: poll for a consistent one.
	var m func(string) float64
	var balance string
	waitFor(t, 20*time.Second, "the emitter's counters to balance", func() (bool, string) {
		page, err := em.scrape()
		if err != nil {
			return false, err.Error()
		}
		m = func(name string) float64 { return metricValue(page, name) }
		requested, reqEmitted, reqDropped, reqPending := m("sitewatch_schedule_requests_total"), m("sitewatch_requests_emitted_total"),
			m("sitewatch_requests_dropped_total"), m("sitewatch_requests_pending")
		checks, resEmitted, resDropped, resPending := m("sitewatch_checks_total"), m("sitewatch_results_emitted_total"),
			m("sitewatch_results_dropped_total"), m("sitewatch_results_pending")
		balance = fmt.Sprintf("requests: %v scheduled vs %v emitted + %v dropped + %v pending; results: %v checks vs %v emitted + %v dropped + %v pending",
			requested, reqEmitted, reqDropped, reqPending, checks, resEmitted, resDropped, resPending)
		return requested == reqEmitted+reqDropped+reqPending && checks == resEmitted+resDropped+resPending, balance
	})
	t.Log(balance)
	reqDropped, resDropped := m("sitewatch_requests_dropped_total"), m("sitewatch_results_dropped_total")
	checks, resEmitted := m("sitewatch_checks_total"), m("sitewatch_results_emitted_total")
	if reqDropped+resDropped == 0 {
		t.Errorf("nothing dropped although Kafka refused everything for 8 s with a buffer of 50")
	}
	if pendingAtPeak > 2*(50+1000) {
		t.Errorf("%v events pending at the peak of the outage: the buffer is not bounded", pendingAtPeak)
	}
	if !strings.Contains(em.logs.String(), "event dropped") {
		t.Errorf("events dropped but no \"event dropped\" log line")
	}
	if code := em.stop(90 * time.Second); code != 0 {
		t.Errorf("emitter exit status %d after SIGTERM, want 0", code)
	}
	inKafka := len(e.readAll(string(topics.Succeeded), string(topics.Failed)))
	if float64(inKafka) < resEmitted {
		t.Errorf("%d results in Kafka, but the emitter counted %v acknowledged", inKafka, resEmitted)
	}
	record(t, figure{fault: "emitter: all produces fail 8 s, -buffer 50", injected: h.Hits(), produced: int(checks), stored: inKafka,
		recovery: recovery,
		note:     fmt.Sprintf("dropped+counted: %v requests, %v results; peak pending %v; VmHWM %d MiB", reqDropped, resDropped, pendingAtPeak, hwm>>20)})
}
