package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

const (
	streamURLs   = 20
	streamEvents = 3000
	// settleTimeout bounds the wait for the database to catch up with
	// everything produced.
	settleTimeout = 90 * time.Second
)

// feed produces events in chunks with short pauses, like a live emitter,
// in the background; wait returns once all are acknowledged by Kafka.
func feed(t *testing.T, e *env, events []*codecs.Result, chunk int, pause time.Duration) (wait func()) {
	t.Helper()
	p := e.producer(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for len(events) > 0 {
			n := min(chunk, len(events))
			p.results(events[:n])
			events = events[n:]
			time.Sleep(pause)
		}
	})
	return func() {
		t.Helper()
		wg.Wait()
		p.done()
	}
}

// TestEndToEndWindowsEqualSQL runs the whole processor over kfake and
// PostgreSQL: two thirds of the stream are in Kafka before it starts (the
// groups must read from the earliest offset), the rest arrives while it
// runs. Every event must be in check_results exactly once and every window
// must equal SQL's recomputation from those rows.
func TestEndToEndWindowsEqualSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	s := genStream(1, streamURLs, streamEvents)
	check := e.checker(t, connect(t, e.db), s)
	split := len(s.events) * 2 / 3
	p := e.producer(t)
	p.results(s.events[:split])
	p.done()

	proc := startProcessor(t, e.args(e.db))
	feed(t, e, s.events[split:], 100, 20*time.Millisecond)()
	check.settle(settleTimeout, proc.logs)
	if code := proc.stop(); code != 0 {
		t.Fatalf("exit status %d; logs:\n%s", code, tail(proc.logs.String(), 40))
	}
	check.assert(proc.logs)
}

// midStream is how many rows must be stored before a test interrupts the
// processor: well into the stream, well before its end.
const midStream = streamEvents / 4

// TestStopAndRestartMidStream stops the processor (SIGTERM's path: its
// context is cancelled) while events are arriving, produces the rest of
// the stream while it is down, and starts it again: nothing is lost or
// counted twice across the restart.
func TestStopAndRestartMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	db := connect(t, e.db)
	s := genStream(2, streamURLs, streamEvents)
	check := e.checker(t, db, s)
	split := len(s.events) * 2 / 3

	first := startProcessor(t, e.args(e.db))
	wait := feed(t, e, s.events[:split], 50, 50*time.Millisecond)
	waitFor(t, settleTimeout, "rows stored mid-stream", first.logs, func() bool { return testkit.StoredRows(db) >= midStream })
	if code := first.stop(); code != 0 {
		t.Fatalf("first run: exit status %d; logs:\n%s", code, tail(first.logs.String(), 40))
	}
	t.Logf("stopped with %d of %d events stored", testkit.StoredRows(db), len(s.events))
	wait()
	p := e.producer(t)
	p.results(s.events[split:])
	p.done()

	second := startProcessor(t, e.args(e.db))
	check.settle(settleTimeout, second.logs)
	if code := second.stop(); code != 0 {
		t.Fatalf("second run: exit status %d; logs:\n%s", code, tail(second.logs.String(), 40))
	}
	check.assert(second.logs)
}

// TestKilledMidStream is the unclean variant: the processor runs as its
// own process and is killed with SIGKILL twice, once while events arrive
// and once while a second process is catching up on the backlog the first
// left, so batches in hand are neither flushed nor committed, and some of
// goka's table writes and window emissions reach Kafka while others do
// not. The last processor must read again what was not committed, count
// nothing twice, and end with every window complete.
func TestKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	db := connect(t, e.db)
	s := genStream(3, streamURLs, streamEvents)
	check := e.checker(t, db, s)
	split := len(s.events) * 2 / 3

	wait := feed(t, e, s.events[:split], 50, 50*time.Millisecond)
	for _, at := range []int{streamEvents / 5, streamEvents / 2} {
		// A new process joins once the dead one's group memberships
		// expire (the session timeout, 10s).
		c := startChild(t, e.args(e.db))
		waitFor(t, settleTimeout, "rows stored mid-stream", c.logs, func() bool { return testkit.StoredRows(db) >= at })
		c.kill()
		t.Logf("killed with %d of %d events stored", testkit.StoredRows(db), len(s.events))
	}
	wait()
	p := e.producer(t)
	p.results(s.events[split:])
	p.done()

	proc := startProcessor(t, e.args(e.db))
	check.settle(settleTimeout, proc.logs)
	if code := proc.stop(); code != 0 {
		t.Fatalf("exit status %d; logs:\n%s", code, tail(proc.logs.String(), 40))
	}
	check.assert(proc.logs)
}

// TestPostgresOutage cuts every connection between the processor and
// PostgreSQL, and refuses new ones, for three seconds while events arrive:
// the sinks retry, and once the database is back everything is stored
// exactly once.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	db := connect(t, e.db)
	s := genStream(4, streamURLs, streamEvents)
	check := e.checker(t, db, s)
	u, err := url.Parse(e.db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testkit.NewProxy(t, u.Host)
	proc := startProcessor(t, e.args(withHost(t, e.db, proxy.Addr())))
	wait := feed(t, e, s.events, 50, 50*time.Millisecond)
	waitFor(t, settleTimeout, "rows stored mid-stream", proc.logs, func() bool { return testkit.StoredRows(db) >= midStream })
	before := testkit.StoredRows(db)
	proxy.Cut(3 * time.Second)
	time.Sleep(3 * time.Second)
	during := testkit.StoredRows(db)
	wait()
	t.Logf("outage: %d rows stored before, %d at its end; %d connections refused", before, during, proxy.Refused())

	check.settle(settleTimeout, proc.logs)
	if code := proc.stop(); code != 0 {
		t.Fatalf("exit status %d; logs:\n%s", code, tail(proc.logs.String(), 40))
	}
	check.assert(proc.logs)
	logs := proc.logs.String()
	if !strings.Contains(logs, "store write failed, retrying") || !strings.Contains(logs, "succeeded after retries") {
		t.Errorf("no store write was retried during the outage; logs (tail):\n%s", tail(logs, 40))
	}
	if during > before+2*250 { // at most the batches in flight at the cut
		t.Errorf("%d rows stored while PostgreSQL was unreachable", during-before)
	}
	if proxy.Refused() == 0 {
		t.Errorf("the processor did not try to reconnect during the outage")
	}
}

// poison is one malformed message and what its dead letter's reason must
// say.
type poison struct {
	name   string
	value  []byte
	reason string
}

// poisonFor builds the malformed variants of a valid JSON event: garbage
// bytes, a wrong version, missing fields, a field of the wrong type, and
// truncated JSON.
func poisonFor(t *testing.T, valid []byte, missing, missingField, wrongType string) []poison {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(valid, &m); err != nil {
		t.Fatal(err)
	}
	m["v"] = 2
	v2, _ := json.Marshal(m)
	return []poison{
		{"garbage", []byte("\x00\xffnot json at all"), "invalid character"},
		{"version 2", v2, "unsupported version 2"},
		{"missing fields", []byte(missing), `missing field "` + missingField + `"`},
		{"wrong type", []byte(wrongType), "cannot unmarshal string"},
		{"truncated", valid[:len(valid)/2], "unexpected EOF"},
	}
}

// TestPoisonMessages puts malformed messages among valid ones on both
// result topics and on status_windows. Each must reach
// sitewatch_dead_letters, with its bytes, origin and reason, from every
// consumer of its topic (the windows processor and the results sink for a
// result, the windows sink for a window), and its valid neighbours must be
// stored as usual.
func TestPoisonMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e := newEnv(t)
	db := connect(t, e.db)
	s := genStream(5, 2, 200)
	site := s.events[0].URL

	validResult := encodeResult(t, s.events[0])
	resultPoison := poisonFor(t, validResult,
		`{"v":1,"url":"`+site+`"}`, "event_id",
		wrongTypeResult(t, s.events[0]))
	start := time.Now().UTC().Truncate(windowSize).Add(-24 * time.Hour)
	neighbour := "http://window-neighbour.test/"
	win := func(rev, checks int64) *codecs.Window {
		avg := 12.5
		return &codecs.Window{URL: neighbour, WindowStart: start, WindowEnd: start.Add(windowSize),
			Checks: checks, Failures: 1, Responses: 1, ResponseMinMS: &avg, ResponseAvgMS: &avg, ResponseMaxMS: &avg,
			ResponseP50MS: &avg, ResponseP95MS: &avg, ResponseP99MS: &avg,
			StatusCounts: map[string]int64{"200": checks - 1, "0": 1}, Revision: rev}
	}
	validWindow, err := codecs.WindowCodec{}.Encode(win(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	windowPoison := poisonFor(t, validWindow,
		`{"v":1,"url":"`+neighbour+`"}`, "window_start",
		strings.Replace(string(validWindow), `"checks":3`, `"checks":"3"`, 1))

	half := len(s.events) / 2
	p := e.producer(t)
	p.results(s.events[:half])
	for _, pm := range resultPoison {
		p.raw(topics.Succeeded, site, pm.value)
		p.raw(topics.Failed, site, pm.value)
	}
	p.results(s.events[half:])
	p.raw(topics.Windows, neighbour, validWindow)
	for _, pm := range windowPoison {
		p.raw(topics.Windows, neighbour, pm.value)
	}
	w2, err := codecs.WindowCodec{}.Encode(win(2, 4))
	if err != nil {
		t.Fatal(err)
	}
	p.raw(topics.Windows, neighbour, w2)
	p.done()

	proc := startProcessor(t, e.args(e.db))
	type origin struct{ consumer, topic, value string }
	want := map[origin]string{} // → reason substring
	for _, pm := range resultPoison {
		for _, tp := range []string{string(topics.Succeeded), string(topics.Failed)} {
			want[origin{"windows", tp, string(pm.value)}] = pm.reason
			want[origin{"alerts", tp, string(pm.value)}] = pm.reason
			want[origin{"sink_results", tp, string(pm.value)}] = pm.reason
		}
	}
	for _, pm := range windowPoison {
		want[origin{"sink_windows", string(topics.Windows), string(pm.value)}] = pm.reason
	}
	dls := deadLetters(t, e.addrs, settleTimeout, func(d []*codecs.DeadLetter) bool { return len(d) >= len(want) })
	got := map[origin]*codecs.DeadLetter{}
	for _, d := range dls {
		o := origin{d.Consumer, d.Topic, string(d.Value)}
		if _, ok := want[o]; !ok {
			t.Errorf("unexpected dead letter from %s for %s offset %d: %q (%s)", d.Consumer, d.Topic, d.Offset, d.Value, d.Reason)
			continue
		}
		if got[o] != nil {
			t.Errorf("dead letter from %s for %s %q twice", d.Consumer, d.Topic, d.Value)
		}
		got[o] = d
	}
	for o, reason := range want {
		d := got[o]
		if d == nil {
			t.Errorf("no dead letter from %s for %q on %s", o.consumer, o.value, o.topic)
			continue
		}
		if !strings.Contains(d.Reason, reason) {
			t.Errorf("dead letter from %s for %q: reason %q, want it to mention %q", o.consumer, o.value, d.Reason, reason)
		}
		if d.Offset < 0 || d.FailedAt.IsZero() {
			t.Errorf("dead letter from %s for %q: offset %d, failed_at %v", o.consumer, o.value, d.Offset, d.FailedAt)
		}
		if o.topic != string(topics.Windows) && string(d.Key) != site {
			t.Errorf("dead letter from %s for %q: key %q, want %q", o.consumer, o.value, d.Key, site)
		}
	}

	e.checker(t, db, s, neighbour).settle(settleTimeout, proc.logs)
	var checks, rev int64
	if err := db.QueryRow(context.Background(), `SELECT checks, revision FROM check_windows WHERE url = $1 AND window_start = $2`,
		neighbour, start).Scan(&checks, &rev); err != nil {
		t.Fatalf("window around the poison on %s: %v", topics.Windows, err)
	}
	if checks != 4 || rev != 2 {
		t.Errorf("window around the poison: checks %d revision %d, want 4 and 2", checks, rev)
	}
	if code := proc.stop(); code != 0 {
		t.Fatalf("exit status %d; logs:\n%s", code, tail(proc.logs.String(), 40))
	}
}

// wrongTypeResult is r as JSON with status_code as a string.
func wrongTypeResult(t *testing.T, r *codecs.Result) string {
	t.Helper()
	b := string(encodeResult(t, r))
	out := strings.Replace(b, fmt.Sprintf(`"status_code":%d`, r.StatusCode), fmt.Sprintf(`"status_code":"%d"`, r.StatusCode), 1)
	if out == b {
		t.Fatalf("no status_code in %s", b)
	}
	return out
}

// TestMigrateCommand: `processor migrate` applies the migrations, exits 0,
// and is a no-op the second time.
func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	dbURL := testkit.Postgres(t)
	for i := range 2 {
		var stderr testkit.SyncBuffer
		if code := run(context.Background(), []string{"migrate", "-database-url", dbURL}, io.Discard, &stderr); code != 0 {
			t.Fatalf("run %d: exit status %d: %s", i+1, code, stderr.String())
		}
	}
	db := connect(t, dbURL)
	for _, rel := range []string{"check_results", "check_windows", "check_windows_recomputed", "uptime_daily", "schema_migrations"} {
		var exists bool
		if err := db.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, rel).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("%s does not exist after migrate", rel)
		}
	}
	var version int
	var dirty bool
	if err := db.QueryRow(context.Background(), `SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty); err != nil {
		t.Fatal(err)
	}
	if version < 1 || dirty {
		t.Errorf("schema_migrations: version %d dirty %v", version, dirty)
	}
}

// TestUsageErrors: bad flags exit 2 with one line on stderr naming what to
// fix, before anything is contacted.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-no-such-flag"}, "-no-such-flag"},
		{[]string{"-window-size", "soon"}, "-window-size"},
		{[]string{"-batch-size", "many"}, "-batch-size"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"-brokers", "", "-database-url", "postgres://127.0.0.1:1/x"}, "-brokers"},
		{[]string{"-brokers", "127.0.0.1:1", "-database-url", "postgres://127.0.0.1:1/x", "-run", "everything"}, "-run"},
		{[]string{"-brokers", "127.0.0.1:1", "-database-url", "postgres://127.0.0.1:1/x", "-log-level", "loud"}, "loud"},
		{[]string{"-brokers", "127.0.0.1:1", "-database-url", "postgres://127.0.0.1:1/x", "-batch-size", "0"}, "-batch-size"},
		{[]string{"-brokers", "127.0.0.1:1", "-database-url", "postgres://127.0.0.1:1/x", "-flush-interval", "-1s"}, "-flush-interval"},
		{[]string{"-brokers", "127.0.0.1:1", "-database-url", "postgres://127.0.0.1:1/x", "-window-size", "0s"}, "-window-size"},
		{[]string{"-brokers", "127.0.0.1:1", "-database-url", "", "-run", "sink-results"}, "-database-url"},
		{[]string{"-brokers", "127.0.0.1:1", "-run", "notify", "-alert-webhook", "ftp://hooks.example/TOKEN"}, "-alert-webhook #1: not an http or https URL"},
		{[]string{"-brokers", "127.0.0.1:1", "-run", "notify", "-alert-max-age", "0s"}, "-alert-max-age"},
		{[]string{"-brokers", "127.0.0.1:1", "-database-url", "postgres://127.0.0.1:1/x", "-alert-quorum", "-1"}, "-alert-quorum: -1, want 0..32"},
		{[]string{"-brokers", "127.0.0.1:1", "-database-url", "postgres://127.0.0.1:1/x", "-run", "web"}, "-http-addr"},
		{[]string{"migrate", "-database-url", ""}, "-database-url"},
		{[]string{"migrate", "-brokers", "127.0.0.1:1"}, "-brokers"},
		{[]string{"-flush-interval", "30"}, `-flush-interval: "30" has no unit; write e.g. 30s or 30ms`},
		{[]string{"-databse-url", "postgres://x"}, "-databse-url: no such flag; did you mean -database-url?"},
		{[]string{"migrate", "-database-url", "mysql://root@127.0.0.1/db"}, `-database-url: "mysql://": unsupported scheme; use postgres:// or sqlite://`},
		{[]string{"migrate", "-database-url", "sqlite:///tmp/x.db"}, "migrate is for PostgreSQL"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr testkit.SyncBuffer
			code := run(context.Background(), tc.args, io.Discard, &stderr)
			out := stderr.String()
			if code != 2 {
				t.Errorf("exit status %d, want 2; stderr: %s", code, out)
			}
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || !strings.HasPrefix(out, "processor") {
				t.Errorf("stderr is not one line from the processor: %q", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("stderr %q does not mention %q", out, tc.want)
			}
			if strings.Contains(out, "TOKEN") {
				t.Errorf("stderr %q quotes a destination URL", out)
			}
		})
	}
}

// TestUnreachableDatabase: a database that does not answer makes both the
// processor and `processor migrate` exit 1 with one line that names the
// host and keeps the password out.
func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	const password = "hunter2-secret"
	// Port 1 on loopback: nothing listens, the connection is refused.
	dbURL := "postgres://sitewatch:" + password + "@127.0.0.1:1/sitewatch?sslmode=disable"
	_, addrs := testkit.Kafka(t)
	for name, args := range map[string][]string{
		"migrate":   {"migrate", "-database-url", dbURL},
		"processor": {"-brokers", testkit.JoinAddrs(addrs), "-database-url", dbURL, "-topic-partitions", "2", "-log-level", "error"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr testkit.SyncBuffer
			code := run(context.Background(), args, io.Discard, &stderr)
			out := stderr.String()
			if code != 1 {
				t.Errorf("exit status %d, want 1; stderr: %s", code, out)
			}
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "processor") {
				t.Errorf("stderr is not one line from the processor: %q", out)
			}
			if !strings.Contains(out, "127.0.0.1:1") {
				t.Errorf("stderr does not name the database host: %q", out)
			}
			if strings.Contains(out, password) {
				t.Errorf("stderr shows the password: %q", out)
			}
			if !strings.Contains(out, "-database-url: postgresql: connect: ") || strings.Contains(out, "migrate: migrate:") {
				t.Errorf("stderr %q: want it to name -database-url and say connect, once", out)
			}
		})
	}
}

// TestMigrateLeavesKafkaLogsAlone: `processor migrate` never talks to
// Kafka, so sarama's process-wide logger must not point at its stderr: a
// Kafka component elsewhere in the process (a test's broker, the
// all-in-one) would otherwise write its warnings into migrate's one-line
// error (seen in CI as "consumer/broker/0 disconnecting" before the error).
func TestMigrateLeavesKafkaLogsAlone(t *testing.T) {
	var stderr testkit.SyncBuffer
	run(context.Background(), []string{"migrate", "-database-url", "postgres://127.0.0.1:1/x?sslmode=disable"}, io.Discard, &stderr)
	sarama.Logger.Printf("probe-from-another-component: disconnecting due to error processing FetchRequest: EOF")
	if out := stderr.String(); strings.Contains(out, "probe-from-another-component") {
		t.Fatalf("sarama's log line landed on migrate's stderr: %q", out)
	}
}

// TestHelp: -h is a request, not a mistake: the help goes to stdout with
// exit status 0, and names the migrate subcommand.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"migrate", "-h"}} {
		var stdout, stderr testkit.SyncBuffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 || stderr.String() != "" {
			t.Errorf("%v: exit status %d, stderr %q; want 0 and nothing", args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "Usage:\n  processor") || !strings.Contains(stdout.String(), "-database-url") {
			t.Errorf("%v: help lacks the usage or the flags:\n%s", args, stdout.String())
		}
	}
	var stdout testkit.SyncBuffer
	run(context.Background(), []string{"-h"}, &stdout, io.Discard)
	if !strings.Contains(stdout.String(), "Commands:\n  migrate ") || !strings.Contains(stdout.String(), "(default 12)") {
		t.Errorf("processor -h lacks the migrate subcommand or the partitions default:\n%s", stdout.String())
	}
}

// TestVersion: -version prints one line on stdout and exits 0 without
// brokers or a database, for the processor and `processor migrate` alike.
func TestVersion(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("DATABASE_URL", "")
	for _, args := range [][]string{{"-version"}, {"migrate", "-version"}} {
		var stdout, stderr testkit.SyncBuffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("%q: exit status %d, want 0; stderr %q", args, code, stderr.String())
		}
		out := stdout.String()
		if !strings.HasPrefix(out, "processor ") || strings.Count(out, "\n") != 1 || stderr.String() != "" {
			t.Errorf("%q: stdout %q, stderr %q: want one line \"processor <version>\" on stdout only", args, out, stderr.String())
		}
	}
}
