package windows

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
)

var testTopics = Topics{
	Succeeded:   "status_request_succeeded",
	Failed:      "status_request_failed",
	Windows:     "status_windows",
	DeadLetters: "sitewatch_dead_letters",
}

// harness is one windows processor on goka's tester, with a fake clock.
type harness struct {
	t       *testing.T
	tt      *tester.Tester
	p       *Processor
	clock   *fakeClock
	reg     *prometheus.Registry
	windows *tester.QueueTracker
	dead    *tester.QueueTracker
}

func newHarness(t *testing.T, now time.Time) *harness {
	t.Helper()
	h := &harness{t: t, tt: tester.New(t), clock: newFakeClock(now), reg: prometheus.NewRegistry()}
	p, err := New(Config{
		Topics:      testTopics,
		Now:         h.clock.Now,
		Registerer:  h.reg,
		Logger:      testLogger(t, slog.LevelInfo),
		IdleCheck:   time.Hour, // the tests run the idle close themselves
		GokaOptions: []goka.ProcessorOption{goka.WithTester(h.tt)},
	})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	h.p = p
	runUntilCleanup(t, p)
	h.windows = h.tt.NewQueueTracker(string(testTopics.Windows))
	h.dead = h.tt.NewQueueTracker(string(testTopics.DeadLetters))
	return h
}

// consume delivers r on the topic its outcome belongs to. Like a live
// system, the wall clock is at least the event's checked_at.
func (h *harness) consume(r *codecs.Result) {
	h.t.Helper()
	if now := h.clock.Now(); r.CheckedAt.After(now) {
		h.clock.Set(r.CheckedAt)
	}
	h.deliver(r)
}

// deliver delivers r without touching the clock.
func (h *harness) deliver(r *codecs.Result) {
	h.t.Helper()
	topic := testTopics.Succeeded
	if r.Outcome == codecs.OutcomeDown {
		topic = testTopics.Failed
	}
	h.tt.Consume(string(topic), r.URL, encode(h.t, r))
}

// closeIdle moves the wall clock to now and runs one idle-close pass.
func (h *harness) closeIdle(now time.Time) {
	h.t.Helper()
	h.clock.Set(now)
	if err := h.p.CloseIdle(context.Background()); err != nil {
		h.t.Fatalf("close idle: %v", err)
	}
	h.tt.Catchup()
}

// emitted returns the windows emitted since the last call.
func (h *harness) emitted() []*codecs.Window {
	h.t.Helper()
	var out []*codecs.Window
	for {
		key, v, ok := h.windows.Next()
		if !ok {
			return out
		}
		w := v.(*codecs.Window)
		if key != w.URL {
			h.t.Fatalf("window of %s emitted under key %q", w.URL, key)
		}
		out = append(out, w)
	}
}

// expectOne asserts that exactly one window was emitted since the last call
// and that it matches want (computed from raw results), with its number of
// checks as its revision (see params.emit).
func (h *harness) expectOne(rs ...*codecs.Result) *codecs.Window {
	h.t.Helper()
	got := h.emitted()
	if len(got) != 1 {
		h.t.Fatalf("emitted %d windows, want 1: %+v", len(got), got)
	}
	want := expectedWindows(rs, DefaultWindowSize)
	if len(want) != 1 {
		h.t.Fatalf("test bug: results span %d windows", len(want))
	}
	for _, w := range want {
		if d := diffWindow(got[0], w); d != "" {
			h.t.Fatalf("window differs: %s", d)
		}
		if got[0].Revision != w.Checks {
			h.t.Fatalf("revision %d, want %d (its checks)", got[0].Revision, w.Checks)
		}
	}
	return got[0]
}

func (h *harness) expectNone() {
	h.t.Helper()
	if got := h.emitted(); len(got) != 0 {
		h.t.Fatalf("emitted %d windows, want none; first: %+v", len(got), got[0])
	}
}

func (h *harness) counter(name string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
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

const site = "https://example.com/"

func TestWindowBoundaries(t *testing.T) {
	h := newHarness(t, at(12, 0, 0))

	last := result(site, "a", at(12, 5, 0).Add(-time.Nanosecond))
	first := result(site, "b", at(12, 0, 0))
	h.consume(first)
	h.consume(last)
	h.expectNone() // the watermark has not reached 12:05 yet

	// An event exactly at 12:05:00 belongs to [12:05, 12:10) and closes
	// [12:00, 12:05) holding the other two.
	edge := result(site, "c", at(12, 5, 0), failed(codecs.ErrTimeout, 0, nil))
	h.consume(edge)
	w := h.expectOne(first, last)
	if !w.WindowStart.Equal(at(12, 0, 0)) || !w.WindowEnd.Equal(at(12, 5, 0)) {
		t.Fatalf("window [%v, %v), want [12:00, 12:05)", w.WindowStart, w.WindowEnd)
	}

	// A checked_at in another zone is windowed by its instant, in UTC.
	berlin := time.FixedZone("CET", 3600)
	inZone := result(site, "d", at(12, 9, 59).In(berlin))
	h.consume(inZone)
	h.consume(result(site, "e", at(12, 10, 0)))
	got := h.expectOne(edge, inZone)
	if got.WindowStart.Location() != time.UTC || got.WindowStart.Hour() != 12 || got.WindowStart.Minute() != 5 {
		t.Fatalf("window_start %v, want 12:05 UTC", got.WindowStart)
	}
}

func TestLateEventWithinGraceReemitsNextRevision(t *testing.T) {
	h := newHarness(t, at(12, 0, 0))
	a1 := result(site, "a1", at(12, 1, 0), responseMS(50))
	a2 := result(site, "a2", at(12, 3, 0), responseMS(70))
	h.consume(a1)
	h.consume(a2)
	h.consume(result(site, "b1", at(12, 5, 30)))
	first := h.expectOne(a1, a2)

	// Watermark 12:05:30 ≤ end 12:05 + grace 1m: the late event still counts.
	late := result(site, "a3", at(12, 4, 59), failed(codecs.ErrStatus, 503, ptr(900.0)))
	h.consume(late)
	second := h.expectOne(a1, a2, late)

	// A second late event: a higher revision again.
	late2 := result(site, "a4", at(12, 0, 0), failed(codecs.ErrRegexp, 200, ptr(10.0)))
	h.consume(late2)
	third := h.expectOne(a1, a2, late, late2)
	if !(first.Revision < second.Revision && second.Revision < third.Revision) {
		t.Errorf("revisions %d, %d, %d do not grow", first.Revision, second.Revision, third.Revision)
	}

	if got := h.counter("sitewatch_windows_too_late_events_total"); got != 0 {
		t.Fatalf("too-late counter %v, want 0", got)
	}
}

func TestTooLateEventCountedAndNotApplied(t *testing.T) {
	h := newHarness(t, at(12, 0, 0))
	a1 := result(site, "a1", at(12, 2, 0))
	b1 := result(site, "b1", at(12, 5, 30))
	h.consume(a1)
	h.consume(b1)
	h.expectOne(a1)

	// 12:06:01 is past end+grace of [12:00, 12:05): that window is final.
	b2 := result(site, "b2", at(12, 6, 1))
	h.consume(b2)
	h.expectNone()
	h.consume(result(site, "a-late", at(12, 4, 30)))
	h.expectNone()
	// Before any window kept in state, including ones that never existed.
	h.consume(result(site, "older", at(11, 50, 0)))
	h.expectNone()
	if got := h.counter("sitewatch_windows_too_late_events_total"); got != 2 {
		t.Fatalf("too-late counter %v, want 2", got)
	}

	// The next window is unaffected by the rejected events.
	h.consume(result(site, "c1", at(12, 10, 0)))
	h.expectOne(b1, b2)
}

func TestIdleCloseWithFakeClock(t *testing.T) {
	h := newHarness(t, at(12, 1, 0))
	const quiet, busy = "https://removed.example/", "https://busy.example/"
	q1 := result(quiet, "q1", at(12, 1, 0))
	h.consume(q1)
	q2 := result(quiet, "q2", at(12, 2, 0))
	h.consume(q2)

	// Not yet: the window ends at 12:05, grace and IdleAfter add 2 minutes.
	h.closeIdle(at(12, 6, 59))
	h.expectNone()

	// The busy URL keeps sending events, stamped three minutes in the past
	// by a checker with a slow clock: the wall clock is past its window's
	// end, but a URL that is not silent is never closed by the clock.
	b1 := result(busy, "b1", at(12, 4, 0))
	h.deliver(b1)

	h.closeIdle(at(12, 7, 0))
	h.expectOne(q1, q2)
	h.closeIdle(at(12, 7, 15)) // nothing changed: nothing re-emitted
	h.expectNone()

	// An event that was only delayed (say, the processor was catching up)
	// still counts after the idle close, and the window is re-emitted.
	h.clock.Set(at(12, 7, 20))
	q3 := result(quiet, "q3", at(12, 4, 0))
	h.deliver(q3)
	h.clock.Set(at(12, 7, 40))
	b2 := result(busy, "b2", at(12, 4, 40))
	h.deliver(b2)
	h.expectNone()
	h.closeIdle(at(12, 8, 0)) // quiet for 40 s, busy for 20 s
	h.expectNone()
	h.closeIdle(at(12, 8, 20))
	h.expectOne(q1, q2, q3)

	// A day later the busy URL went silent too: its window is emitted, and
	// both URLs are forgotten.
	h.closeIdle(at(12, 8, 20).Add(DefaultForgetAfter))
	h.expectOne(b1, b2)
	for _, url := range []string{quiet, busy} {
		if v := h.tt.TableValue(goka.GroupTable(DefaultGroup), url); v != nil {
			t.Fatalf("state of silent %s still in the table: %+v", url, v)
		}
	}
	if got := h.counter("sitewatch_windows_emitted_total"); got != 3 {
		t.Fatalf("emitted counter %v, want 3", got)
	}
}

func TestDuplicateEventNotCountedTwice(t *testing.T) {
	h := newHarness(t, at(12, 0, 0))
	a1 := result(site, "a1", at(12, 1, 0), responseMS(10))
	a2 := result(site, "a2", at(12, 2, 0), responseMS(20))
	h.consume(a1)
	h.consume(a1) // a producer retry
	h.consume(a2)
	h.consume(result(site, "b1", at(12, 5, 0)))
	first := h.expectOne(a1, a2)

	// A redelivery after the window was emitted does not change it; the
	// window is re-sent unchanged, same revision, in case the emission was
	// lost in the crash that caused the redelivery.
	h.consume(a2)
	again := h.expectOne(a1, a2)
	if d := diffWindow(again, first); d != "" || again.Revision != first.Revision {
		t.Fatalf("re-sent window differs: %s", d)
	}
	if got := h.counter("sitewatch_windows_duplicate_events_total"); got != 2 {
		t.Fatalf("duplicate counter %v, want 2", got)
	}

	st := h.tt.TableValue(goka.GroupTable(DefaultGroup), site).(*state)
	if st.Windows[0].Checks != 2 {
		t.Fatalf("state counts %d checks, want 2", st.Windows[0].Checks)
	}
}

func TestMalformedMessagesGoToDeadLetters(t *testing.T) {
	h := newHarness(t, at(12, 0, 0))
	good := result(site, "good", at(12, 1, 0))
	unknownField := bytes.Replace(encode(t, good), []byte(`{`), []byte(`{"surprise":1,`), 1)
	mismatched := encode(t, result("https://other.example/", "x", at(12, 1, 0)))
	cases := []struct {
		name   string
		value  []byte
		reason string
	}{
		{"not json", []byte("\x00garbage"), "invalid json"},
		{"unknown field", unknownField, "unknown field"},
		{"future version", bytes.Replace(encode(t, good), []byte(`"v":1`), []byte(`"v":2`), 1), "unsupported version"},
		{"key is not the url", mismatched, "differs from url"},
		{"no value", nil, "empty value"},
	}
	for i, c := range cases {
		var msg any = c.value
		if c.value == nil {
			msg = nil
		}
		h.tt.Consume(string(testTopics.Failed), site, msg)
		key, v, ok := h.dead.Next()
		if !ok {
			t.Fatalf("%s: no dead letter", c.name)
		}
		dl := v.(*codecs.DeadLetter)
		if key != site || string(dl.Key) != site || dl.Topic != string(testTopics.Failed) ||
			dl.Offset != int64(i) || dl.Consumer != "windows" || !bytes.Equal(dl.Value, c.value) ||
			!bytes.Contains([]byte(dl.Reason), []byte(c.reason)) || dl.FailedAt.IsZero() {
			t.Fatalf("%s: dead letter %+v (key %q), want topic %s offset %d reason containing %q and the original bytes",
				c.name, dl, key, testTopics.Failed, i, c.reason)
		}
	}

	// The processor is still running and counts the next good event.
	h.consume(good)
	h.consume(result(site, "next", at(12, 5, 0)))
	h.expectOne(good)
	if got := h.counter("sitewatch_windows_dead_letters_total"); got != float64(len(cases)) {
		t.Fatalf("dead-letter counter %v, want %d", got, len(cases))
	}
	if got := h.counter("sitewatch_windows_events_consumed_total"); got != float64(len(cases)+2) {
		t.Fatalf("consumed counter %v, want %d", got, len(cases)+2)
	}
}

func TestAggregatesMatchExactOnKnownData(t *testing.T) {
	h := newHarness(t, at(12, 0, 0))
	rnd := rand.New(rand.NewPCG(7, 8))
	var rs []*codecs.Result
	for i := range 300 { // one check a second for five minutes
		checkedAt := at(12, 0, 0).Add(time.Duration(i) * time.Second).Add(time.Duration(rnd.IntN(1e9)))
		id := "e" + string(rune('a'+i%26)) + time.Duration(i).String()
		var r *codecs.Result
		switch {
		case i%50 == 0:
			r = result(site, id, checkedAt, failed(codecs.ErrConnect, 0, nil))
		case i%37 == 0:
			r = result(site, id, checkedAt, failed(codecs.ErrRegexp, 200, ptr(math.Exp(4+rnd.NormFloat64()))))
		case i%23 == 0:
			r = result(site, id, checkedAt, failed(codecs.ErrStatus, 500+i%4, ptr(math.Exp(3+rnd.NormFloat64()))))
		default:
			r = result(site, id, checkedAt, responseMS(math.Exp(4+1.2*rnd.NormFloat64())))
			if i%7 == 0 {
				r.StatusCode = 301
			}
		}
		rs = append(rs, r)
	}
	// Delivered out of order within the window: order must not matter.
	order := rnd.Perm(len(rs))
	for _, i := range order {
		h.consume(rs[i])
	}
	h.consume(result(site, "next", at(12, 5, 0)))
	w := h.expectOne(rs...)
	if w.Checks != 300 || w.Failures == 0 || w.RegexpFailures == 0 || w.StatusCounts["0"] == 0 || w.Responses == w.Checks {
		t.Fatalf("test data does not exercise every column: %+v", w)
	}
	exact := expectedWindows(rs, DefaultWindowSize)[windowKey{site, at(12, 0, 0), codecs.DefaultRegion}]
	t.Logf("p50 %.3f p95 %.3f p99 %.3f; percentile_cont %.3f %.3f %.3f",
		*w.ResponseP50MS, *w.ResponseP95MS, *w.ResponseP99MS,
		*exact.ResponseP50MS, *exact.ResponseP95MS, *exact.ResponseP99MS)
}

func TestFutureEventDoesNotMakeLaterEventsTooLate(t *testing.T) {
	h := newHarness(t, at(12, 1, 0))
	// A checker whose clock runs a day ahead.
	h.deliver(result(site, "skewed", at(12, 1, 0).Add(24*time.Hour)))
	a1 := result(site, "a1", at(12, 1, 0))
	h.consume(a1)
	if got := h.counter("sitewatch_windows_too_late_events_total"); got != 0 {
		t.Fatalf("too-late counter %v after a skewed event, want 0", got)
	}
	h.clock.Set(at(12, 5, 10))
	h.consume(result(site, "b1", at(12, 5, 10)))
	h.expectOne(a1)
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"missing topics":   {Topics: Topics{Succeeded: "s"}},
		"negative grace":   {Topics: testTopics, Grace: -time.Second},
		"forget too early": {Topics: testTopics, ForgetAfter: time.Minute},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	// Two processors on one registry is a wiring mistake New reports.
	reg := prometheus.NewRegistry()
	tt := tester.New(t)
	if _, err := New(Config{Topics: testTopics, Registerer: reg, GokaOptions: []goka.ProcessorOption{goka.WithTester(tt)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Topics: testTopics, Registerer: reg, Group: "other", GokaOptions: []goka.ProcessorOption{goka.WithTester(tt)}}); err == nil {
		t.Fatal("second processor registered the same metrics")
	}
}

// While one input topic lags behind the other (catching up on a backlog,
// goka interleaves the two topics by message, not by event time), the
// lagging topic's events still find their windows.
func TestLaggingTopicKeepsWindowsOpen(t *testing.T) {
	h := newHarness(t, at(12, 40, 0)) // the wall clock is far ahead: a backlog
	f1 := result(site, "f1", at(12, 0, 30), failed(codecs.ErrTimeout, 0, nil))
	h.deliver(f1)
	s1 := result(site, "s1", at(12, 1, 0))
	h.deliver(s1)
	var ss []*codecs.Result
	for i, m := range []int{6, 11, 16} {
		s := result(site, "s"+strconv.Itoa(i+2), at(12, m, 0))
		ss = append(ss, s)
		h.deliver(s)
	}
	if got := h.emitted(); len(got) != 3 || got[0].Checks != 2 || got[0].Revision != 2 {
		t.Fatalf("emitted %+v, want three windows, the first with two checks", got)
	}

	// The failed topic is read up to 12:00:30 only: its event from 12:03
	// is late by 13 minutes of the URL's watermark, yet counts.
	f2 := result(site, "f2", at(12, 3, 0), failed(codecs.ErrTimeout, 0, nil))
	h.deliver(f2)
	h.expectOne(f1, s1, f2)

	// Once the failed topic catches up, the old windows are dropped and a
	// straggler on the succeeded topic is too late.
	h.deliver(result(site, "f3", at(12, 20, 0), failed(codecs.ErrTimeout, 0, nil)))
	h.expectOne(ss[2]) // [12:15, 12:20) closed by the watermark
	h.deliver(result(site, "s-late", at(12, 4, 0)))
	h.expectNone()
	if got := h.counter("sitewatch_windows_too_late_events_total"); got != 1 {
		t.Fatalf("too-late counter %v, want 1", got)
	}
	st := h.tt.TableValue(goka.GroupTable(DefaultGroup), site).(*state)
	if first := st.Windows[0].Start; !first.Equal(at(12, 10, 0)) {
		t.Fatalf("oldest window kept starts %v, want 12:10 (12:16 minus grace)", first)
	}

	// A topic that delivers nothing for a while no longer holds windows
	// back: only the succeeded topic is read from now on.
	h.clock.Set(at(12, 40, 0).Add(topicIdle + time.Second))
	h.deliver(result(site, "s-next", at(12, 30, 0)))
	st = h.tt.TableValue(goka.GroupTable(DefaultGroup), site).(*state)
	// Held back by the failed topic (12:20) it would keep [12:15, 12:20).
	if len(st.Windows) != 1 || !st.Windows[0].Start.Equal(at(12, 30, 0)) {
		t.Fatalf("kept %d windows, oldest from %v; want only [12:30, 12:35)", len(st.Windows), st.Windows[0].Start)
	}
}
