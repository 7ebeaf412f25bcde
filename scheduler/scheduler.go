package scheduler

import (
	"github.com/sitewatch/sitewatch/internal/retry"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/telemetry"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/siterules"
)

// EmitFunc hands one request to the transport (in the emitter: a Kafka
// producer on status_request_created, keyed by req.URL). It is called from
// the scheduler's single goroutine, so it should not block for long: a
// buffering, retrying sender such as urlchecker.RequestEmitter returns at
// once. A returned error is counted and logged; the slot is not retried,
// since a late request would be stale.
type EmitFunc func(ctx context.Context, req *codecs.Request) error

// DefaultGrace is the default Options.Grace.
const DefaultGrace = 2 * time.Second

// Options configure a Scheduler.
type Options struct {
	// Emit receives every request. Required.
	Emit EmitFunc
	// Clock defaults to SystemClock().
	Clock Clock
	// Logger defaults to discarding logs.
	Logger *slog.Logger
	// Registerer receives the scheduler's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Grace is how far in the past a slot may have begun and still be
	// requested when the scheduler starts or a site is added (at most a
	// quarter of the site's interval). A small grace absorbs the moments a
	// restart or reload takes; it is kept small on purpose, so that a cold
	// start of thousands of sites does not request all their current slots
	// at once. Zero means DefaultGrace; negative means none.
	Grace time.Duration
	// Region is the emitters' region, part of every request id (see
	// RequestID); codecs.DefaultRegion when empty.
	Region string
	// Share, when not nil, is the part of the sites this instance
	// schedules at first (see SetShare); nil schedules every site, as a
	// single instance does. An emitter starts with a share that owns no
	// partition, and schedules nothing until the group assigns it some.
	Share *Share
	// Admission, when not nil, hears from the checkers how late they take
	// the requests, and the scheduler sheds slots while they are behind
	// (see Admission); nil requests every slot whatever happens to it.
	Admission *Admission
}

// Scheduler requests one check per site and interval. Create it with New,
// run it with Run, and swap its sites with Replace.
type Scheduler struct {
	emit    EmitFunc
	clock   Clock
	log     *slog.Logger
	grace   int64
	region  string
	metrics metrics
	running atomic.Bool

	mu           sync.Mutex
	pending      []siteSpec // replacement waiting for Run, or nil
	pendingShare *Share     // new share waiting for Run, or nil
	wake         chan struct{}

	// Owned by the goroutine in Run (or by New before Run starts).
	queue  entryHeap
	byURL  map[string]*entry // the sites scheduled: those of the share
	all    []siteSpec        // every site, scheduled here or not
	known  map[string]int64  // interval of every site of all, by URL
	owner  *owner            // nil: every site is scheduled here
	errLog retry.RateLog

	adm     *Admission
	pace    pacer // its fraction is 1 unless adm sheds
	tickAt  int64 // when the fraction is next adjusted, ns since the epoch
	shedLog retry.RateLog
}

type metrics struct {
	lag        prometheus.Histogram
	requested  prometheus.Counter
	emitErrors prometheus.Counter
	missed     prometheus.Counter
	shed       prometheus.Counter
	admitted   prometheus.Gauge
	sites      prometheus.Gauge
	known      prometheus.Gauge
	owned      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sitewatch_schedule_lag_seconds",
			Help:    "How late the scheduler handed a request to the producer, measured from the start of its slot (scheduled_at).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
		requested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_schedule_requests_total",
			Help: "Check requests the scheduler handed to the producer.",
		}),
		emitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_schedule_emit_errors_total",
			Help: "Check requests the producer refused; their slots go unchecked by this instance.",
		}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_schedule_missed_slots_total",
			Help: "Slots that ended before the scheduler could request them (process suspended, clock jump).",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_schedule_shed_slots_total",
			Help: "Slots not requested because the checks were behind (more sites than this instance can check): skipped at the source, evenly per site, rather than requested and found stale.",
		}),
		admitted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sitewatch_schedule_admitted_ratio",
			Help: "Fraction of the slots this instance requests now: 1 unless the checks are behind.",
		}),
		sites: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sitewatch_schedule_sites",
			Help: "Sites this instance schedules now: those whose request partition it owns in its check group (0 while it owns none).",
		}),
		known: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sitewatch_schedule_known_sites",
			Help: "Sites of the sites registry, scheduled by this instance or another one of its check group.",
		}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sitewatch_schedule_owned_partitions",
			Help: "Partitions of the requests topic this instance owns in its check group, whose sites it schedules (0 while joining, rebalancing away or out of the group).",
		}),
	}
	return m, telemetry.Register(reg, "scheduler", m.lag, m.requested, m.emitErrors, m.missed, m.shed, m.admitted, m.sites, m.known, m.owned)
}

// New validates the sites and returns a scheduler for them. It does not
// start anything; call Run.
func New(sites []config.Site, opts Options) (*Scheduler, error) {
	if opts.Emit == nil {
		return nil, errors.New("scheduler: Options.Emit is required")
	}
	if opts.Region != "" {
		if err := codecs.CheckRegion(opts.Region); err != nil {
			return nil, fmt.Errorf("scheduler: region: %w", err)
		}
	}
	specs, err := buildSpecs(sites)
	if err != nil {
		return nil, err
	}
	if opts.Share != nil {
		if err := opts.Share.validate(); err != nil {
			return nil, err
		}
	}
	s := &Scheduler{
		emit:   opts.Emit,
		clock:  opts.Clock,
		log:    opts.Logger,
		grace:  int64(opts.Grace),
		region: opts.Region,
		wake:   make(chan struct{}, 1),
		byURL:  map[string]*entry{},
		adm:    opts.Admission,
		pace:   pacer{fraction: 1},
	}
	if s.clock == nil {
		s.clock = SystemClock()
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case opts.Grace == 0:
		s.grace = int64(DefaultGrace)
	case opts.Grace < 0:
		s.grace = 0
	}
	if s.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	s.metrics.admitted.Set(1)
	s.pending = specs
	if opts.Share != nil {
		sh := *opts.Share
		sh.Owned = slices.Clone(sh.Owned)
		s.pendingShare = &sh
	}
	s.errLog = retry.RateLog{Every: 10 * time.Second}
	s.shedLog = retry.RateLog{Every: time.Minute}
	return s, nil
}

// Replace swaps the set of sites (a reload of the sites file). Sites whose
// URL and interval are unchanged keep their next slot, so a reload neither
// skips nor repeats a check; changed or new sites start at their next slot.
// An invalid set is refused and the current one kept. Safe to call from any
// goroutine, before or while Run runs.
func (s *Scheduler) Replace(sites []config.Site) error {
	specs, err := buildSpecs(sites)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.pending = specs
	s.mu.Unlock()
	s.notify()
	return nil
}

// notify wakes Run to apply what is pending.
func (s *Scheduler) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run requests checks until ctx ends, then returns nil: scheduling stops at
// once, and requests already handed to Emit are the producer's to flush.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called twice")
	}
	defer s.running.Store(false)
	s.log.Info("scheduler started")
	defer s.log.Info("scheduler stopped")
	for {
		s.applyPending(s.clock.Now())
		s.fireDue(ctx, s.clock.Now())
		if ctx.Err() != nil {
			return nil
		}
		var (
			timer  Timer
			timerC <-chan time.Time
		)
		if len(s.queue) > 0 {
			d := time.Duration(s.queue[0].next - s.clock.Now().UnixNano())
			timer = s.clock.NewTimer(max(d, 0))
			timerC = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-timerC:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// applyPending installs a replacement set of sites and a new share, if
// either is waiting.
func (s *Scheduler) applyPending(now time.Time) {
	s.mu.Lock()
	specs, share := s.pending, s.pendingShare
	s.pending, s.pendingShare = nil, nil
	s.mu.Unlock()
	if specs == nil && share == nil {
		return
	}
	// What was known before tells a site that enters the share (known,
	// unchanged, requested by another instance until now) from one that
	// is new or changed.
	prevKnown := s.known
	if specs != nil {
		s.all = specs
		s.known = make(map[string]int64, len(specs))
		for _, sp := range specs {
			s.known[sp.url] = sp.interval
		}
		s.metrics.known.Set(float64(len(specs)))
	}
	if share != nil {
		s.owner = newOwner(share)
		s.metrics.owned.Set(float64(s.owner.ownedPartitions()))
	}
	nowNS := now.UnixNano()
	byURL := make(map[string]*entry, len(s.byURL))
	queue := make(entryHeap, 0, len(s.byURL))
	var added, kept, taken int
	for _, sp := range s.all {
		if !s.owner.owns(sp.url) {
			continue
		}
		old := s.byURL[sp.url]
		if old != nil && old.spec.interval == sp.interval {
			old.spec = sp
			byURL[sp.url] = old
			queue = append(queue, queued{old.next, old})
			kept++
			continue
		}
		// The credit starts at the site's phase, so that the sites take
		// turns when slots are shed.
		e := &entry{spec: sp, last: math.MinInt64, credit: float64(sp.phase) / float64(sp.interval)}
		// A slot with most of its interval gone would arrive stale or
		// nearly so: the grace is at most a quarter of the interval.
		floor := nowNS - min(s.grace, sp.interval/4)
		switch {
		case old != nil:
			// The interval changed: do not request a slot that starts
			// before the one this site was last requested for.
			e.last = old.last
			if old.last != math.MinInt64 && old.last >= floor {
				floor = old.last + 1
			}
			added++
		case prevKnown[sp.url] == sp.interval:
			// The site enters the share (a partition handed over): its
			// previous owner requested the slots begun before now, so
			// it starts at its next slot, without grace.
			floor = nowNS
			taken++
		default:
			added++
		}
		start := slotStart(sp.interval, sp.phase, time.Unix(0, floor)).UnixNano()
		if start < floor {
			start += sp.interval
		}
		e.next = start
		byURL[sp.url] = e
		queue = append(queue, queued{e.next, e})
	}
	queue.init()
	dropped := 0
	for url := range s.byURL {
		if byURL[url] == nil {
			dropped++
		}
	}
	s.byURL, s.queue = byURL, queue
	s.metrics.sites.Set(float64(len(queue)))
	s.pace.sites = len(queue)
	attrs := []any{"sites", len(queue), "kept", kept, "added_or_changed", added, "removed", dropped}
	if s.owner != nil {
		attrs = append(attrs, "known_sites", len(s.all), "owned_partitions", s.owner.ownedPartitions(), "partitions", s.owner.count, "taken_over", taken)
	}
	s.log.Info("sites scheduled", attrs...)
}

// fireDue requests every slot that has begun by now.
func (s *Scheduler) fireDue(ctx context.Context, now time.Time) {
	nowNS := now.UnixNano()
	s.adjust(nowNS)
	for len(s.queue) > 0 && s.queue[0].next <= nowNS && ctx.Err() == nil {
		e := s.queue[0].e
		slot := e.next
		if nowNS >= slot+e.spec.interval {
			// The whole slot passed unrequested; its request would be
			// stale on arrival. Request the current slot instead.
			cur := slotStart(e.spec.interval, e.spec.phase, now).UnixNano()
			s.metrics.missed.Add(float64((cur - slot) / e.spec.interval))
			slot = cur
		}
		s.pace.dueInTick++
		if e.admit(s.pace.fraction) {
			s.request(ctx, e, slot, now)
			e.last = slot
		} else {
			s.metrics.shed.Inc()
		}
		e.next = slot + e.spec.interval
		s.queue[0].next = e.next
		s.queue.fixTop()
	}
}

// adjust updates the fraction of slots requested from what the checkers
// observed since the last tick.
func (s *Scheduler) adjust(nowNS int64) {
	if s.adm == nil || nowNS < s.tickAt {
		return
	}
	d := AdmissionTick
	if s.tickAt != 0 {
		d += time.Duration(nowNS - s.tickAt)
	}
	s.tickAt = nowNS + int64(AdmissionTick)
	if s.adm.assigned.Swap(false) {
		// A new share is a new load: it starts with every slot requested,
		// and sheds again only if it too is more than the checkers take.
		s.pace = pacer{fraction: 1, sites: s.pace.sites}
		s.metrics.admitted.Set(1)
	}
	prev := s.pace.fraction
	f := s.pace.tick(d, s.adm.taken.Swap(0), s.pace.dueInTick, s.adm.backlog())
	s.pace.dueInTick = 0
	if f == prev {
		return
	}
	if f < 1 && prev == 1 {
		if n, ok := s.shedLog.Allow(time.Unix(0, nowNS)); ok {
			s.log.Warn("checks are behind (more sites than this instance can check in time): requesting fewer slots, evenly per site, until they catch up",
				"fraction_requested", f, "times_since_last_log", n)
		}
	}
	s.metrics.admitted.Set(f)
}

func (s *Scheduler) request(ctx context.Context, e *entry, slot int64, now time.Time) {
	req := e.spec.template
	req.ScheduledAt = time.Unix(0, slot).UTC()
	req.NextAt = time.Unix(0, slot+e.spec.interval).UTC()
	req.RequestID = RequestID(req.URL, req.ScheduledAt, s.region)
	s.metrics.lag.Observe(now.Sub(req.ScheduledAt).Seconds())
	if err := s.emit(ctx, &req); err != nil {
		s.metrics.emitErrors.Inc()
		if n, ok := s.errLog.Allow(now); ok {
			s.log.Warn("check request not handed to the producer", "url", req.URL, "scheduled_at", req.ScheduledAt, "err", err, "errors_since_last_log", n)
		}
		return
	}
	s.metrics.requested.Inc()
}

// siteSpec is what the scheduler keeps of a site: its slot arithmetic and
// the request to send, minus the per-slot fields.
type siteSpec struct {
	url      string
	interval int64
	phase    int64
	template codecs.Request
}

func buildSpecs(sites []config.Site) ([]siteSpec, error) {
	specs := make([]siteSpec, 0, len(sites))
	seen := make(map[string]bool, len(sites))
	for _, site := range sites {
		if err := validSite(site); err != nil {
			return nil, fmt.Errorf("scheduler: site %q (line %d): %w", site.URL, site.Line, err)
		}
		if seen[site.URL] {
			return nil, fmt.Errorf("scheduler: site %q (line %d): duplicate url", site.URL, site.Line)
		}
		seen[site.URL] = true
		method := siterules.Method(site.Method)
		var re *string
		if site.Regexp != nil {
			src := site.Regexp.String()
			re = &src
		}
		specs = append(specs, siteSpec{
			url:      site.URL,
			interval: int64(site.Interval),
			phase:    int64(Phase(site.URL, site.Interval)),
			template: codecs.Request{
				V:            codecs.Version,
				URL:          site.URL,
				Method:       method,
				Headers:      site.Headers,
				TimeoutMS:    max(site.Timeout.Milliseconds(), 1),
				Regexp:       re,
				ExpectStatus: site.ExpectStatus,
				TLS:          requestTLS(site.TLS),
			},
		})
	}
	return specs, nil
}

// requestTLS carries a site's tls: settings in its requests.
func requestTLS(t *config.TLS) *codecs.RequestTLS {
	if t == nil {
		return nil
	}
	return &codecs.RequestTLS{CAPEM: string(t.CAPEM), ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
}

func validSite(site config.Site) error {
	if err := siterules.CheckURL(site.URL); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if site.Interval < time.Millisecond {
		return fmt.Errorf("interval %v: must be at least 1ms", site.Interval)
	}
	if site.Timeout <= 0 {
		return fmt.Errorf("timeout %v: must be positive", site.Timeout)
	}
	return nil
}

// entry is one site in the heap.
type entry struct {
	spec siteSpec
	next int64 // start of the next slot to request, ns since the epoch
	last int64 // start of the last slot requested, or math.MinInt64
	// credit decides which slots are shed while the checks are behind
	// (see Admission).
	credit float64
}

// queued is an entry in the heap with a copy of its next slot: the heap
// compares these in its own array instead of following a pointer to each
// entry (with tens of thousands of sites every request paid ~30 cache
// misses for that).
type queued struct {
	next int64
	e    *entry
}

// entryHeap is a 4-ary min-heap of entries by next slot. With demand
// above capacity the scheduler re-files every site every interval (20,000
// a second in the benchmark); container/heap's interface calls and a
// binary tree's depth made that ~6 % of the emitter's CPU. Four children
// per node halve the depth, and the children of a node share a cache line.
type entryHeap []queued

// heapArity is the number of children of a node.
const heapArity = 4

// init orders the whole slice into a heap.
func (h entryHeap) init() {
	if len(h) < 2 {
		return
	}
	for i := (len(h) - 2) / heapArity; i >= 0; i-- {
		h.down(i)
	}
}

// fixTop restores the heap after the root's next slot grew.
func (h entryHeap) fixTop() {
	if len(h) > 1 {
		h.down(0)
	}
}

// down moves h[i] below every smaller child.
func (h entryHeap) down(i int) {
	x := h[i]
	n := len(h)
	for {
		first := heapArity*i + 1
		if first >= n {
			break
		}
		least := first
		for c := first + 1; c < min(first+heapArity, n); c++ {
			if h[c].next < h[least].next {
				least = c
			}
		}
		if h[least].next >= x.next {
			break
		}
		h[i] = h[least]
		i = least
	}
	h[i] = x
}
