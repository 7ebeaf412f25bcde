package alerts

import (
	"context"
	"fmt"
	"log/slog"
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
	Changes:     "status_changes",
	DeadLetters: "sitewatch_dead_letters",
}

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// check builds the i-th check (one a minute) of url, up or down.
func check(url string, i int, up bool) *codecs.Result {
	at := t0.Add(time.Duration(i) * time.Minute)
	r := &codecs.Result{
		V: 1, EventID: fmt.Sprintf("%s#%d", url, i), URL: url, ScheduledAt: at, CheckedAt: at,
		Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "test",
	}
	if !up {
		r.Outcome, r.StatusCode = codecs.OutcomeDown, 503
		r.ErrorKind, r.ErrorMessage = ptr(codecs.ErrStatus), ptr("status 503, expected 2xx or 3xx")
	}
	return r
}

// pattern turns "dddduu" into checks 0.. of url.
func pattern(url, s string) []*codecs.Result {
	var out []*codecs.Result
	for i, c := range s {
		out = append(out, check(url, i, c == 'u'))
	}
	return out
}

type harness struct {
	t       *testing.T
	tt      *tester.Tester
	p       *Processor
	reg     *prometheus.Registry
	changes *tester.QueueTracker
	dead    *tester.QueueTracker
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, tt: tester.New(t), reg: prometheus.NewRegistry()}
	cfg.Topics = testTopics
	cfg.Registerer = h.reg
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.GokaOptions = []goka.ProcessorOption{goka.WithTester(h.tt)}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	h.p = p
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	h.changes = h.tt.NewQueueTracker(string(testTopics.Changes))
	h.dead = h.tt.NewQueueTracker(string(testTopics.DeadLetters))
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func (h *harness) consume(rs ...*codecs.Result) {
	h.t.Helper()
	for _, r := range rs {
		topic := testTopics.Succeeded
		if !r.Up() {
			topic = testTopics.Failed
		}
		data, err := codecs.ResultCodec{}.Encode(r)
		if err != nil {
			h.t.Fatal(err)
		}
		h.tt.Consume(string(topic), r.URL, data)
	}
}

// emitted returns the changes emitted since the last call.
func (h *harness) emitted() []*codecs.StatusChange {
	h.t.Helper()
	var out []*codecs.StatusChange
	for {
		key, v, ok := h.changes.Next()
		if !ok {
			return out
		}
		c := v.(*codecs.StatusChange)
		if key != c.URL {
			h.t.Errorf("change keyed %q, url %q", key, c.URL)
		}
		out = append(out, c)
	}
}

func kinds(cs []*codecs.StatusChange) string {
	s := ""
	for _, c := range cs {
		if s != "" {
			s += " "
		}
		s += c.Kind
	}
	return s
}

func TestThresholds(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	tests := []struct {
		name, checks, want string
		rule               Rule
	}{
		{name: "healthy", checks: "uuuuuuuu", want: ""},
		{name: "fails 5 then recovers", checks: "uuddddduuu", want: "down up"},
		{name: "fails twice then recovers", checks: "uudduuddu", want: ""},
		{name: "first checks down", checks: "dddu", want: "down"},
		{name: "first checks down, then back", checks: "ddduu", want: "down up"},
		{name: "one success is not enough", checks: "uudddudddu", want: "down"},
		{name: "two down periods", checks: "udddduuddduu", want: "down up down up"},
		{name: "site override", checks: "uudddddu", rule: Rule{Failures: 5, Successes: 1}, want: "down up"},
		{name: "site override, under", checks: "uuddddu", rule: Rule{Failures: 5}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{Rules: map[string]Rule{site: tc.rule}})
			h.consume(pattern(site, tc.checks)...)
			if got := kinds(h.emitted()); got != tc.want {
				t.Errorf("checks %s: changes %q, want %q", tc.checks, got, tc.want)
			}
		})
	}
}

// TestChangeFields checks the contract's fields of a down and an up change
// and that their ids are stable.
func TestChangeFields(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{Rules: map[string]Rule{site: {Name: "Shop"}}})
	h.consume(pattern(site, "uudddddduuu")...)
	cs := h.emitted()
	if len(cs) != 2 {
		t.Fatalf("changes %q, want down up", kinds(cs))
	}
	down, up := cs[0], cs[1]
	if down.Kind != codecs.ChangeDown || down.State != codecs.StateDown || down.PreviousState != codecs.StateUp ||
		!down.Since.Equal(t0.Add(2*time.Minute)) || !down.ChangedAt.Equal(t0.Add(4*time.Minute)) ||
		down.Consecutive != 3 || down.EventID != site+"#4" || down.Name != "Shop" || down.StatusCode != 503 ||
		down.ErrorKind == nil || *down.ErrorKind != codecs.ErrStatus || down.ErrorMessage == nil {
		t.Errorf("down change: %+v", down)
	}
	if up.Kind != codecs.ChangeUp || up.State != codecs.StateUp || up.PreviousState != codecs.StateDown ||
		!up.Since.Equal(t0.Add(8*time.Minute)) || !up.ChangedAt.Equal(t0.Add(9*time.Minute)) ||
		up.Consecutive != 2 || up.ErrorKind != nil {
		t.Errorf("up change: %+v", up)
	}
	if down.ChangeID == up.ChangeID || down.ChangeID != changeID(site, codecs.ChangeDown, site+"#4") {
		t.Errorf("change ids %s %s not derived from url, kind and crossing event", down.ChangeID, up.ChangeID)
	}
	// Every change passes the strict codec.
	for _, c := range cs {
		data, err := codecs.StatusChangeCodec{}.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := codecs.DecodeStatusChange(data); err != nil {
			t.Errorf("%s change rejected by the codec: %v", c.Kind, err)
		}
	}
}

// TestRedeliveredAndLateEvents: a re-delivered event does not move the
// state again, and an event older than the newest applied is not applied,
// so it can neither count twice nor move the state backwards.
func TestRedeliveredAndLateEvents(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{})
	rs := pattern(site, "uuddd")
	h.consume(rs...)
	if got := kinds(h.emitted()); got != "down" {
		t.Fatalf("changes %q, want down", got)
	}
	// The two failures before the crossing one again: no second down.
	h.consume(rs[2], rs[3])
	// A good check from before the failures, arriving late: the site
	// stays down (two of those would otherwise bring it "up").
	early := check(site, 1, true)
	early.EventID = "late-1"
	early2 := check(site, 0, true)
	early2.EventID = "late-2"
	h.consume(early, early2)
	if got := kinds(h.emitted()); got != "" {
		t.Errorf("after re-deliveries and late events: %q, want nothing", got)
	}
	// The crossing event again: its change is sent again, same id (a
	// crash may have lost it); nothing else.
	h.consume(rs[4])
	again := h.emitted()
	if len(again) != 1 || again[0].Kind != codecs.ChangeDown || again[0].ChangeID != changeID(site, codecs.ChangeDown, rs[4].EventID) {
		t.Errorf("crossing event re-delivered: %q, want the same down change", kinds(again))
	}
	h.consume(check(site, 5, true), check(site, 6, true))
	if got := kinds(h.emitted()); got != "up" {
		t.Errorf("then two good checks: %q, want up", got)
	}
	if n := counter(t, h.reg, "sitewatch_alerts_late_events_total"); n != 2 {
		t.Errorf("late events = %v, want 2", n)
	}
	if n := counter(t, h.reg, "sitewatch_alerts_duplicate_events_total"); n != 3 {
		t.Errorf("duplicate events = %v, want 3", n)
	}
}

// TestReplayOntoOlderStateSameIDs is a crash that lost the table writes
// but not the emissions: a new processor replays the events onto the older
// state and derives the same changes with the same ids.
func TestReplayOntoOlderStateSameIDs(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	r := rules{failures: 3, successes: 2, certWarning: 14 * 24 * time.Hour}
	run := func() []string {
		st := &state{}
		var ids []string
		for _, ev := range pattern(site, "udddduu") {
			_, out := r.apply(st, ev, Rule{})
			for _, c := range out {
				ids = append(ids, c.Kind+":"+c.ChangeID)
			}
		}
		return ids
	}
	a, b := run(), run()
	if len(a) != 2 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("replay gave %v, first run %v", b, a)
	}
}

func TestCertificateExpiry(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{})
	withCert := func(i int, notAfter time.Time) *codecs.Result {
		r := check(site, i, true)
		r.TLSNotAfter = &notAfter
		return r
	}
	// A certificate that expires in 3 days, seen at every check.
	soon := t0.Add(72 * time.Hour)
	for i := range 5 {
		h.consume(withCert(i, soon))
	}
	cs := h.emitted()
	if kinds(cs) != codecs.ChangeCertExpiring {
		t.Fatalf("changes %q, want one cert_expiring", kinds(cs))
	}
	if c := cs[0]; c.TLSNotAfter == nil || !c.TLSNotAfter.Equal(soon) || c.State != codecs.StateUp {
		t.Errorf("cert_expiring: %+v", c)
	}
	// Renewed: 90 days left.
	for i := 5; i < 8; i++ {
		h.consume(withCert(i, t0.Add(90*24*time.Hour)))
	}
	if got := kinds(h.emitted()); got != codecs.ChangeCertOK {
		t.Errorf("after renewal: %q, want one cert_ok", got)
	}
	// Plain checks (no certificate) change nothing.
	h.consume(check(site, 8, true))
	if got := kinds(h.emitted()); got != "" {
		t.Errorf("check without certificate: %q", got)
	}

	// A certificate with 20 days left is fine under the default 14 and
	// expiring under -alert-cert-days 30.
	for days, want := range map[int]string{14: "", 30: codecs.ChangeCertExpiring} {
		h := newHarness(t, Config{CertDays: days})
		h.consume(withCert(0, t0.Add(20*24*time.Hour)))
		if got := kinds(h.emitted()); got != want {
			t.Errorf("cert days %d, 20 days left: %q, want %q", days, got, want)
		}
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	h.tt.Consume(string(testTopics.Failed), "https://a.example/", []byte("{not json"))
	r := check("https://b.example/", 0, false)
	data, _ := codecs.ResultCodec{}.Encode(r)
	h.tt.Consume(string(testTopics.Failed), "https://other.example/", data)
	n := 0
	for {
		_, v, ok := h.dead.Next()
		if !ok {
			break
		}
		n++
		if v.(*codecs.DeadLetter).Reason == "" {
			t.Error("dead letter without a reason")
		}
	}
	if n != 2 {
		t.Errorf("dead letters = %d, want 2", n)
	}
	if got := kinds(h.emitted()); got != "" {
		t.Errorf("changes from bad messages: %q", got)
	}
}

func TestConfigRejected(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Topics: testTopics, Failures: -1})
	if err == nil {
		t.Error("negative failures accepted")
	}
	_, err = New(Config{Topics: Topics{Succeeded: "a"}})
	if err == nil {
		t.Error("missing topics accepted")
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
