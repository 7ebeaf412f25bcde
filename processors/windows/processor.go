package windows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
)

// Defaults of Config.
const (
	DefaultGroup       goka.Group = "windows"
	DefaultWindowSize             = 5 * time.Minute
	DefaultGrace                  = time.Minute
	DefaultIdleCheck              = 15 * time.Second
	DefaultIdleAfter              = time.Minute
	DefaultForgetAfter            = 24 * time.Hour
)

// visitorName is the goka visitor that closes idle windows.
const visitorName = "close-idle"

// Topics names the streams the processor reads and writes.
type Topics struct {
	// Succeeded and Failed are the result topics (status_request_succeeded
	// and status_request_failed), read.
	Succeeded, Failed goka.Stream
	// Windows (status_windows) receives the window aggregates.
	Windows goka.Stream
	// DeadLetters (sitewatch_dead_letters) receives undecodable messages.
	DeadLetters goka.Stream
}

// Config configures a Processor. Zero fields take the defaults above.
type Config struct {
	Brokers []string
	// Sarama is the caller's Kafka configuration (TLS, SASL, version). The
	// processor works on copies and always starts a group without committed
	// offsets from the oldest offset. Nil means goka.DefaultConfig().
	Sarama *sarama.Config
	Topics Topics
	// Group is the goka group; its table topic is "<Group>-table".
	Group goka.Group
	// WindowSize is the window length; windows are aligned to the Unix
	// epoch in UTC.
	WindowSize time.Duration
	// Grace is how far (in event time) a URL's newest check may be past a
	// window's end while a late event still updates the window.
	Grace time.Duration
	// IdleCheck is how often the clock looks for URLs that went silent.
	IdleCheck time.Duration
	// IdleAfter is how long (wall time) a URL must have sent nothing, and
	// how long after a window's end plus Grace, before the clock emits that
	// window. A removed site's last window is thus emitted about
	// Grace+IdleAfter+IdleCheck after its end.
	IdleAfter time.Duration
	// ForgetAfter is how long (wall time) a URL must have sent nothing
	// before its state is deleted from the table.
	ForgetAfter time.Duration
	// Now is the wall clock (tests pass a fake one).
	Now func() time.Time
	// Storage builds the local copy of the group table. When nil,
	// StorageDir selects goka's LevelDB storage under that directory, and
	// an empty StorageDir keeps it in memory (rebuilt from the table topic
	// at every start).
	Storage    storage.Builder
	StorageDir string
	Logger     *slog.Logger
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Health, when not nil, is told why the processor is not processing
	// (starting, restarting after a failure), and nil once it is again.
	Health func(error)
	// TopicManager creates the table topic. Nil means goka's topic manager
	// with goka's defaults (replication 2) over a copy of Sarama.
	TopicManager goka.TopicManagerBuilder
	// GokaOptions are appended after the processor's own options; tests
	// pass goka.WithTester here.
	GokaOptions []goka.ProcessorOption
}

// withDefaults returns cfg with its zero fields filled in, or an error
// naming the first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.WindowSize == 0 {
		cfg.WindowSize = DefaultWindowSize
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.IdleCheck == 0 {
		cfg.IdleCheck = DefaultIdleCheck
	}
	if cfg.IdleAfter == 0 {
		cfg.IdleAfter = DefaultIdleAfter
	}
	if cfg.ForgetAfter == 0 {
		cfg.ForgetAfter = DefaultForgetAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
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
	// Every event rewrites its URL's whole table value, mostly event_ids
	// (random hex) and response times (float bits): a compressor finds
	// nearly nothing to shrink and was the processor's biggest single cost
	// (snappy ~12 % of its CPU while a backlog drains). The copy keeps the
	// caller's configuration for everything else.
	noCompression := *cfg.Sarama
	noCompression.Producer.Compression = sarama.CompressionNone
	cfg.Sarama = &noCompression
	if cfg.Storage == nil {
		cfg.Storage = kafkarun.Storage(cfg.StorageDir)
	}
	var errs []error
	for name, t := range map[string]goka.Stream{
		"Succeeded": cfg.Topics.Succeeded, "Failed": cfg.Topics.Failed,
		"Windows": cfg.Topics.Windows, "DeadLetters": cfg.Topics.DeadLetters,
	} {
		if t == "" {
			errs = append(errs, fmt.Errorf("topic %s is empty", name))
		}
	}
	if cfg.WindowSize < 0 || cfg.Grace < 0 || cfg.IdleCheck < 0 || cfg.IdleAfter < 0 || cfg.ForgetAfter < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if cfg.ForgetAfter < cfg.WindowSize+cfg.Grace+cfg.IdleAfter {
		errs = append(errs, fmt.Errorf("ForgetAfter %v is shorter than WindowSize+Grace+IdleAfter", cfg.ForgetAfter))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("windows config: %w", err)
	}
	return cfg, nil
}

// Processor is the windows goka processor.
type Processor struct {
	cfg      Config
	rules    params
	log      *slog.Logger
	metrics  *metrics
	progress *progress
	// marks say which input messages are done, see params.advance, and
	// hold the messages of held states.
	marks *kafkarun.Marks
	wb    kafkarun.WriteBehind[*state]
	dead  kafkarun.DeadLetters
	// sup runs the goka processor and replaces it after a failure.
	sup *kafkarun.Supervisor
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
		rules: params{
			size:        cfg.WindowSize,
			grace:       cfg.Grace,
			idleAfter:   cfg.IdleAfter,
			forgetAfter: cfg.ForgetAfter,
		},
		log:      cfg.Logger.With("processor", string(cfg.Group)),
		metrics:  newMetrics(),
		progress: newProgress(string(cfg.Topics.Succeeded), string(cfg.Topics.Failed)),
		marks:    kafkarun.NewMarks(),
	}
	p.wb = kafkarun.WriteBehind[*state]{Marks: p.marks, Max: kafkarun.WriteBehindMax, For: kafkarun.WriteBehindFor, Writes: p.metrics.writes, Held: p.metrics.heldApplied}
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
		goka.WithRebalanceCallback(func(goka.Assignment) {
			p.progress.reset()
			p.wb.Reset()
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
		return nil, fmt.Errorf("create windows processor: %w", err)
	}
	// Registered last, so that a New that failed can be retried with the
	// same registry.
	if err := p.metrics.register(cfg.Registerer); err != nil {
		return nil, err
	}
	return p, nil
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
		goka.Output(t.Windows, codecs.WindowCodec{}),
		goka.Output(t.DeadLetters, codecs.DeadLetterCodec{}),
		goka.Visitor(visitorName, p.visit),
		goka.Visitor(kafkarun.WriteBehindVisitor, p.wb.Visit),
		// Each graph (a rebuilt processor recovers its table afresh) has
		// its own cache of the states it stored: see kafkarun.CachedCodec.
		goka.Persist(&kafkarun.CachedCodec{Codec: stateCodec{}, Verify: verifyCache}),
	)
}

// Run consumes until ctx ends, closing the windows of silent URLs every
// IdleCheck. A goka processor that fails (a consumer-group error such as a
// JoinGroup that outlived the client's read timeout during a rebalance, a
// broker away for too long) is rebuilt with backoff, logged and counted in
// sitewatch_windows_restarts_total: its state comes back from the table
// topic and its uncommitted input is read again, which the event_ids
// deduplicate. After ctx ends Run waits for goka to stop (pending
// emissions and table writes are flushed) and returns nil. It can be
// called once.
func (p *Processor) Run(ctx context.Context) error {
	return p.sup.Serve(ctx)
}

// runOnce runs the current goka processor until ctx ends or it fails.
func (p *Processor) runOnce(ctx context.Context, proc *goka.Processor) error {
	// goka runs on its own context, cancelled only between two idle-close
	// passes: a pass that goka aborts mid-way leaves its visitors running
	// (goka then reads their counter unsynchronised), so none is ever
	// aborted by our shutdown.
	gokaCtx, stopGoka := context.WithCancel(context.WithoutCancel(ctx))
	defer stopGoka()
	done := make(chan error, 1)
	go func() { done <- proc.Run(gokaCtx) }()
	result := func(err error) error {
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("windows processor: %w", err)
		}
		return nil
	}

	tick := time.NewTicker(p.cfg.IdleCheck)
	defer tick.Stop()
	flush := time.NewTicker(kafkarun.WriteBehindFor / 2)
	defer flush.Stop()
	for {
		select {
		case err := <-done:
			return result(err)
		case <-ctx.Done():
			// What is held is written before goka stops, so that a
			// restart does not read it all again.
			if proc.Recovered() {
				if err := p.wb.FlushAll(gokaCtx, proc); err != nil {
					p.log.Warn("write held states at shutdown; their events are read again at the next start", "err", err)
				}
			}
			stopGoka()
			return result(<-done)
		case <-flush.C:
			if !proc.Recovered() {
				continue
			}
			err := p.wb.Flush(gokaCtx, proc, time.Now())
			if err != nil && gokaCtx.Err() == nil && !errors.Is(err, goka.ErrVisitAborted) {
				p.log.Warn("write held states", "err", err)
			}
		case <-tick.C:
			// While goka recovers the table or rebalances, a visit would
			// wait for it; the next tick will do.
			if !proc.Recovered() {
				continue
			}
			err := p.closeIdle(gokaCtx, proc)
			if err != nil && gokaCtx.Err() == nil && !errors.Is(err, goka.ErrVisitAborted) {
				p.log.Warn("close idle windows", "err", err)
			}
		}
	}
}

// WaitForReady blocks until the processor has recovered its table and is
// consuming, or ctx ends.
func (p *Processor) WaitForReady(ctx context.Context) error {
	return p.sup.WaitForReady(ctx)
}

// CloseIdle runs one pass of the idle close over every URL in the
// partitions this instance owns, at the wall time of Config.Now. Run calls
// it every IdleCheck; tests call it after moving their fake clock.
func (p *Processor) CloseIdle(ctx context.Context) error {
	proc := p.sup.Current()
	if proc == nil {
		return errors.New("close idle windows: the processor is restarting")
	}
	return p.closeIdle(ctx, proc)
}

func (p *Processor) closeIdle(ctx context.Context, proc *goka.Processor) error {
	if err := proc.VisitAll(ctx, visitorName, p.cfg.Now()); err != nil {
		return fmt.Errorf("close idle windows: %w", err)
	}
	return nil
}

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
		// another key would be counted in the wrong URL's windows.
		p.deadLetter(ctx, data, fmt.Errorf("message key %q differs from url %q", ctx.Key(), r.URL))
		return
	}

	now := p.cfg.Now()
	// The topic's progress is capped like the watermark (see apply).
	low := p.progress.observe(ctx.Partition(), string(ctx.Topic()), earliest(r.CheckedAt, now.Add(p.cfg.WindowSize)), now)
	st, inTable := p.stateOf(ctx)
	if st == nil {
		st = &state{}
	}
	pos := position{topic: string(ctx.Topic()), offset: ctx.Offset(), done: p.marks.Done(ctx.Partition())}
	verdict, out := p.rules.applyAt(st, r, now, low, pos)
	switch verdict {
	case duplicate:
		p.metrics.duplicates.Inc()
		p.log.Debug("duplicate event ignored", "url", r.URL, "event_id", r.EventID, "checked_at", r.CheckedAt)
		p.emit(ctx, out)
		if len(out) > 0 {
			p.wb.Store(ctx, st, inTable) // the windows re-sent record this message
		}
		return
	case tooLate:
		p.metrics.tooLate.Inc()
		p.log.Warn("event too late for its window, not counted",
			"url", r.URL, "event_id", r.EventID, "checked_at", r.CheckedAt,
			"watermark", st.Watermark, "input_low_mark", low, "grace", p.cfg.Grace)
		return
	}
	p.emit(ctx, out)
	p.wb.Store(ctx, st, inTable)
}

// visit is the idle close of one URL; meta is the wall time of the pass.
func (p *Processor) visit(ctx goka.Context, meta any) {
	now, ok := meta.(time.Time)
	if !ok {
		now = p.cfg.Now()
	}
	if _, held := p.wb.Get(ctx.Key()); held {
		return // an event came a moment ago: not idle
	}
	st, _ := ctx.Value().(*state)
	if st == nil {
		return
	}
	out, forget := p.rules.closeIdle(st, now)
	p.emit(ctx, out)
	switch {
	case forget:
		p.log.Info("forgetting silent url", "url", ctx.Key(), "last_arrival", st.LastArrival)
		ctx.Delete()
	case len(out) > 0:
		ctx.SetValue(st)
		p.metrics.writes.Inc()
	}
}

func (p *Processor) emit(ctx goka.Context, out []emission) {
	for _, e := range out {
		e.window.URL = ctx.Key()
		ctx.Emit(p.cfg.Topics.Windows, ctx.Key(), e.window)
		p.metrics.emitted.WithLabelValues(e.trigger).Inc()
	}
}

// deadLetter sends a message that cannot be processed to the dead-letter
// topic, with where it came from and why, and goes on with the next one.
func (p *Processor) deadLetter(ctx goka.Context, data []byte, reason error) {
	p.dead.Send(ctx, data, reason)
}
