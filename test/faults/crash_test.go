package faults

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// feed produces events in chunks with pauses, like a live checker, in the
// background; the returned wait blocks until Kafka took them all.
func feed(t *testing.T, p *producer, events []*codecs.Result, chunk int, pause time.Duration) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for len(events) > 0 {
			n := min(chunk, len(events))
			p.results(events[:n]...)
			events = events[n:]
			time.Sleep(pause)
		}
	})
	return func() {
		t.Helper()
		wg.Wait()
		p.wait()
	}
}

// started is the log line after which the processor has migrated the
// database and started its parts. A kill before it may interrupt the
// first migration, which golang-migrate then reports as dirty (see the
// report of this suite); the kills here come after it.
const started = "processor started"

// TestProcessorKilledRepeatedly kills the processor with SIGKILL at random
// points, several times, while results keep arriving. Each restart must
// re-read whatever was not committed, and in the end check_results holds
// every event exactly once (also the slots checked twice, with two
// checked_at) and every closed window equals SQL's recomputation from
// check_results.
func TestProcessorKilledRepeatedly(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "pk", 10, 60)
	s.recheck(r, 40) // slots checked twice: still one row each
	p := e.producer()
	// About 45 s of results: each restart waits for the dead process's
	// group sessions to expire (10 s), and every kill must find results
	// still arriving.
	wait := feed(t, p, s.events, 10, 750*time.Millisecond)

	const kills = 3
	var recoveries []time.Duration
	proc := e.startProcessor("processor#1", e.db)
	proc.waitLog(started, 90*time.Second)
	var gens map[string]int32
	for k := range kills {
		gens = e.waitGroups(gens, 1, processorGroups...)
		time.Sleep(time.Duration(500+r.IntN(3500)) * time.Millisecond)
		before := testkit.StoredRows(db)
		proc.kill()
		killedAt := time.Now()
		t.Logf("kill %d: processor killed with %d rows stored", k+1, before)
		proc = e.startProcessor(fmt.Sprintf("processor#%d", k+2), e.db)
		proc.waitLog(started, 90*time.Second)
		// Recovered once rows are being stored again: the dead members'
		// sessions expired and the partitions moved to the new process.
		waitFor(t, 90*time.Second, "rows stored again after the kill", func() (bool, string) {
			n := testkit.StoredRows(db)
			return n > before, fmt.Sprintf("%d rows", n)
		})
		recoveries = append(recoveries, time.Since(killedAt))
	}
	wait()
	took := e.settle(db, s.ids(), s.closedBefore, nil, 120*time.Second)
	stored, err := testkit.StoredEventCounts(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if d := duplicates(stored); d > 0 {
		t.Errorf("check_results has %d rows more than slots (%d slots checked twice)", d, recheckedSlots(s.events))
	}
	record(t, figure{fault: "processor kill -9 at random points", injected: kills,
		produced: len(s.ids()), stored: len(stored), dupes: duplicates(stored), recovery: maxDuration(recoveries),
		note: fmt.Sprintf("recoveries %v; settled %v after the last event; %d slots checked twice, one row each", roundAll(recoveries), took.Round(time.Second), recheckedSlots(s.events))})
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}

// TestProcessorKilledWhileDrainingABacklog kills the processor with
// SIGKILL while it drains a backlog, the case where the windows and alerts
// processors hold URL states in memory and write them behind
// (kafkarun.WriteBehind: every 64 events or half a second): the events
// applied to a held state must not be committed before it is written, so
// the restarted processor reads them again, and every event is stored once
// and every closed window equals SQL's. Without the hold it fails: windows
// short of checks.
func TestProcessorKilledWhileDrainingABacklog(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "bk", 100, 360)
	p := e.producer()
	p.results(s.events...)
	p.wait()

	proc := e.startProcessor("processor#1", e.db)
	proc.waitLog(started, 90*time.Second)
	waitFor(t, 90*time.Second, "the backlog draining", func() (bool, string) {
		n := testkit.StoredRows(db)
		return n >= 200, fmt.Sprintf("%d rows", n)
	})
	before := testkit.StoredRows(db)
	proc.kill()
	killedAt := time.Now()
	t.Logf("processor killed with %d of %d rows stored", before, len(s.events))
	proc = e.startProcessor("processor#2", e.db)
	proc.waitLog(started, 90*time.Second)
	took := e.settle(db, s.ids(), s.closedBefore, nil, 180*time.Second)
	stored, err := testkit.StoredEventCounts(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	record(t, figure{fault: "processor kill -9 while draining a backlog", injected: 1,
		produced: len(s.ids()), stored: len(stored), dupes: duplicates(stored), recovery: time.Since(killedAt),
		note: fmt.Sprintf("killed with %d of %d rows stored; settled %v after the restart", before, len(s.events), took.Round(time.Second))})
	if d := duplicates(stored); d > 0 {
		t.Errorf("check_results has %d rows more than events", d)
	}
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}

// TestEmitterAndProcessorKilledRepeatedly runs the real emitter checking
// live websites and the processor, and kills them (SIGKILL) in turn at
// random points. Checks in flight when the emitter dies are lost with it
// (a check is at most once); every result that reached Kafka must be in
// check_results exactly once, and every closed window must equal SQL's.
func TestEmitterAndProcessorKilledRepeatedly(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	st := newSites(t, 12, "")
	em := e.startEmitter("emitter#1", st.path, "-instance-id", "em1")
	proc := e.startProcessor("processor#1", e.db)
	proc.waitLog(started, 90*time.Second)

	const rounds = 3
	var emRec, procRec []time.Duration
	var emGens, procGens map[string]int32
	for k := range rounds {
		// The emitter: kill, restart, and time until the sites are
		// checked again.
		emGens = e.waitGroups(emGens, 1, emitterGroups...)
		time.Sleep(time.Duration(1000+r.IntN(3000)) * time.Millisecond)
		em.kill()
		killedAt := time.Now()
		hits := st.totalHits()
		em = e.startEmitter(fmt.Sprintf("emitter#%d", k+2), st.path, "-instance-id", fmt.Sprintf("em%d", k+2))
		waitFor(t, 60*time.Second, "sites checked again after the emitter's kill", func() (bool, string) {
			return st.totalHits() >= hits+int64(len(st.urls)), fmt.Sprintf("%d hits", st.totalHits()-hits)
		})
		emRec = append(emRec, time.Since(killedAt))

		// The processor.
		procGens = e.waitGroups(procGens, 1, processorGroups...)
		time.Sleep(time.Duration(500+r.IntN(3000)) * time.Millisecond)
		before := testkit.StoredRows(db)
		proc.kill()
		killedAt = time.Now()
		proc = e.startProcessor(fmt.Sprintf("processor#%d", k+2), e.db)
		waitFor(t, 90*time.Second, "rows stored again after the processor's kill", func() (bool, string) {
			n := testkit.StoredRows(db)
			return n > before, fmt.Sprintf("%d rows", n)
		})
		procRec = append(procRec, time.Since(killedAt))
	}
	time.Sleep(2 * time.Second)
	if code := em.stop(90 * time.Second); code != 0 {
		t.Errorf("emitter exit status %d after SIGTERM, want 0", code)
	}
	p := e.producer()
	_, closedBefore := closeLiveWindows(p, st.urls)
	p.wait()

	produced, repeats := e.producedResults()
	want := map[string]bool{}
	for id := range produced {
		want[id] = true
	}
	e.settle(db, want, closedBefore, nil, 120*time.Second)
	stored, err := testkit.StoredEventCounts(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	// A request redelivered after the emitter's kill is checked again (a
	// check is at least once): what a user must see is still one row per
	// slot, and windows equal to those rows (settle checked both).
	rechecked := recheckedSlots(e.resultMessages())
	if d := duplicates(stored); d > 0 {
		t.Errorf("check_results has %d rows more than slots (%d slots re-checked across the emitter's restarts)", d, rechecked)
	}
	record(t, figure{fault: "emitter kill -9 at random points", injected: rounds, produced: len(produced), stored: len(stored),
		dupes: duplicates(stored), recovery: maxDuration(emRec),
		note: fmt.Sprintf("until all sites checked again: %v; %d results repeated in Kafka, %d slots re-checked, each one row", roundAll(emRec), repeats, rechecked)})
	record(t, figure{fault: "processor kill -9 (live emitter load)", injected: rounds, produced: len(produced), stored: len(stored),
		dupes: duplicates(stored), recovery: maxDuration(procRec), note: fmt.Sprintf("until rows stored again: %v", roundAll(procRec))})
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}

// TestCrashBetweenDatabaseCommitAndOffsetCommit kills the processor at the
// worst moment of each of its consumer groups: when its offset commit
// reaches the broker, the batch (results, windows) or the table write
// (windows group) is already committed, but the offsets are not. kfake
// intercepts the OffsetCommit, kills the process and drops the request.
// The restarted processor reads those events again and must not store or
// count any of them twice.
func TestCrashBetweenDatabaseCommitAndOffsetCommit(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "cc", 8, 40)
	s.recheck(r, 30)
	p := e.producer()
	wait := feed(t, p, s.events, 20, 200*time.Millisecond)

	var mu sync.Mutex
	var target *child
	var rowsAtKill []int
	killOn := func(group string) {
		done := false
		e.cluster.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
			mu.Lock()
			defer mu.Unlock()
			oc := req.(*kmsg.OffsetCommitRequest)
			if done || oc.Group != group || target == nil {
				return nil, nil, false
			}
			committing := false
			for _, tp := range oc.Topics {
				for _, pp := range tp.Partitions {
					committing = committing || pp.Offset > 0
				}
			}
			if !committing {
				return nil, nil, false
			}
			done = true
			_ = target.cmd.Process.Signal(syscall.SIGKILL)
			rowsAtKill = append(rowsAtKill, e.countRows())
			// Closing the connection drops the commit, as the death of
			// the process would have.
			return nil, fmt.Errorf("killed %s before its offset commit", group), true
		})
	}
	groups := []string{"sink_results", "windows", "sink_windows"}
	var recoveries []time.Duration
	var gens map[string]int32
	for i, g := range groups {
		proc := e.startProcessor(fmt.Sprintf("processor#%d", i+1), e.db)
		gens = e.waitGroups(gens, 1, processorGroups...)
		mu.Lock()
		target = proc
		mu.Unlock()
		killOn(g)
		<-proc.done
		killedAt := time.Now()
		mu.Lock()
		target = nil
		mu.Unlock()
		t.Logf("killed at the %s offset commit", g)
		if i < len(groups)-1 {
			continue
		}
		last := e.startProcessor("processor#last", e.db)
		wait()
		e.settle(db, s.ids(), s.closedBefore, nil, 120*time.Second)
		// From the last kill to every event stored once and every window
		// right: the dead member's session expiry (10 s) dominates.
		recoveries = append(recoveries, time.Since(killedAt))
		if code := last.stop(60 * time.Second); code != 0 {
			t.Errorf("processor exit status %d after SIGTERM, want 0", code)
		}
	}
	stored, err := testkit.StoredEventCounts(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if d := duplicates(stored); d > 0 {
		t.Errorf("check_results has %d rows more than slots", d)
	}
	record(t, figure{fault: "kill between DB commit and offset commit", injected: len(groups), produced: len(s.ids()),
		stored: len(stored), dupes: duplicates(stored), recovery: maxDuration(recoveries),
		note: fmt.Sprintf("groups %v; rows stored at each kill %v; %d slots checked twice", groups, rowsAtKill, recheckedSlots(s.events))})
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Millisecond)
	}
	return out
}
