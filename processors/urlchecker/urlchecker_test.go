package urlchecker

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

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
)

// t0 is the start of the slots the tests request.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const interval = time.Minute

// sites is an httptest server whose paths behave like different sites and
// that counts the requests each path received.
type sites struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newSites(t *testing.T) *sites {
	s := &sites{hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/down"):
			http.Error(w, "broken", http.StatusInternalServerError)
		case strings.HasPrefix(r.URL.Path, "/slow"):
			time.Sleep(200 * time.Millisecond)
			fmt.Fprintln(w, "hello 42")
		case strings.HasPrefix(r.URL.Path, "/hang"):
			<-r.Context().Done()
		default:
			fmt.Fprintln(w, "hello 42")
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sites) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// harness runs a Processor on goka's tester.
type harness struct {
	t                 *testing.T
	tt                *tester.Tester
	p                 *Processor
	reg               *prometheus.Registry
	mu                sync.Mutex
	now               time.Time
	succeeded, failed *tester.QueueTracker
	dead              *tester.QueueTracker
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, tt: tester.New(t), reg: prometheus.NewRegistry(), now: t0.Add(time.Second)}
	if cfg.Checker == nil {
		cfg.Checker = checker.New(checker.Options{})
	}
	cfg.InstanceID = "test-instance"
	cfg.Now = h.clock
	cfg.Logger = quiet()
	cfg.Registerer = h.reg
	cfg.ProcessorOptions = []goka.ProcessorOption{goka.WithTester(h.tt)}
	// The tester's flushing producer waits for every consumer, including
	// the message whose deferred commit is waiting for this very emit; the
	// plain producer does not.
	cfg.EmitterOptions = []goka.EmitterOption{goka.WithEmitterTester(h.tt), goka.WithEmitterProducerBuilder(h.tt.ProducerBuilder())}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.p = p
	h.succeeded = h.tt.NewQueueTracker(codecs.TopicSucceeded)
	h.failed = h.tt.NewQueueTracker(codecs.TopicFailed)
	h.dead = h.tt.NewQueueTracker(codecs.TopicDeadLetters)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("processor not ready after 10s")
	}
	return h
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) setNow(t time.Time) {
	h.mu.Lock()
	h.now = t
	h.mu.Unlock()
}

func request(url string, slot time.Time) *codecs.Request {
	re := `hello \d+`
	return &codecs.Request{
		RequestID:   fmt.Sprintf("req-%s-%d", url, slot.Unix()),
		URL:         url,
		ScheduledAt: slot,
		NextAt:      slot.Add(interval),
		Method:      "GET",
		TimeoutMS:   2000,
		Regexp:      &re,
	}
}

func encode(t *testing.T, r *codecs.Request) []byte {
	t.Helper()
	data, err := codecs.RequestCodec{}.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// send consumes one request; it returns once the request was fully
// handled (its offset committed, so its result, if any, emitted).
func (h *harness) send(r *codecs.Request) {
	h.tt.Consume(codecs.TopicRequests, r.URL, encode(h.t, r))
}

func (h *harness) results(tr *tester.QueueTracker) []*codecs.Result {
	var out []*codecs.Result
	for {
		_, v, ok := tr.Next()
		if !ok {
			return out
		}
		out = append(out, v.(*codecs.Result))
	}
}

func (h *harness) metric(name string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
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

func TestEachSlotIsCheckedOnceAndResultsGoToTheirTopic(t *testing.T) {
	srv := newSites(t)
	h := newHarness(t, Config{})
	up, down, nomatch := srv.URL+"/up", srv.URL+"/down", srv.URL+"/nomatch"
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.mu.Lock()
		srv.hits[r.URL.Path]++
		srv.mu.Unlock()
		switch r.URL.Path {
		case "/down":
			http.Error(w, "broken", http.StatusInternalServerError)
		case "/nomatch":
			fmt.Fprintln(w, "goodbye")
		default:
			fmt.Fprintln(w, "hello 42")
		}
	})

	for _, u := range []string{up, down, nomatch} {
		h.send(request(u, t0))
	}
	// The same slots again, as a second emitter instance sends them.
	for _, u := range []string{up, down, nomatch} {
		h.send(request(u, t0))
	}
	for _, p := range []string{"/up", "/down", "/nomatch"} {
		if n := srv.hitsOf(p); n != 1 {
			t.Errorf("%s checked %d times for one slot, want 1", p, n)
		}
	}
	if got := h.metric("sitewatch_requests_duplicate_total"); got != 3 {
		t.Errorf("duplicates counted: %v, want 3", got)
	}

	ok := h.results(h.succeeded)
	bad := h.results(h.failed)
	if len(ok) != 1 || len(bad) != 2 {
		t.Fatalf("results: %d succeeded, %d failed; want 1 and 2", len(ok), len(bad))
	}
	r := ok[0]
	want := request(up, t0)
	if r.URL != up || r.EventID != want.RequestID || !r.ScheduledAt.Equal(t0) || r.Checker != "test-instance" ||
		r.Outcome != codecs.OutcomeUp || r.StatusCode != 200 || r.RegexpMatched == nil || !*r.RegexpMatched {
		t.Errorf("up result wrong: %+v", r)
	}
	kinds := map[string]string{}
	for _, r := range bad {
		if r.ErrorKind == nil || r.Outcome != codecs.OutcomeDown || !r.ScheduledAt.Equal(t0) || r.EventID == "" {
			t.Fatalf("failed result wrong: %+v", r)
		}
		kinds[r.URL] = *r.ErrorKind
	}
	if kinds[down] != codecs.ErrStatus || kinds[nomatch] != codecs.ErrRegexp {
		t.Errorf("error kinds = %v, want status for /down and regexp for /nomatch", kinds)
	}
	if got := h.metric("sitewatch_checks_total"); got != 3 {
		t.Errorf("checks counted: %v, want 3", got)
	}

	// The next slot is a new check.
	h.setNow(t0.Add(interval + time.Second))
	h.send(request(up, t0.Add(interval)))
	if n := srv.hitsOf("/up"); n != 2 {
		t.Errorf("next slot: /up checked %d times in total, want 2", n)
	}
	if got := h.results(h.succeeded); len(got) != 1 || !got[0].ScheduledAt.Equal(t0.Add(interval)) {
		t.Errorf("next slot result: %+v", got)
	}
}

func TestStaleAndOutdatedRequestsAreSkipped(t *testing.T) {
	srv := newSites(t)
	h := newHarness(t, Config{})
	u := srv.URL + "/site"

	// Received exactly when the next slot begins: stale.
	h.setNow(t0.Add(interval))
	h.send(request(u, t0))
	if n := srv.hitsOf("/site"); n != 0 {
		t.Fatalf("stale request was checked (%d hits)", n)
	}
	if got := h.metric("sitewatch_requests_stale_total"); got != 1 {
		t.Errorf("stale counted: %v, want 1", got)
	}

	// A stale request does not claim its slot...
	h.send(request(u, t0.Add(interval)))
	if n := srv.hitsOf("/site"); n != 1 {
		t.Fatalf("current slot checked %d times, want 1", n)
	}
	// ...and an older slot arriving after a newer one is not checked.
	h.setNow(t0.Add(interval + time.Second))
	h.send(request(u, t0.Add(30*time.Second)))
	if n := srv.hitsOf("/site"); n != 1 {
		t.Errorf("older slot was checked after a newer one")
	}
	if got := h.metric("sitewatch_requests_duplicate_total"); got != 1 {
		t.Errorf("duplicates counted: %v, want 1", got)
	}
	if got := len(h.results(h.succeeded)) + len(h.results(h.failed)); got != 1 {
		t.Errorf("%d results, want 1", got)
	}
}

func TestRedeliveredRequestIsCheckedAgain(t *testing.T) {
	srv := newSites(t)
	h := newHarness(t, Config{})
	u := srv.URL + "/site"
	h.send(request(srv.URL+"/other", t0))
	st, _ := h.tt.TableValue(goka.GroupTable(DefaultGroup), srv.URL+"/other").(*slotState)
	if st == nil || !st.ScheduledAt.Equal(t0) {
		t.Fatalf("group table after a check: %+v", st)
	}

	// A previous run accepted this very message (same partition and
	// offset) and crashed before committing: the table says "seen", but it
	// is the same message, so it must be checked.
	h.tt.SetTableValue(goka.GroupTable(DefaultGroup), u, &slotState{ScheduledAt: t0, Partition: st.Partition, Offset: st.Offset + 1})
	h.send(request(u, t0))
	if n := srv.hitsOf("/site"); n != 1 {
		t.Fatalf("redelivered request checked %d times, want 1", n)
	}
	// A second copy (another offset) is a duplicate.
	h.send(request(u, t0))
	if n := srv.hitsOf("/site"); n != 1 {
		t.Fatalf("duplicate of a redelivered request was checked")
	}
}

func TestInvalidRequestsGoToDeadLettersAndConsumptionGoesOn(t *testing.T) {
	srv := newSites(t)
	h := newHarness(t, Config{})
	good := request(srv.URL+"/site", t0)
	valid := string(encode(t, good))
	cases := []struct {
		name   string
		key    string
		value  []byte
		reason string
	}{
		{"not json", good.URL, []byte("GET / please"), "invalid json"},
		{"unknown field", good.URL, []byte(strings.Replace(valid, `"v":1`, `"v":1,"priority":9`, 1)), "unknown field"},
		{"future version", good.URL, []byte(strings.Replace(valid, `"v":1`, `"v":2`, 1)), "unsupported version"},
		{"missing url", "", []byte(strings.Replace(valid, `"url":"`+good.URL+`"`, `"url":""`, 1)), "url"},
		{"key is not the url", "https://elsewhere.test/", []byte(valid), "is not the request's url"},
		{"bad regexp", good.URL, []byte(strings.Replace(valid, `hello \\d+`, `hello (`, 1)), "regexp"},
		{"tombstone", good.URL, nil, "tombstone"},
	}
	for _, tc := range cases {
		if tc.value == nil {
			h.tt.Consume(codecs.TopicRequests, tc.key, nil)
		} else {
			h.tt.Consume(codecs.TopicRequests, tc.key, tc.value)
		}
		key, v, ok := h.dead.Next()
		if !ok {
			t.Fatalf("%s: no dead letter", tc.name)
		}
		dl := v.(*codecs.DeadLetter)
		if key != tc.key || dl.Topic != codecs.TopicRequests || dl.Consumer != string(DefaultGroup) ||
			string(dl.Value) != string(tc.value) || string(dl.Key) != tc.key || !strings.Contains(dl.Reason, tc.reason) || dl.FailedAt.IsZero() {
			t.Errorf("%s: dead letter %+v (value %q), want reason containing %q", tc.name, dl, dl.Value, tc.reason)
		}
	}
	if n := srv.hitsOf("/site"); n != 0 {
		t.Fatalf("an invalid request was checked")
	}
	if got := h.metric("sitewatch_requests_invalid_total"); got != float64(len(cases)) {
		t.Errorf("invalid counted: %v, want %d", got, len(cases))
	}
	h.send(good)
	if n := srv.hitsOf("/site"); n != 1 {
		t.Fatalf("a valid request after invalid ones was checked %d times, want 1", n)
	}
}
