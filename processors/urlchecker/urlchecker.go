package urlchecker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
	"github.com/sitewatch/sitewatch/telemetry"
)

// DefaultGroup is the consumer group (and goka table prefix) of the
// processor.
const DefaultGroup goka.Group = codecs.GroupURLChecker

// Defaults of Config.
const (
	DefaultConcurrency  = 256
	DefaultBuffer       = 10000
	DefaultDrainTimeout = 60 * time.Second
)

// checkGrace is how long past a request's own timeout a check may run
// before its context ends, so that a checker that fails to honour its
// timeout cannot hold a concurrency slot forever.
const checkGrace = 5 * time.Second

// Checker runs one HTTP check; *checker.Checker is the implementation.
type Checker interface {
	Check(ctx context.Context, t checker.Target) checker.Result
}

var _ Checker = (*checker.Checker)(nil)

// Topics names the streams the url_checker reads and writes.
type Topics struct {
	// Requests (status_request_created) is read.
	Requests goka.Stream
	// Succeeded and Failed receive the results, up and down.
	Succeeded, Failed goka.Stream
	// DeadLetters receives the requests that cannot be used.
	DeadLetters goka.Stream
}

// DefaultTopics are the contract's names, without a prefix.
var DefaultTopics = Topics{
	Requests:    codecs.TopicRequests,
	Succeeded:   codecs.TopicSucceeded,
	Failed:      codecs.TopicFailed,
	DeadLetters: codecs.TopicDeadLetters,
}

// withDefaults fills the empty names from DefaultTopics.
func (t Topics) withDefaults() Topics {
	for _, f := range []struct {
		s   *goka.Stream
		def goka.Stream
	}{
		{&t.Requests, DefaultTopics.Requests}, {&t.Succeeded, DefaultTopics.Succeeded},
		{&t.Failed, DefaultTopics.Failed}, {&t.DeadLetters, DefaultTopics.DeadLetters},
	} {
		if *f.s == "" {
			*f.s = f.def
		}
	}
	return t
}

// Config configures a Processor.
type Config struct {
	Brokers []string
	// Sarama is the connection configuration (TLS, SASL, versions); each
	// component gets its own copy. Required unless ProcessorOptions and
	// EmitterOptions replace every builder (goka's tester).
	Sarama *sarama.Config
	// TopicManager configures the group table's topic (replication); goka's
	// defaults when nil.
	TopicManager *goka.TopicManagerConfig
	// Topics: empty names default to DefaultTopics.
	Topics Topics
	// Group defaults to DefaultGroup.
	Group goka.Group
	// Concurrency is the most checks running at once; DefaultConcurrency
	// when zero. When all are busy the partitions wait (back-pressure).
	Concurrency int
	// Buffer is the most results waiting for Kafka; beyond it the oldest
	// is dropped and counted. DefaultBuffer when zero.
	Buffer int
	// DrainTimeout bounds the shutdown: in-flight checks are cancelled and
	// unsent results dropped (and counted) after it. DefaultDrainTimeout
	// when zero.
	DrainTimeout time.Duration
	// Region is written into each result's region field: the region whose
	// requests this group checks (its Topics.Requests and Group are the
	// region's, see codecs.RequestsTopic). codecs.DefaultRegion when empty.
	Region string
	// InstanceID is written into each result's checker field; host name
	// and process id when empty.
	InstanceID string
	// Checker runs the checks. Required.
	Checker Checker
	// Now defaults to time.Now; it decides whether a request is stale.
	Now func() time.Time
	// Logger defaults to discarding logs.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Health, when not nil, is told why checks are not being consumed
	// (joining the group, restarting after a failure) or their results
	// cannot be delivered to Kafka for longer than OutageAfter, and nil
	// once they are again.
	Health func(error)
	// OutageAfter is how long result deliveries must fail before Health
	// hears of it; telemetry.DefaultOutageAfter when zero.
	OutageAfter time.Duration
	// Storage holds the group table locally; in memory when nil (it has
	// one small row per URL and is rebuilt from Kafka at start).
	Storage storage.Builder
	// Assigned, when not nil, hears which partitions of the requests topic
	// this instance consumes: at the start of every group session (after
	// each rebalance) its assignment, sorted and possibly empty, with
	// member true; and member false once its consumer has stopped (a
	// failure being restarted, or shutdown), when it consumes none. The
	// emitter's scheduler schedules the sites of these partitions only.
	// Called from goka's goroutines: it must not block.
	Assigned func(partitions []int32, member bool)
	// Taken, when not nil, hears of every valid request taken from the
	// topic: its partition and offset, and whether it was stale. The
	// emitter's scheduler sheds slots while the requests not yet taken
	// pile up (scheduler.Admission). Called from goka's goroutines: it
	// must not block.
	Taken func(partition int32, offset int64, stale bool)
	// ProcessorOptions and EmitterOptions are appended to the ones built
	// from the fields above (tests plug goka's tester in here).
	ProcessorOptions []goka.ProcessorOption
	EmitterOptions   []goka.EmitterOption
}

// Processor is the url_checker group. Create it with New and run it with
// Run.
type Processor struct {
	cfg      Config
	log      *slog.Logger
	m        metrics
	sem      chan struct{}
	results  *outbox
	regexps  regexpCache
	checks   sync.WaitGroup
	running  atomic.Bool
	sup      *kafkarun.Supervisor
	dead     kafkarun.DeadLetters
	health   *combinedHealth
	baseMu   sync.Mutex
	checkCtx context.Context // parent of every check; outlives Run's ctx
	jobs     chan checkJob   // to an idle worker (unbuffered)
	stopped  chan struct{}   // closed when Run returns: idle workers end
}

type metrics struct {
	checks     *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   prometheus.Gauge
	startDelay prometheus.Histogram
	stale      prometheus.Counter
	duplicate  prometheus.Counter
	invalid    prometheus.Counter
	abandoned  prometheus.Counter
	restarts   prometheus.Counter
	outbox     outboxMetrics
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sitewatch_checks_total",
			Help: "Checks run, by outcome (up, down) and error kind (empty when up).",
		}, []string{"outcome", "error_kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sitewatch_check_duration_seconds",
			Help:    "Wall time of a check, by outcome.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sitewatch_checks_in_flight",
			Help: "Checks running now.",
		}),
		startDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sitewatch_check_start_delay_seconds",
			Help:    "How late a check started, measured from the start of its slot (scheduled_at).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_requests_stale_total",
			Help: "Check requests received (or due to start) after their site's next slot had begun; skipped, never checked late.",
		}),
		duplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_requests_duplicate_total",
			Help: "Check requests for a slot already accepted for the URL (another emitter instance scheduled it); skipped.",
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_requests_invalid_total",
			Help: "Check requests that could not be decoded or used; sent to the dead-letter topic.",
		}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_checks_abandoned_total",
			Help: "Accepted requests not checked, or checks whose result was discarded, because the emitter was shutting down.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_url_checker_restarts_total",
			Help: "Times the url_checker consumer stopped with an error and was restarted.",
		}),
		outbox: newOutboxMetrics("results"),
	}
	cs := []prometheus.Collector{m.checks, m.duration, m.inFlight, m.startDelay, m.stale, m.duplicate, m.invalid, m.abandoned, m.restarts}
	return m, telemetry.Register(reg, "url_checker", append(cs, m.outbox.collectors()...)...)
}

// New checks the configuration and returns a Processor. It connects to
// nothing; Run does.
func New(cfg Config) (*Processor, error) {
	if cfg.Checker == nil {
		return nil, errors.New("urlchecker: Config.Checker is required")
	}
	if cfg.Sarama == nil && len(cfg.ProcessorOptions) == 0 {
		return nil, errors.New("urlchecker: Config.Sarama is required")
	}
	if cfg.Concurrency < 0 || cfg.Buffer < 0 {
		return nil, errors.New("urlchecker: Concurrency and Buffer must not be negative")
	}
	cfg.Topics = cfg.Topics.withDefaults()
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = DefaultInstanceID()
	}
	if cfg.Region == "" {
		cfg.Region = codecs.DefaultRegion
	}
	if err := codecs.CheckRegion(cfg.Region); err != nil {
		return nil, fmt.Errorf("url_checker: region: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Storage == nil {
		cfg.Storage = kafkarun.MemoryStorage()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Processor{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "url_checker"),
		m:       m,
		sem:     make(chan struct{}, cfg.Concurrency),
		health:  &combinedHealth{report: cfg.Health},
		jobs:    make(chan checkJob),
		stopped: make(chan struct{}),
	}
	p.regexps.limit = 10000
	p.results = newOutbox("results", p.log, cfg.Buffer, 1000, m.outbox, p.openResultEmitters)
	p.results.outage = &telemetry.Outage{What: "delivery of results to kafka", After: cfg.OutageAfter, Report: p.health.part("results")}
	p.dead = kafkarun.DeadLetters{Topic: cfg.Topics.DeadLetters, Consumer: string(cfg.Group), Log: p.log, Count: m.invalid, Now: cfg.Now}
	p.sup = &kafkarun.Supervisor{
		Name: string(cfg.Group), Log: p.log,
		Build: func() (*goka.Processor, error) {
			return goka.NewProcessor(cfg.Brokers, p.Graph(), p.processorOptions()...)
		},
		Restarts: m.restarts,
		Health:   p.health.part("consumer"),
	}
	if cfg.Assigned != nil {
		p.sup.Run = func(ctx context.Context, proc *goka.Processor) error {
			defer cfg.Assigned(nil, false)
			return proc.Run(ctx)
		}
	}
	p.sup.Health(kafkarun.ErrStarting)
	return p, nil
}

// DefaultInstanceID names this process: host name and process id.
func DefaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// Graph is the goka group graph: requests in, dead letters out, and the
// group table of the newest accepted slot per URL. Input is read as raw
// bytes so that a malformed message reaches the callback (and the
// dead-letter topic) instead of stopping the processor.
func (p *Processor) Graph() *goka.GroupGraph {
	return goka.DefineGroup(p.cfg.Group,
		goka.Input(p.cfg.Topics.Requests, new(codec.Bytes), p.handle),
		goka.Output(p.cfg.Topics.DeadLetters, codecs.DeadLetterCodec{}),
		goka.Persist(slotCodec{}),
	)
}

func (p *Processor) processorOptions() []goka.ProcessorOption {
	var opts []goka.ProcessorOption
	if p.cfg.Sarama != nil {
		var tm goka.TopicManagerBuilder
		if p.cfg.TopicManager != nil {
			tm = goka.TopicManagerBuilderWithConfig(kafkarun.GokaConfig(p.cfg.Sarama), p.cfg.TopicManager)
		}
		// Offsets are committed in order: see the delivery rule in
		// internal/kafkarun.
		opts = kafkarun.ProcessorOptions(p.cfg.Brokers, p.cfg.Sarama, tm, nil)
	}
	opts = append(opts,
		goka.WithStorageBuilder(p.cfg.Storage),
		goka.WithLogger(kafkarun.Logger(p.log, "goka")),
		goka.WithClientID(string(p.cfg.Group)+"-"+p.cfg.InstanceID),
		// A tombstone is not a request either: dead-letter it, do not
		// drop it silently.
		goka.WithNilHandling(goka.NilProcess),
	)
	if p.cfg.Assigned != nil {
		opts = append(opts, goka.WithRebalanceCallback(func(a goka.Assignment) {
			p.cfg.Assigned(slices.Sorted(maps.Keys(a)), true)
		}))
	}
	return append(opts, p.cfg.ProcessorOptions...)
}

func (p *Processor) openResultEmitters() (map[goka.Stream]*goka.Emitter, error) {
	return openEmitters(p.cfg.Brokers, p.cfg.Sarama, p.log, p.cfg.EmitterOptions,
		emitterSpec{p.cfg.Topics.Succeeded, codecs.ResultCodec{}},
		emitterSpec{p.cfg.Topics.Failed, codecs.ResultCodec{}})
}

type emitterSpec struct {
	topic goka.Stream
	codec goka.Codec
}

// openEmitters creates one goka emitter per topic, all partitioning by
// goka's default hasher, as goka processors downstream expect.
func openEmitters(brokers []string, cfg *sarama.Config, log *slog.Logger, extra []goka.EmitterOption, specs ...emitterSpec) (map[goka.Stream]*goka.Emitter, error) {
	ems := map[goka.Stream]*goka.Emitter{}
	for _, s := range specs {
		opts := []goka.EmitterOption{goka.WithEmitterLogger(kafkarun.Logger(log, "goka"))}
		if cfg != nil {
			opts = append(opts, goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(kafkarun.Config(cfg))))
		}
		em, err := goka.NewEmitter(brokers, s.topic, s.codec, append(opts, extra...)...)
		if err != nil {
			for _, e := range ems {
				_ = e.Finish() // nothing was sent through them
			}
			return nil, fmt.Errorf("producer for %s: %w", s.topic, err)
		}
		ems[s.topic] = em
	}
	return ems, nil
}

// Run consumes requests and checks sites until ctx ends. Then it stops
// taking requests, lets running checks finish or time out, hands their
// results to Kafka and flushes the producer, all within DrainTimeout of
// ctx's end: checks still running then are cancelled and counted as
// abandoned. A consumer that fails (brokers away, rebalance errors) is
// restarted with backoff and logged; Run returns an error only for a
// failed drain.
func (p *Processor) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("urlchecker: Run called twice")
	}
	checkCtx, stopChecks := context.WithCancel(context.WithoutCancel(ctx))
	defer stopChecks()
	defer close(p.stopped)
	p.baseMu.Lock()
	p.checkCtx = checkCtx
	p.baseMu.Unlock()
	go p.results.loop()

	// The drain clock starts when ctx ends, not when goka has stopped:
	// goka waits (up to a minute) for the deferred commits of the checks
	// in flight, which only the end of the drain cuts short.
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	stopDrainClock := context.AfterFunc(ctx, func() {
		t := time.NewTimer(p.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			p.log.Warn("checks still running at the end of the drain; cancelling them", "in_flight", len(p.sem))
			stopChecks()
			cancelDrain()
		case <-drainCtx.Done():
		}
	})
	defer stopDrainClock()

	p.log.Info("url_checker started", "group", p.cfg.Group, "instance", p.cfg.InstanceID, "concurrency", p.cfg.Concurrency)
	if err := p.sup.Serve(ctx); err != nil {
		p.log.Debug("url_checker consumer stopped", "err", err)
	}

	p.log.Info("url_checker draining", "in_flight", len(p.sem))
	p.checks.Wait() // ends by the drain deadline at the latest
	err := p.results.close(drainCtx)
	if err != nil {
		err = fmt.Errorf("url_checker drain: %w", err)
	}
	p.log.Info("url_checker stopped")
	return err
}

// Ready is closed once the consumer has joined its group and recovered
// its table for the first time, that is once requests are being checked.
func (p *Processor) Ready() <-chan struct{} { return p.sup.Ready() }

// handle is the goka callback for one message on the requests topic.
func (p *Processor) handle(gctx goka.Context, msg any) {
	data, _ := msg.([]byte)
	req, re, err := p.decode(gctx.Key(), data)
	if err != nil {
		p.deadLetter(gctx, data, err)
		return
	}
	// Staleness first: it needs only the request, and under overload most
	// requests are stale, so they skip the table lookup (and its decode).
	// A stale request is never checked, duplicate or not.
	stale := !p.cfg.Now().Before(req.NextAt)
	if p.cfg.Taken != nil {
		p.cfg.Taken(gctx.Partition(), gctx.Offset(), stale)
	}
	if stale {
		p.m.stale.Inc()
		return
	}
	if st, _ := gctx.Value().(*slotState); st != nil && !req.ScheduledAt.After(st.ScheduledAt) {
		redelivery := st.ScheduledAt.Equal(req.ScheduledAt) && st.Partition == gctx.Partition() && st.Offset == gctx.Offset()
		if !redelivery {
			p.m.duplicate.Inc()
			return
		}
	}
	gctx.SetValue(&slotState{ScheduledAt: req.ScheduledAt, Partition: gctx.Partition(), Offset: gctx.Offset()})

	// Wait for a free check slot: while all are busy this partition waits,
	// and Kafka holds the requests behind this one.
	select {
	case p.sem <- struct{}{}:
	case <-gctx.Context().Done():
		p.m.abandoned.Inc()
		return
	}
	if !p.cfg.Now().Before(req.NextAt) {
		<-p.sem
		p.m.stale.Inc()
		return
	}
	commit := gctx.DeferCommit()
	p.m.inFlight.Inc()
	p.checks.Add(1)
	p.dispatch(checkJob{req, re, commit})
}

// checkJob is one accepted request on its way to a worker.
type checkJob struct {
	req    *codecs.Request
	re     *regexp.Regexp
	commit func(error)
}

// workerIdle is how long a worker without a check waits for the next one.
const workerIdle = 30 * time.Second

// dispatch hands a check to an idle worker, or starts a worker for it.
// Workers outlive their check, so that a check runs on a goroutine whose
// stack already grew through net/http rather than growing a fresh one
// each time (that and the goroutine start showed in the profile). The
// semaphore bounds the checks, so the workers number about Concurrency at
// most; one idle for workerIdle ends.
func (p *Processor) dispatch(j checkJob) {
	select {
	case p.jobs <- j:
	default:
		go p.worker(j)
	}
}

func (p *Processor) worker(j checkJob) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		p.check(j.req, j.re, j.commit)
		idle.Reset(workerIdle)
		select {
		case j = <-p.jobs:
		case <-idle.C:
			return
		case <-p.stopped:
			return
		}
	}
}

// decode turns a message into a usable request, or says why it is not.
func (p *Processor) decode(key string, data []byte) (*codecs.Request, *regexp.Regexp, error) {
	if data == nil {
		return nil, nil, errors.New("empty message (tombstone)")
	}
	req, err := codecs.DecodeRequest(data)
	if err != nil {
		return nil, nil, fmt.Errorf("decode request: %w", err)
	}
	if key != req.URL {
		return nil, nil, fmt.Errorf("message key %q is not the request's url %q", key, req.URL)
	}
	if !req.NextAt.After(req.ScheduledAt) {
		return nil, nil, fmt.Errorf("next_at %v is not after scheduled_at %v", req.NextAt, req.ScheduledAt)
	}
	var re *regexp.Regexp
	if req.Regexp != nil {
		if re, err = p.regexps.get(*req.Regexp); err != nil {
			return nil, nil, fmt.Errorf("regexp: %w", err)
		}
	}
	return req, re, nil
}

func (p *Processor) deadLetter(gctx goka.Context, data []byte, reason error) {
	p.dead.Send(gctx, data, reason)
}

// check runs one check and hands its result to the outbox, whose
// acknowledgement commits the request's offset.
func (p *Processor) check(req *codecs.Request, re *regexp.Regexp, commit func(error)) {
	defer p.checks.Done()
	p.baseMu.Lock()
	base := p.checkCtx
	p.baseMu.Unlock()
	ctx, cancel := context.WithTimeout(base, req.Timeout()+checkGrace)
	started := p.cfg.Now()
	p.m.startDelay.Observe(started.Sub(req.ScheduledAt).Seconds())
	chk := p.cfg.Checker.Check(ctx, checker.Target{
		URL:          req.URL,
		Method:       req.Method,
		Headers:      req.Headers,
		Timeout:      req.Timeout(),
		Regexp:       re,
		ExpectStatus: req.ExpectStatus,
		TLS:          targetTLS(req.TLS),
	})
	took := p.cfg.Now().Sub(started)
	cancelled := errors.Is(base.Err(), context.Canceled)
	cancel()
	<-p.sem
	p.m.inFlight.Dec()
	if cancelled {
		// Cut short by the end of the drain: the site is not down.
		p.m.abandoned.Inc()
		commit(nil)
		return
	}
	res := resultEvent(req, chk, p.cfg.InstanceID)
	res.Region = p.cfg.Region
	kind := ""
	if res.ErrorKind != nil {
		kind = *res.ErrorKind
	}
	p.m.checks.WithLabelValues(res.Outcome, kind).Inc()
	p.m.duration.WithLabelValues(res.Outcome).Observe(took.Seconds())
	topic := p.cfg.Topics.Failed
	if res.Up() {
		topic = p.cfg.Topics.Succeeded
	}
	_ = p.results.push(&item{topic: topic, key: req.URL, value: res, done: commit}) // a refused push is counted and committed
}

// regexpCache compiles each regexp source once. It is bounded: when full
// it starts over, which costs recompiles, never memory.
// targetTLS is a request's tls settings for the checker.
func targetTLS(t *codecs.RequestTLS) *checker.TLS {
	if t == nil {
		return nil
	}
	return &checker.TLS{CAPEM: []byte(t.CAPEM), ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
}

type regexpCache struct {
	mu    sync.Mutex
	limit int
	m     map[string]*regexp.Regexp
}

func (c *regexpCache) get(src string) (*regexp.Regexp, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if re, ok := c.m[src]; ok {
		return re, nil
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, err
	}
	if c.m == nil || len(c.m) >= c.limit {
		c.m = map[string]*regexp.Regexp{}
	}
	c.m[src] = re
	return re, nil
}

// combinedHealth merges the reports of the consumer and the result
// outbox into the processor's one Health.
type combinedHealth struct {
	report func(error)
	mu     sync.Mutex
	parts  map[string]error
}

func (h *combinedHealth) part(name string) func(error) {
	return func(err error) {
		if h.report == nil {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.parts == nil {
			h.parts = map[string]error{}
		}
		h.parts[name] = err
		var errs []error
		for _, n := range []string{"consumer", "results"} {
			if e := h.parts[n]; e != nil {
				errs = append(errs, e)
			}
		}
		h.report(errors.Join(errs...))
	}
}
