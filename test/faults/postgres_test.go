package faults

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// viaProxy returns the test database's URL pointing at a proxy in front of
// the shared PostgreSQL server, which the test may cut without touching
// the server.
func (e *env) viaProxy() (*testkit.Proxy, string) {
	e.t.Helper()
	u, err := url.Parse(e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	p := testkit.NewProxy(e.t, u.Host)
	u.Host = p.Addr()
	return p, u.String()
}

// TestPostgresOutage cuts every connection between the processor and
// PostgreSQL and refuses new ones for ten seconds (an outage of a managed
// database is often 30 s or more; ten keep the suite fast) while results
// arrive. The sinks retry with backoff, say so in the log and the metrics,
// store nothing meanwhile, and catch up once the database is back.
func TestPostgresOutage(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "po", 8, 60)
	proxy, dbURL := e.viaProxy()
	proc := e.startProcessor("processor", dbURL)
	p := e.producer()
	wait := feed(t, p, s.events, 10, 200*time.Millisecond)
	waitFor(t, 90*time.Second, "rows stored", func() (bool, string) { return testkit.StoredRows(db) >= 50, "" })

	const outage = 10 * time.Second
	before := testkit.StoredRows(db)
	proxy.Cut(outage)
	time.Sleep(outage)
	during := testkit.StoredRows(db)
	restored := time.Now()
	waitFor(t, 60*time.Second, "rows stored again after the outage", func() (bool, string) {
		n := testkit.StoredRows(db)
		return n > during, fmt.Sprintf("%d rows", n)
	})
	recovery := time.Since(restored)
	wait()
	e.settle(db, s.ids(), s.closedBefore, nil, 120*time.Second)
	writeErrors := proc.metric("sitewatch_sink_write_errors_total")
	stored, _ := testkit.StoredEventCounts(context.Background(), db)
	record(t, figure{fault: "PostgreSQL cut + refused 10 s (proxy)", injected: 1, produced: len(s.events), stored: len(stored),
		dupes: duplicates(stored), recovery: recovery,
		note: fmt.Sprintf("%d connections refused; write errors %v", proxy.Refused(), writeErrors)})
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}

	if during > before+2*100 { // at most the batches in flight at the cut
		t.Errorf("%d rows stored while PostgreSQL was unreachable", during-before)
	}
	if proxy.Refused() == 0 {
		t.Errorf("the processor did not try to reconnect during the outage")
	}
	if writeErrors == 0 {
		t.Errorf("sitewatch_sink_write_errors_total = 0 after a 10 s outage")
	}
	logs := proc.logs.String()
	for _, want := range []string{"store write failed, retrying", "store write succeeded after retries"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q in the log", want)
		}
	}
}

// TestPostgresStatementTimeout runs the processor with a 500 ms statement
// timeout in its database URL (the libpq way, in options) and holds an
// exclusive lock on check_results from the test for three seconds, three
// times: each write waiting for the lock is cancelled by the server, and
// retried until it goes through.
func TestPostgresStatementTimeout(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "st", 8, 60)
	proc := e.startProcessor("processor", e.db+"&options=-c%20statement_timeout%3D500")
	p := e.producer()
	wait := feed(t, p, s.events, 10, 200*time.Millisecond)
	waitFor(t, 90*time.Second, "rows stored", func() (bool, string) { return testkit.StoredRows(db) > 0, "" })

	locker := e.connect()
	var recoveries []time.Duration
	const locks = 3
	for range locks {
		before := testkit.StoredRows(db)
		ctx := context.Background()
		tx, err := locker.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE check_results IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		released := time.Now()
		waitFor(t, 60*time.Second, "rows stored again after the lock", func() (bool, string) {
			n := testkit.StoredRows(db)
			return n > before, fmt.Sprintf("%d rows", n)
		})
		recoveries = append(recoveries, time.Since(released))
	}
	wait()
	e.settle(db, s.ids(), s.closedBefore, nil, 120*time.Second)
	writeErrors := proc.metric("sitewatch_sink_write_errors_total")
	stored, _ := testkit.StoredEventCounts(context.Background(), db)
	record(t, figure{fault: "statement timeout (table locked 3 s, 500 ms)", injected: locks, produced: len(s.events), stored: len(stored),
		dupes: duplicates(stored), recovery: maxDuration(recoveries),
		note: fmt.Sprintf("write errors %v; recoveries %v", writeErrors, roundAll(recoveries))})
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
	if writeErrors == 0 {
		t.Errorf("sitewatch_sink_write_errors_total = 0 although every write waited 3 s on a lock with a 500 ms statement timeout")
	}
	if lines := grepLines(proc.logs.String(), "statement timeout"); len(lines) == 0 {
		t.Errorf("no log line names the statement timeout")
	} else {
		t.Logf("e.g.: %s", clip(lines[0], 400))
	}
}

// TestPostgresUniqueViolationIsAlreadyStored pre-inserts rows with the
// event_id (and scheduled_at, the rest of the key) of events still to come (as if an earlier run had
// stored them): those events must count as stored, not fail their batch
// again and again or go to the dead letters, and their neighbours must be
// stored as usual.
func TestPostgresUniqueViolationIsAlreadyStored(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "uv", 6, 40)
	// Let the processor create the schema, then pre-insert.
	proc := e.startProcessor("processor", e.db)
	proc.waitLog(started, 90*time.Second)
	var pre []*codecs.Result
	for i := 5; i < len(s.events); i += 17 {
		pre = append(pre, s.events[i])
	}
	ctx := context.Background()
	for _, ev := range pre {
		// Same key, different content: the first write wins.
		if _, err := db.Exec(ctx, `INSERT INTO check_results (event_id, url, scheduled_at, checked_at, outcome, status_code, body_bytes, checker)
VALUES ($1, $2, $3, $4, 'up', 299, 0, 'pre-inserted')`, ev.EventID, ev.URL, ev.ScheduledAt, ev.CheckedAt); err != nil {
			t.Fatal(err)
		}
	}
	p := e.producer()
	p.results(s.events...)
	p.wait()
	took := e.settle(db, s.ids(), s.closedBefore, func(u string, start time.Time) bool {
		// The pre-inserted rows carry status 299 where the events carry
		// their own: those windows differ from SQL's on purpose.
		for _, ev := range pre {
			if ev.URL == u && windowStart(ev.CheckedAt).Equal(start) {
				return true
			}
		}
		return false
	}, 90*time.Second)
	var kept int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM check_results WHERE checker = 'pre-inserted'`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != len(pre) {
		t.Errorf("%d of %d pre-inserted rows kept; the first write of an event must win", kept, len(pre))
	}
	writeErrors := proc.metric("sitewatch_sink_write_errors_total")
	if writeErrors != 0 {
		t.Errorf("sitewatch_sink_write_errors_total = %v: an event already stored failed its batch", writeErrors)
	}
	for _, d := range e.deadLetters() {
		t.Errorf("dead letter from %s: %s", d.Consumer, d.Reason)
	}
	if lines := grepLines(proc.logs.String(), "already stored"); len(lines) == 0 {
		t.Errorf("no log line says events were already stored")
	}
	stored, _ := testkit.StoredEventCounts(ctx, db)
	record(t, figure{fault: "unique violation (pre-inserted rows)", injected: len(pre), produced: len(s.events), stored: len(stored),
		dupes: duplicates(stored), recovery: took,
		note: fmt.Sprintf("write errors %v; skipped as stored %v", writeErrors, proc.metric("sitewatch_store_results_already_stored_total"))})
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}

// TestPostgresNoPartitionForCheckedAt sends events whose scheduled_at and
// checked_at lie far outside the daily partitions (of scheduled_at; 2090
// and 1999, a skewed clock): they
// are stored in check_results' default partition, exactly once, with a log
// line and a metric saying so, and do not disturb their neighbours. The
// 1999 ones are older than the retention (90 days by default): the next
// partition upkeep (at start, then hourly) deletes them, and says so; the
// 2090 ones stay.
func TestPostgresNoPartitionForCheckedAt(t *testing.T) {
	skipShort(t)
	r := rng(t)
	e := newEnv(t)
	db := e.connect()
	s := genStream(r, "np", 6, 40)
	str := func(v string) *string { return &v }
	var odd []*codecs.Result
	for i, at := range []time.Time{
		time.Date(2090, 1, 2, 3, 4, 5, 6, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2090, 6, 1, 0, 0, 0, 0, time.UTC),
	} {
		ev := testkit.RandomResult(r, fmt.Sprintf("http://np-skewed-%d.test/", i), fmt.Sprintf("np-skewed-%d", i), at, "fault-suite")
		ev.Outcome, ev.StatusCode, ev.ErrorKind, ev.ErrorMessage = codecs.OutcomeDown, 503, str(codecs.ErrStatus), str("503")
		odd = append(odd, ev)
	}
	// One skewed event for a URL with ordinary events too: from 1999, it
	// is too late for that URL's windows.
	late := testkit.RandomResult(r, s.events[0].URL, "np-late-1999", time.Date(1999, 6, 1, 0, 0, 0, 0, time.UTC), "fault-suite")
	odd = append(odd, late)
	want := s.ids()
	for _, ev := range odd {
		want[ev.EventID] = true
	}
	proc := e.startProcessor("processor", e.db)
	p := e.producer()
	half := len(s.events) / 2
	p.results(s.events[:half]...)
	p.wait()
	// The partition upkeep at start would delete the 1999 rows at once
	// if it ran after them: let it finish first.
	waitFor(t, 90*time.Second, "the first half stored", func() (bool, string) { return testkit.StoredRows(db) >= half, "" })
	time.Sleep(time.Second)
	p.results(odd...)
	p.results(s.events[half:]...)
	p.wait()
	skip := func(u string, start time.Time) bool { return start.Year() < 2000 || start.Year() > 2080 }
	took := e.settle(db, want, s.closedBefore, skip, 90*time.Second)

	inDefault := func() int {
		var n int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM check_results_default`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := inDefault(); n != len(odd) {
		t.Errorf("%d rows in check_results_default, want the %d skewed events", n, len(odd))
	}
	defaultMetric := proc.metric("sitewatch_store_results_default_partition_total")
	if defaultMetric != float64(len(odd)) {
		t.Errorf("sitewatch_store_results_default_partition_total = %v, want %d", defaultMetric, len(odd))
	}
	if lines := grepLines(proc.logs.String(), "default partition"); len(lines) == 0 {
		t.Errorf("no log line says rows went to the default partition")
	} else {
		t.Logf("e.g.: %s", clip(lines[0], 400))
	}
	tooLate := proc.metric("sitewatch_windows_too_late_events_total")
	if tooLate < 1 {
		t.Errorf("the 1999 event of a live URL was not counted as too late for its windows")
	}
	stored, _ := testkit.StoredEventCounts(context.Background(), db)
	if code := proc.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}

	// A restart runs the upkeep again: the retention takes the 1999 rows,
	// with a log line, and leaves the 2090 ones.
	again := e.startProcessor("processor#2", e.db)
	again.waitLog("deleted expired rows from the default partition", 60*time.Second)
	line := grepLines(again.logs.String(), "deleted expired rows from the default partition")[0]
	if !strings.Contains(line, "rows=2") {
		t.Errorf("upkeep deleted other than the two 1999 rows: %s", line)
	}
	if n := inDefault(); n != 2 {
		t.Errorf("%d rows left in the default partition after the upkeep, want the two from 2090", n)
	}
	record(t, figure{fault: "slots outside partitions (2090, 1999)", injected: len(odd), produced: len(want), stored: len(stored),
		dupes: duplicates(stored), recovery: took,
		note: fmt.Sprintf("all in check_results_default, metric %v; windows too late %v; the 1999 rows deleted by retention at the next upkeep (logged)", defaultMetric, tooLate)})
	if code := again.stop(60 * time.Second); code != 0 {
		t.Errorf("processor exit status %d after SIGTERM, want 0", code)
	}
}
