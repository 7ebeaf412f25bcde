package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/scheduler"
)

// t0 is deliberately not aligned to a minute.
var t0 = time.Date(2026, 3, 1, 12, 0, 7, 123456789, time.UTC)

// fired is one request as the Emit function saw it, with the clock's time.
type fired struct {
	req codecs.Request
	at  time.Time
}

// recorder is the Emit function of the tests.
type recorder struct {
	mu    sync.Mutex
	clock *fakeClock
	got   []fired
	fail  func(*codecs.Request) error
}

func (r *recorder) emit(_ context.Context, req *codecs.Request) error {
	if r.fail != nil {
		if err := r.fail(req); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fired{req: *req, at: r.clock.Now()})
	return nil
}

func (r *recorder) all() []fired {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]fired(nil), r.got...)
}

// byURL groups the scheduled_at values of the requests per URL, in order.
func (r *recorder) byURL() map[string][]time.Time {
	m := map[string][]time.Time{}
	for _, f := range r.all() {
		m[f.req.URL] = append(m[f.req.URL], f.req.ScheduledAt)
	}
	return m
}

func sites(n int, interval time.Duration, prefix string) []config.Site {
	out := make([]config.Site, n)
	for i := range out {
		out[i] = config.Site{
			URL:      fmt.Sprintf("https://%s-%d.example.test/health", prefix, i),
			Method:   "GET",
			Interval: interval,
			Timeout:  interval / 6,
			Line:     i + 3,
		}
	}
	return out
}

// start runs a scheduler on a fake clock and stops it when the test ends.
func start(t *testing.T, ss []config.Site, at time.Time, opts scheduler.Options) (*scheduler.Scheduler, *fakeClock, *recorder) {
	t.Helper()
	clock := newFakeClock(at)
	rec := &recorder{clock: clock}
	opts.Clock = clock
	opts.Emit = rec.emit
	s, err := scheduler.New(ss, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s, clock, rec
}

func TestTenThousandSitesSpreadEvenlyOverTheInterval(t *testing.T) {
	const n = 10000
	interval := 60 * time.Second
	ss := sites(n, interval, "spread")
	ss[7].Regexp = regexp.MustCompile(`ok\s+\d+`)
	ss[7].ExpectStatus = []int{200, 301}
	ss[7].Headers = map[string]string{"User-Agent": "sitewatch"}
	ss[7].Method = "HEAD"
	_, clock, rec := start(t, ss, t0, scheduler.Options{Grace: -1})
	clock.runUntil(t, t0.Add(interval))

	got := rec.all()
	if len(got) != n {
		t.Fatalf("requests in one interval = %d, want one per site (%d)", len(got), n)
	}
	perSecond := map[int64]int{}
	seen := map[string]bool{}
	for _, f := range got {
		r := f.req
		if seen[r.URL] {
			t.Fatalf("site %s requested twice in one interval", r.URL)
		}
		seen[r.URL] = true
		if !f.at.Equal(r.ScheduledAt) {
			t.Fatalf("%s: requested at %v, scheduled for %v (a fake clock has no lag)", r.URL, f.at, r.ScheduledAt)
		}
		if r.ScheduledAt.Before(t0) || !r.ScheduledAt.Before(t0.Add(interval)) {
			t.Fatalf("%s: scheduled_at %v outside the first interval", r.URL, r.ScheduledAt)
		}
		if r.ScheduledAt.Location() != time.UTC {
			t.Fatalf("scheduled_at not in UTC: %v", r.ScheduledAt)
		}
		perSecond[r.ScheduledAt.Sub(t0).Milliseconds()/1000]++
	}
	share := n / 60
	for sec := int64(0); sec < 60; sec++ {
		if c := perSecond[sec]; c > 2*share || c == 0 {
			t.Errorf("second %d of the interval holds %d requests; fair share is %d", sec, c, share)
		}
	}

	// Every request must be a valid wire message carrying the site's spec.
	for _, f := range got {
		r := f.req
		if want := scheduler.RequestID(r.URL, r.ScheduledAt, codecs.DefaultRegion); r.RequestID != want {
			t.Fatalf("%s: request_id %q, want %q", r.URL, r.RequestID, want)
		}
		if !r.NextAt.Equal(r.ScheduledAt.Add(interval)) {
			t.Fatalf("%s: next_at %v, want scheduled_at+interval", r.URL, r.NextAt)
		}
		if want := scheduler.SlotStart(r.URL, interval, r.ScheduledAt); !want.Equal(r.ScheduledAt) {
			t.Fatalf("%s: scheduled_at %v is not a slot start (%v)", r.URL, r.ScheduledAt, want)
		}
	}
	var special codecs.Request
	for _, f := range got {
		if f.req.URL == ss[7].URL {
			special = f.req
		}
	}
	data, err := codecs.RequestCodec{}.Encode(&special)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	back, err := codecs.DecodeRequest(data)
	if err != nil {
		t.Fatalf("a scheduled request does not decode strictly: %v\n%s", err, data)
	}
	if back.Method != "HEAD" || back.TimeoutMS != 10000 || back.Regexp == nil || *back.Regexp != `ok\s+\d+` ||
		fmt.Sprint(back.ExpectStatus) != "[200 301]" || back.Headers["User-Agent"] != "sitewatch" {
		t.Errorf("request lost the site's spec: %+v", back)
	}
}

func TestInstancesAndRestartsProduceTheSameSlots(t *testing.T) {
	var ss []config.Site
	ss = append(ss, sites(40, 30*time.Second, "a")...)
	ss = append(ss, sites(40, 60*time.Second, "b")...)
	ss = append(ss, sites(20, 5*time.Minute, "c")...)
	end := t0.Add(12 * time.Minute)

	// One instance runs all along; another starts 3m17s later (a second
	// instance, or the first one restarted) on a clock that is 1.5 ms off.
	_, clockA, recA := start(t, ss, t0, scheduler.Options{})
	lateStart := t0.Add(3*time.Minute + 17*time.Second)
	_, clockB, recB := start(t, ss, lateStart.Add(1500*time.Microsecond), scheduler.Options{})
	clockA.runUntil(t, end)
	clockB.runUntil(t, end)

	a, b := recA.byURL(), recB.byURL()
	for _, s := range ss {
		seqA, seqB := a[s.URL], b[s.URL]
		for i := 1; i < len(seqA); i++ {
			if d := seqA[i].Sub(seqA[i-1]); d != s.Interval {
				t.Fatalf("%s: consecutive slots %v apart, want %v", s.URL, d, s.Interval)
			}
		}
		// From the first slot B requested on, both must agree exactly.
		if len(seqB) == 0 {
			t.Fatalf("%s: second instance requested nothing", s.URL)
		}
		var tailA []time.Time
		for _, at := range seqA {
			if !at.Before(seqB[0]) {
				tailA = append(tailA, at)
			}
		}
		if fmt.Sprint(tailA) != fmt.Sprint(seqB) {
			t.Fatalf("%s: instances disagree:\n A %v\n B %v", s.URL, tailA, seqB)
		}
		if seqB[0].Before(lateStart.Add(-scheduler.DefaultGrace)) {
			t.Fatalf("%s: restarted instance requested slot %v, more than the grace before its start %v", s.URL, seqB[0], lateStart)
		}
	}
	ids := map[string]bool{}
	for _, f := range recA.all() {
		ids[f.req.RequestID] = true
	}
	for _, f := range recB.all() {
		if !ids[f.req.RequestID] {
			t.Fatalf("request_id %s of instance B never produced by instance A", f.req.RequestID)
		}
	}
}

func TestReplaceKeepsSlotsOfUnchangedSites(t *testing.T) {
	interval := time.Minute
	old := sites(60, interval, "old")
	s, clock, rec := start(t, old, t0, scheduler.Options{Grace: -1})
	reload := t0.Add(150 * time.Second)
	clock.runUntil(t, reload)

	// Keep the first 30 (one with a new timeout), drop the rest, add 30 new
	// ones, and change the interval of one kept site.
	next := append([]config.Site(nil), old[:30]...)
	next[0].Timeout = 2 * time.Second
	next[1].Interval = 2 * time.Minute
	added := sites(30, interval, "new")
	next = append(next, added...)
	before := clock.seq()
	if err := s.Replace(next); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	clock.idle(t, before) // the reload has been applied
	clock.runUntil(t, reload.Add(10*time.Minute))

	got := rec.byURL()
	for i, site := range old {
		seq := got[site.URL]
		switch {
		case i == 1:
			for j := 1; j < len(seq); j++ {
				d := seq[j].Sub(seq[j-1])
				if seq[j].After(reload) && d%(2*time.Minute) != 0 && seq[j-1].After(reload) {
					t.Errorf("changed site: slots %v apart after the reload", d)
				}
				if d <= 0 {
					t.Errorf("changed site: slot %v requested again", seq[j])
				}
			}
			if want := scheduler.SlotStart(site.URL, 2*time.Minute, seq[len(seq)-1]); !want.Equal(seq[len(seq)-1]) {
				t.Errorf("changed site: last slot %v is not on its new 2m grid", seq[len(seq)-1])
			}
		case i < 30:
			// Kept: an unbroken chain of slots across the reload.
			if len(seq) != 12 && len(seq) != 13 {
				t.Errorf("%s: %d slots in 12.5 minutes", site.URL, len(seq))
			}
			for j := 1; j < len(seq); j++ {
				if d := seq[j].Sub(seq[j-1]); d != interval {
					t.Fatalf("%s: slots %v and %v across the reload are %v apart, want %v", site.URL, seq[j-1], seq[j], d, interval)
				}
			}
		default:
			if last := seq[len(seq)-1]; last.After(reload) {
				t.Errorf("%s: removed site still requested at %v", site.URL, last)
			}
		}
	}
	for _, f := range rec.all() {
		if f.req.URL == next[0].URL && f.req.ScheduledAt.After(reload) && f.req.TimeoutMS != 2000 {
			t.Fatalf("kept site did not pick up its new timeout: %d ms", f.req.TimeoutMS)
		}
	}
	for _, site := range added {
		seq := got[site.URL]
		if len(seq) < 9 {
			t.Fatalf("%s: new site requested %d times in 10 minutes", site.URL, len(seq))
		}
		if seq[0].Before(reload) || seq[0].After(reload.Add(interval)) {
			t.Errorf("%s: first slot %v, want within one interval after the reload %v", site.URL, seq[0], reload)
		}
	}
}

func TestReplaceRefusesInvalidSitesAndKeepsTheOldSet(t *testing.T) {
	ss := sites(3, time.Minute, "keep")
	s, clock, rec := start(t, ss, t0, scheduler.Options{Grace: -1})
	bad := []struct {
		name  string
		sites []config.Site
	}{
		{"zero interval", []config.Site{{URL: "https://x.test/", Interval: 0, Timeout: time.Second}}},
		{"zero timeout", []config.Site{{URL: "https://x.test/", Interval: time.Minute}}},
		{"duplicate url", append(sites(1, time.Minute, "d"), sites(1, time.Minute, "d")...)},
		{"empty url", []config.Site{{Interval: time.Minute, Timeout: time.Second}}},
	}
	for _, tc := range bad {
		if err := s.Replace(tc.sites); err == nil {
			t.Errorf("%s: Replace accepted it", tc.name)
		}
	}
	clock.runUntil(t, t0.Add(2*time.Minute))
	if got := rec.byURL(); len(got) != 3 {
		t.Fatalf("after refused reloads, requests went to %d sites, want the 3 old ones", len(got))
	}
	if _, err := scheduler.New(ss, scheduler.Options{}); err == nil {
		t.Error("New without Emit succeeded")
	}
}

func TestSuspendedProcessRequestsTheCurrentSlotNotStaleOnes(t *testing.T) {
	reg := prometheus.NewRegistry()
	ss := sites(50, time.Minute, "suspend")
	_, clock, rec := start(t, ss, t0, scheduler.Options{Grace: -1, Registerer: reg})
	clock.runUntil(t, t0.Add(time.Minute))
	before := len(rec.all())

	// The machine sleeps for 5m30s: the pending timer fires only then.
	wake := t0.Add(6*time.Minute + 30*time.Second)
	clock.set(wake)
	clock.runUntil(t, wake)

	after := rec.all()[before:]
	if len(after) != len(ss) {
		t.Fatalf("on wake-up %d requests, want exactly one per site (%d)", len(after), len(ss))
	}
	for _, f := range after {
		if !wake.Before(f.req.NextAt) || f.req.ScheduledAt.After(wake) {
			t.Fatalf("%s: request for slot %v..%v sent at %v would be stale", f.req.URL, f.req.ScheduledAt, f.req.NextAt, wake)
		}
	}
	// Each site skipped 4 or 5 whole slots during the 5m30s sleep.
	missed := metric(t, reg, "sitewatch_schedule_missed_slots_total")
	if missed < 4*50 || missed > 5*50 {
		t.Errorf("missed slots = %v, want between 200 and 250", missed)
	}
}

func TestEmitErrorsAreCountedAndSchedulingGoesOn(t *testing.T) {
	reg := prometheus.NewRegistry()
	clock := newFakeClock(t0)
	rec := &recorder{clock: clock}
	var failures int
	rec.fail = func(r *codecs.Request) error {
		if r.URL == "https://fail-0.example.test/health" {
			failures++
			return errors.New("queue full")
		}
		return nil
	}
	s, err := scheduler.New(sites(5, 10*time.Second, "fail"), scheduler.Options{Clock: clock, Emit: rec.emit, Registerer: reg, Grace: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	clock.runUntil(t, t0.Add(time.Minute))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := metric(t, reg, "sitewatch_schedule_emit_errors_total"); got != 6 || failures != 6 {
		t.Errorf("emit errors metric = %v (failures %d), want 6", got, failures)
	}
	if got := metric(t, reg, "sitewatch_schedule_requests_total"); got != 24 {
		t.Errorf("requests metric = %v, want 24 (4 healthy sites x 6 slots)", got)
	}
	if got := metric(t, reg, "sitewatch_schedule_sites"); got != 5 {
		t.Errorf("sites gauge = %v, want 5", got)
	}
}

func TestSlotArithmetic(t *testing.T) {
	url := "https://example.test/"
	iv := 90 * time.Second
	ph := scheduler.Phase(url, iv)
	if ph < 0 || ph >= iv {
		t.Fatalf("phase %v outside [0, %v)", ph, iv)
	}
	if ph != scheduler.Phase(url, iv) {
		t.Fatal("phase not deterministic")
	}
	for _, at := range []time.Time{
		t0, time.Unix(0, 0), time.Unix(-1_000_000, 5), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		s := scheduler.SlotStart(url, iv, at)
		if s.After(at) || !at.Before(s.Add(iv)) {
			t.Errorf("SlotStart(%v) = %v does not contain it", at, s)
		}
		if off := (s.UnixNano() - int64(ph)) % int64(iv); off != 0 {
			t.Errorf("SlotStart(%v) = %v not on the site's grid (off by %d)", at, s, off)
		}
		if again := scheduler.SlotStart(url, iv, s); !again.Equal(s) {
			t.Errorf("slot start %v maps to %v", s, again)
		}
	}
	a := scheduler.RequestID(url, t0, codecs.DefaultRegion)
	if a != scheduler.RequestID(url, t0, codecs.DefaultRegion) || len(a) != 32 {
		t.Fatalf("request id %q not a stable 32-hex id", a)
	}
	if a == scheduler.RequestID(url, t0.Add(iv), codecs.DefaultRegion) || a == scheduler.RequestID(url+"x", t0, codecs.DefaultRegion) {
		t.Fatal("request ids collide across slots or sites")
	}
	// Phases of many sites cover the interval: no empty tenth.
	var tenths [10]int
	for i := range 1000 {
		tenths[scheduler.Phase(fmt.Sprintf("https://s%d.test/", i), iv)*10/iv]++
	}
	sorted := tenths[:]
	sort.Ints(sorted)
	if sorted[0] < 50 {
		t.Errorf("phase distribution uneven: %v", tenths)
	}
}

// metric reads the value of an unlabelled counter or gauge from reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return v
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
