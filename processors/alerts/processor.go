package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
)

// DefaultGroup is the goka group (and, with its prefix, the consumer
// named in dead letters) of the alerts processor.
const DefaultGroup goka.Group = "alerts"

// Defaults of Config, as in the contract's flags.
const (
	DefaultFailures  = 3
	DefaultSuccesses = 2
	DefaultCertDays  = 14
)

const (
	// visitorName is the goka visitor that applies held-back events.
	visitorName = "flush-pending"
	// flushEvery is how often the high-water marks are asked of the
	// broker and held-back events looked at: the most an event waits when
	// the other input topic has nothing older for it.
	flushEvery = 500 * time.Millisecond
)

// Topics names the streams the processor reads and writes.
type Topics struct {
	// Succeeded and Failed are the result topics, read.
	Succeeded, Failed goka.Stream
	// Changes (status_changes) receives the status changes.
	Changes goka.Stream
	// DeadLetters (sitewatch_dead_letters) receives undecodable messages.
	DeadLetters goka.Stream
}

// Config configures a Processor. Zero fields take the defaults above.
type Config struct {
	Brokers []string
	// Sarama is the caller's Kafka configuration (TLS, SASL, version); the
	// processor works on copies. Nil means goka.DefaultConfig().
	Sarama *sarama.Config
	Topics Topics
	// Group is the goka group; its table topic is "<Group>-table".
	Group goka.Group
	// Failures and Successes are the default thresholds (-alert-failures,
	// -alert-successes); a site's Rule may override them.
	Failures, Successes int
	// CertDays is how many days before its expiry a certificate is
	// reported (-alert-cert-days).
	CertDays int
	// Quorum is how many of the regions that checked a site within its
	// last interval must see it down to make it down, or up to make it up
	// again (-alert-quorum); zero means a majority of them.
	Quorum int
	// Rules are the sites' names and thresholds by URL (from the sites
	// file); a URL without one gets the defaults and its URL as name.
	// SetRules replaces them while running.
	Rules map[string]Rule
	// Storage builds the local copy of the group table; StorageDir selects
	// LevelDB under that directory, and neither keeps it in memory.
	Storage    storage.Builder
	StorageDir string
	Logger     *slog.Logger
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// TopicManager creates the table topic; nil means goka's over a copy
	// of Sarama.
	TopicManager goka.TopicManagerBuilder
	// Health, when not nil, is told why the processor is not processing
	// (starting, restarting) and nil once it is (see kafkarun.Supervisor).
	Health func(error)
	// Now is the wall clock of dead letters (tests pass a fake one).
	Now func() time.Time
	// GokaOptions are appended after the processor's own options; tests
	// pass goka.WithTester here.
	GokaOptions []goka.ProcessorOption
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Failures == 0 {
		cfg.Failures = DefaultFailures
	}
	if cfg.Successes == 0 {
		cfg.Successes = DefaultSuccesses
	}
	if cfg.CertDays == 0 {
		cfg.CertDays = DefaultCertDays
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Sarama == nil {
		cfg.Sarama = goka.DefaultConfig()
	}
	// Every event rewrites its URL's table value, mostly event_ids
	// (random hex) in a compact binary form: a compressor finds little to
	// shrink, and its cost is paid per event (as in processors/windows).
	// The copy keeps the caller's configuration for everything else.
	noCompression := *cfg.Sarama
	noCompression.Producer.Compression = sarama.CompressionNone
	cfg.Sarama = &noCompression
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Storage == nil {
		cfg.Storage = kafkarun.Storage(cfg.StorageDir)
	}
	var errs []error
	for name, t := range map[string]goka.Stream{
		"Succeeded": cfg.Topics.Succeeded, "Failed": cfg.Topics.Failed,
		"Changes": cfg.Topics.Changes, "DeadLetters": cfg.Topics.DeadLetters,
	} {
		if t == "" {
			errs = append(errs, fmt.Errorf("topic %s is empty", name))
		}
	}
	if cfg.Quorum < 0 {
		errs = append(errs, fmt.Errorf("quorum %d must not be negative", cfg.Quorum))
	}
	if cfg.Failures < 1 || cfg.Successes < 1 || cfg.CertDays < 1 {
		errs = append(errs, fmt.Errorf("failures %d, successes %d and cert days %d must be at least 1", cfg.Failures, cfg.Successes, cfg.CertDays))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("alerts config: %w", err)
	}
	return cfg, nil
}

// Processor is the alerts goka processor.
type Processor struct {
	cfg     Config
	rules   rules
	sites   atomic.Pointer[map[string]Rule]
	log     *slog.Logger
	metrics *metrics
	marks   *kafkarun.Marks
	// wb writes the URL states behind while a backlog drains.
	wb    kafkarun.WriteBehind[*state]
	dead  kafkarun.DeadLetters
	sup   *kafkarun.Supervisor
	order *order
	// holding counts the URLs with held-back events; flushSoon asks for a
	// flush visit whatever the count (after a start or rebalance, when the
	// table may hold events held by a previous owner).
	holding   atomic.Int64
	flushSoon atomic.Bool
	// holdingURLs are the URLs with held-back events, so that a visit
	// reads only their states.
	holdingMu   sync.Mutex
	holdingURLs map[string]struct{}
	// assigned are the partitions of the last rebalance.
	assigned atomic.Pointer[[]int32]
}

// New builds the processor and creates its table topic. The input topics
// must exist already (goka checks that they are co-partitioned).
func New(cfg Config) (*Processor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Processor{
		cfg: cfg,
		rules: rules{
			failures:    cfg.Failures,
			successes:   cfg.Successes,
			certWarning: time.Duration(cfg.CertDays) * 24 * time.Hour,
			quorum:      cfg.Quorum,
		},
		log:     cfg.Logger.With("processor", string(cfg.Group)),
		metrics: newMetrics(),
		marks:   kafkarun.NewMarks(),

		holdingURLs: map[string]struct{}{},
	}
	p.SetRules(cfg.Rules)
	p.wb = kafkarun.WriteBehind[*state]{Marks: p.marks, Max: kafkarun.WriteBehindMax, For: kafkarun.WriteBehindFor, Writes: p.metrics.writes, Held: p.metrics.heldApplied}
	p.order = newOrder(p.marks, cfg.Now, string(cfg.Topics.Succeeded), string(cfg.Topics.Failed))
	p.flushSoon.Store(true)
	p.dead = kafkarun.DeadLetters{
		Topic: cfg.Topics.DeadLetters, Consumer: string(cfg.Group),
		Log: p.log, Count: p.metrics.deadLetters, Now: cfg.Now,
	}
	opts := append(kafkarun.ProcessorOptions(cfg.Brokers, cfg.Sarama, cfg.TopicManager, p.marks),
		goka.WithLogger(kafkarun.Logger(p.log, "goka")),
		goka.WithStorageBuilder(cfg.Storage),
		// A message without a value reaches the callback, which sends it to
		// the dead letters instead of silently skipping it.
		goka.WithNilHandling(goka.NilProcess),
		goka.WithRebalanceCallback(func(a goka.Assignment) {
			p.order.reset()
			p.wb.Reset()
			// The full visit that follows finds the URLs holding events in
			// the partitions assigned now.
			p.holdingMu.Lock()
			clear(p.holdingURLs)
			p.holding.Store(0)
			p.holdingMu.Unlock()
			parts := make([]int32, 0, len(a))
			for part := range a {
				parts = append(parts, part)
			}
			p.assigned.Store(&parts)
			p.flushSoon.Store(true)
		}),
	)
	opts = append(opts, cfg.GokaOptions...)
	p.sup = &kafkarun.Supervisor{
		Name: string(cfg.Group), Log: p.log,
		Build:    func() (*goka.Processor, error) { return goka.NewProcessor(cfg.Brokers, p.Graph(), opts...) },
		Run:      p.runOnce,
		Restarts: p.metrics.restarts,
		Health:   cfg.Health,
	}
	if err := p.sup.Start(); err != nil {
		return nil, fmt.Errorf("create alerts processor: %w", err)
	}
	if err := p.metrics.register(cfg.Registerer); err != nil {
		return nil, err
	}
	return p, nil
}

// SetRules replaces the sites' names and thresholds (a reloaded sites
// file); checks processed from then on use them.
func (p *Processor) SetRules(r map[string]Rule) {
	if r == nil {
		r = map[string]Rule{}
	}
	p.sites.Store(&r)
}

// verifyCache is set by the package's tests: every state handed back from
// memory is checked against the bytes stored for it.
var verifyCache func(cached, decoded any, err error)

// Graph returns the processor's goka group graph. The inputs are read as
// raw bytes and decoded in the callback: a codec error would stop goka's
// processor, while a malformed message only deserves a dead letter.
func (p *Processor) Graph() *goka.GroupGraph {
	t := p.cfg.Topics
	return goka.DefineGroup(p.cfg.Group,
		goka.Input(t.Succeeded, new(codec.Bytes), p.consume),
		goka.Input(t.Failed, new(codec.Bytes), p.consume),
		goka.Output(t.Changes, codecs.StatusChangeCodec{}),
		goka.Output(t.DeadLetters, codecs.DeadLetterCodec{}),
		goka.Visitor(visitorName, p.visit),
		goka.Visitor(kafkarun.WriteBehindVisitor, p.wb.Visit),
		// Each graph (a rebuilt processor recovers its table afresh) has
		// its own cache of the states it stored: see kafkarun.CachedCodec.
		goka.Persist(&kafkarun.CachedCodec{Codec: stateCodec{}, Verify: verifyCache}),
	)
}

// Run consumes until ctx ends, rebuilding a failed goka processor with
// backoff (sitewatch_alerts_restarts_total, see kafkarun.Supervisor).
// After ctx ends it waits for goka to flush and returns nil. It can be
// called once.
func (p *Processor) Run(ctx context.Context) error { return p.sup.Serve(ctx) }

// learnHighWater asks the broker for the high-water marks of the input
// partitions assigned here: a claim learns of new records only with its
// next fetch, and an input topic that looks caught up must not let the
// other one's events pass older ones it has not fetched yet (see
// order.go).
func (p *Processor) learnHighWater(client sarama.Client) {
	parts := p.assigned.Load()
	if parts == nil {
		return
	}
	for _, partition := range *parts {
		asked := p.cfg.Now()
		ok := true
		hws := make(map[string]int64, 2)
		for _, topic := range []goka.Stream{p.cfg.Topics.Succeeded, p.cfg.Topics.Failed} {
			hw, err := client.GetOffset(string(topic), partition, sarama.OffsetNewest)
			if err != nil {
				ok = false
				p.log.Debug("high-water mark unknown", "topic", topic, "partition", partition, "err", err)
				continue
			}
			hws[string(topic)] = hw
			p.marks.SetHighWater(string(topic), partition, hw)
		}
		if ok {
			p.order.refreshedAt(partition, asked, hws)
		}
	}
}

// runOnce runs proc and, while events are held back, visits the table
// every flushEvery to apply those that may go. goka runs on its own
// context, cancelled only between two visits: a visit that goka aborts
// mid-way leaves its visitors running (see processors/windows).
func (p *Processor) runOnce(ctx context.Context, proc *goka.Processor) error {
	gokaCtx, stopGoka := context.WithCancel(context.WithoutCancel(ctx))
	defer stopGoka()
	done := make(chan error, 1)
	go func() { done <- proc.Run(gokaCtx) }()
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	var client sarama.Client
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	for {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			// What is written behind is written before goka stops, so
			// that a restart does not read it all again.
			if proc.Recovered() {
				if err := p.wb.FlushAll(gokaCtx, proc); err != nil {
					p.log.Warn("write held states at shutdown; their events are read again at the next start", "err", err)
				}
			}
			stopGoka()
			return <-done
		case <-tick.C:
			if !proc.Recovered() {
				continue
			}
			if err := p.wb.Flush(gokaCtx, proc, time.Now()); err != nil && gokaCtx.Err() == nil && !errors.Is(err, goka.ErrVisitAborted) {
				p.log.Warn("write held states", "err", err)
			}
			if p.holding.Load() <= 0 && !p.flushSoon.Load() {
				continue
			}
			full := p.flushSoon.Swap(false)
			if client == nil && len(p.cfg.Brokers) > 0 {
				c, err := sarama.NewClient(p.cfg.Brokers, kafkarun.Config(p.cfg.Sarama))
				if err != nil {
					p.log.Warn("ask high-water marks; held-back events wait for the other topic", "err", err)
				} else {
					client = c
				}
			}
			if client != nil {
				p.learnHighWater(client)
			}
			pass := &visitPass{full: full, written: kafkarun.NewWritePass(time.Now())}
			err := proc.VisitAll(gokaCtx, visitorName, pass)
			if err != nil && gokaCtx.Err() == nil && !errors.Is(err, goka.ErrVisitAborted) {
				p.log.Warn("apply held-back events", "err", err)
			}
			if err == nil {
				p.wb.Release(pass.written)
			}
		}
	}
}

// WaitForReady blocks until the processor has recovered its table and is
// consuming, or ctx ends.
func (p *Processor) WaitForReady(ctx context.Context) error { return p.sup.WaitForReady(ctx) }

// consume handles one message from a result topic.
func (p *Processor) consume(ctx goka.Context, msg any) {
	p.metrics.consumed.Inc()
	data, _ := msg.([]byte)
	if len(data) == 0 {
		p.dead.Send(ctx, data, errors.New("empty value"))
		return
	}
	r, err := codecs.DecodeResult(data)
	if err != nil {
		p.dead.Send(ctx, data, err)
		return
	}
	if r.URL != ctx.Key() {
		// The table is keyed by the message key; a result filed under
		// another key would move the wrong URL's state.
		p.dead.Send(ctx, data, fmt.Errorf("message key %q differs from url %q", ctx.Key(), r.URL))
		return
	}
	p.order.processed(string(ctx.Topic()), ctx.Partition(), ctx.Offset(), r.CheckedAt)
	st, inTable := p.value(ctx)
	newest := st.regionNewest(codecs.RegionOrDefault(r.Region))
	switch {
	case !newest.IsZero() && !r.CheckedAt.After(newest):
		// A re-delivery or a late event: nothing to wait for.
		p.apply(ctx, st, r)
	case st.holding() == 0 && p.order.ready(string(ctx.Topic()), ctx.Partition(), ctx.Offset(), r.CheckedAt, p.cfg.Now()):
		// Nothing held and nothing to wait for (live, or a backlog past
		// its first quietFor): what holding it and flushing would do, without
		// storing the event in the state and reading it back.
		p.apply(ctx, st, r)
	default:
		st.hold(&pending{Result: r, Topic: string(ctx.Topic()), Offset: ctx.Offset(), HeldAt: p.cfg.Now()})
	}
	p.flush(ctx, st)
	p.countHolding(ctx.Key(), st)
	p.wb.Store(ctx, st, inTable)
}

// value returns the URL's state: the one written behind and not yet
// written, the table's, or a new one (inTable false).
func (p *Processor) value(ctx goka.Context) (st *state, inTable bool) {
	if st, ok := p.wb.Get(ctx.Key()); ok {
		return st, true
	}
	st, _ = ctx.Value().(*state)
	inTable = st != nil
	if st == nil {
		st = &state{}
	}
	// A state upgraded from version 1 without sent or held events does
	// not know its URL.
	st.URL = ctx.Key()
	return st, inTable
}

// visitPass is the meta of a visit pass: full, and the states written
// behind that the pass wrote.
type visitPass struct {
	full    bool
	written *kafkarun.WritePass
}

// visit applies the held-back events of one URL that may go now. all
// (the visit's meta) is true for a visit after a start or a rebalance,
// when the table may hold events held by a previous owner; otherwise only
// URLs known to hold events are read.
func (p *Processor) visit(ctx goka.Context, meta any) {
	pass, _ := meta.(*visitPass)
	if (pass == nil || !pass.full) && !p.isHolding(ctx.Key()) {
		return
	}
	st, _ := p.value(ctx)
	if st.holding() == 0 {
		p.countHolding(ctx.Key(), st)
		return
	}
	n := st.holding()
	p.flush(ctx, st)
	p.countHolding(ctx.Key(), st)
	if st.holding() != n {
		ctx.SetValue(st)
		if pass != nil {
			// The state written behind is written now: its events go once
			// the pass is in Kafka.
			pass.written.Add(p.wb.Take(ctx.Key()))
		}
	}
}

// countHolding keeps the set of URLs with held-back events.
func (p *Processor) countHolding(url string, st *state) {
	p.holdingMu.Lock()
	defer p.holdingMu.Unlock()
	_, known := p.holdingURLs[url]
	switch after := st.holding() > 0; {
	case after && !known:
		p.holdingURLs[url] = struct{}{}
	case !after && known:
		delete(p.holdingURLs, url)
	}
	p.holding.Store(int64(len(p.holdingURLs)))
}

func (p *Processor) isHolding(url string) bool {
	p.holdingMu.Lock()
	defer p.holdingMu.Unlock()
	_, ok := p.holdingURLs[url]
	return ok
}

// flush applies st's held-back events, oldest first, while they may go.
func (p *Processor) flush(ctx goka.Context, st *state) {
	for st.holding() > 0 {
		e := st.oldestHeld()
		if st.holding() <= maxPending && !p.order.ready(e.Topic, ctx.Partition(), e.Offset, e.Result.CheckedAt, e.HeldAt) {
			// Asked first: the attributes cost an allocation each, at
			// every event of a backlog's first quietFor.
			if p.log.Enabled(context.Background(), slog.LevelDebug) {
				p.log.Debug("events held back until the other input topic catches up", "url", ctx.Key(),
					"held", st.holding(), "oldest_event_id", e.Result.EventID, "partition", ctx.Partition())
			}
			return
		}
		st.held.dropFirst()
		p.apply(ctx, st, e.Result)
	}
}

// apply folds one event into st and emits the changes it makes.
func (p *Processor) apply(ctx goka.Context, st *state, r *codecs.Result) {
	rule := (*p.sites.Load())[r.URL]
	v, out := p.rules.apply(st, r, rule)
	switch v {
	case late:
		p.metrics.late.Inc()
		p.log.Debug("event older than its region's newest applied, not applied", "url", r.URL, "event_id", r.EventID,
			"region", codecs.RegionOrDefault(r.Region), "checked_at", r.CheckedAt, "newest", st.regionNewest(codecs.RegionOrDefault(r.Region)))
		return
	case duplicate:
		p.metrics.duplicates.Inc()
		for _, c := range out {
			p.metrics.resent.Inc()
			ctx.Emit(p.cfg.Topics.Changes, r.URL, c)
		}
		return
	}
	for _, c := range out {
		ctx.Emit(p.cfg.Topics.Changes, r.URL, c)
		p.metrics.changes.WithLabelValues(c.Kind).Inc()
		p.logChange(c)
	}
}

func (p *Processor) logChange(c *codecs.StatusChange) {
	attrs := []any{"kind", c.Kind, "site", c.Name, "url", c.URL, "state", c.State, "previous_state", c.PreviousState,
		"since", c.Since, "consecutive", c.Consecutive, "change_id", c.ChangeID}
	if c.ErrorKind != nil {
		attrs = append(attrs, "error_kind", *c.ErrorKind)
	}
	if c.ErrorMessage != nil {
		attrs = append(attrs, "error", *c.ErrorMessage)
	}
	if c.TLSNotAfter != nil {
		attrs = append(attrs, "tls_not_after", *c.TLSNotAfter)
	}
	if len(c.Regions) > 0 {
		attrs = append(attrs, "regions", c.Regions)
	}
	switch c.Kind {
	case codecs.ChangeDown, codecs.ChangeCertExpiring:
		p.log.Warn("status change", attrs...)
	default:
		p.log.Info("status change", attrs...)
	}
}
