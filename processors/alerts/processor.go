package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/gokautil"
)

// Defaults of Config, as in the contract's flags.
const (
	DefaultGroup     goka.Group = "alerts"
	DefaultFailures             = 3
	DefaultSuccesses            = 2
	DefaultCertDays             = 14
)

// consumerName is the consumer recorded in dead letters.
const consumerName = "alerts"

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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Storage == nil {
		if cfg.StorageDir != "" {
			cfg.Storage = storage.DefaultBuilder(cfg.StorageDir)
		} else {
			cfg.Storage = storage.MemoryBuilder()
		}
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
	marks   *gokautil.CommitMarks
	sup     *gokautil.Supervisor
	// onChange, when set, sees every change emitted (the all-in-one logs
	// them); called from goka's partition goroutines.
	onChange atomic.Pointer[func(*codecs.StatusChange)]
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
		},
		log:     cfg.Logger.With("processor", string(cfg.Group)),
		metrics: newMetrics(),
		marks:   gokautil.NewCommitMarks(),
	}
	p.SetRules(cfg.Rules)
	saramaCopy := func() *sarama.Config { return gokautil.GroupSarama(cfg.Sarama) }
	tm := cfg.TopicManager
	if tm == nil {
		tm = goka.TopicManagerBuilderWithConfig(saramaCopy(), goka.NewTopicManagerConfig())
	}
	opts := append([]goka.ProcessorOption{
		goka.WithLogger(gokautil.LibraryLogger(cfg.Logger.With("lib", "goka", "processor", string(cfg.Group)))),
		goka.WithStorageBuilder(cfg.Storage),
		goka.WithTopicManagerBuilder(tm),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(saramaCopy())),
		// In-order commits: a crash must not skip a message whose change
		// was still in flight while a later message's offset committed.
		goka.WithConsumerGroupBuilder(gokautil.InOrderCommits(goka.ConsumerGroupBuilderWithConfig(saramaCopy()), p.marks)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(saramaCopy())),
		goka.WithNilHandling(goka.NilProcess),
	}, cfg.GokaOptions...)
	p.sup = &gokautil.Supervisor{
		Name:     "alerts",
		Build:    func() (*goka.Processor, error) { return goka.NewProcessor(cfg.Brokers, p.Graph(), opts...) },
		Log:      p.log,
		Restarts: p.metrics.restarts,
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

// OnChange registers fn to see every change emitted, for the all-in-one's
// log and live table. It must not block.
func (p *Processor) OnChange(fn func(*codecs.StatusChange)) { p.onChange.Store(&fn) }

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
		goka.Persist(stateCodec{}),
	)
}

// Run consumes until ctx ends, rebuilding a failed goka processor with
// backoff (sitewatch_alerts_restarts_total, see gokautil.Supervisor).
// After ctx ends it waits for goka to flush and returns nil. It can be
// called once.
func (p *Processor) Run(ctx context.Context) error { return p.sup.Run(ctx) }

// WaitForReady blocks until the processor has recovered its table and is
// consuming, or ctx ends.
func (p *Processor) WaitForReady(ctx context.Context) error { return p.sup.WaitForReady(ctx) }

// consume handles one message from a result topic.
func (p *Processor) consume(ctx goka.Context, msg any) {
	p.metrics.consumed.Inc()
	data, _ := msg.([]byte)
	if len(data) == 0 {
		p.deadLetter(ctx, data, errors.New("empty value"))
		return
	}
	r, err := codecs.DecodeResult(data)
	if err != nil {
		p.deadLetter(ctx, data, err)
		return
	}
	if r.URL != ctx.Key() {
		// The table is keyed by the message key; a result filed under
		// another key would move the wrong URL's state.
		p.deadLetter(ctx, data, fmt.Errorf("message key %q differs from url %q", ctx.Key(), r.URL))
		return
	}
	st, _ := ctx.Value().(*state)
	if st == nil {
		st = &state{}
	}
	rule := (*p.sites.Load())[r.URL]
	v, out := p.rules.apply(st, r, rule)
	switch v {
	case late:
		p.metrics.late.Inc()
		p.log.Debug("event older than the newest applied, not applied", "url", r.URL, "event_id", r.EventID,
			"checked_at", r.CheckedAt, "newest", st.Newest)
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
		if fn := p.onChange.Load(); fn != nil {
			(*fn)(c)
		}
	}
	ctx.SetValue(st)
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
	switch c.Kind {
	case codecs.ChangeDown, codecs.ChangeCertExpiring:
		p.log.Warn("status change", attrs...)
	default:
		p.log.Info("status change", attrs...)
	}
}

// deadLetter sends a message that cannot be processed to the dead-letter
// topic, with where it came from and why, and goes on with the next one.
func (p *Processor) deadLetter(ctx goka.Context, data []byte, reason error) {
	p.metrics.deadLetters.Inc()
	p.log.Warn("message sent to dead letters",
		"topic", string(ctx.Topic()), "partition", ctx.Partition(), "offset", ctx.Offset(),
		"key", ctx.Key(), "reason", reason)
	ctx.Emit(p.cfg.Topics.DeadLetters, ctx.Key(), &codecs.DeadLetter{
		Topic:     string(ctx.Topic()),
		Partition: ctx.Partition(),
		Offset:    ctx.Offset(),
		Key:       []byte(ctx.Key()),
		Value:     data,
		Reason:    reason.Error(),
		Consumer:  consumerName,
		FailedAt:  p.cfg.Now().UTC(),
	})
}
