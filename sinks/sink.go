package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
	"github.com/sitewatch/sitewatch/internal/retry"
	"github.com/sitewatch/sitewatch/telemetry"
)

// Store is where a sink writes. Implementations: sinks/postgres and
// sinks/sqlite.
//
// Both methods write their whole slice in one transaction and are
// idempotent: writing the same result (event_id) again changes nothing,
// and a window replaces the stored one only with a higher revision.
// Rejected lists the rows the store refused as invalid (they go to the
// dead-letter topic; the other rows are written). A non-nil error means the
// whole batch failed and nothing was committed; the sink retries it.
type Store interface {
	WriteResults(ctx context.Context, rs []*codecs.Result) ([]Rejected, error)
	WriteWindows(ctx context.Context, ws []*codecs.Window) ([]Rejected, error)
}

// IncidentStore is a Store that also keeps the incidents table from
// status_changes (the processor's sink-incidents, a sink of Kind Changes):
// WriteChanges opens an incident with a down change (one per
// down_change_id, at most one open per URL) and closes it with the up
// change that follows; other kinds are accepted and change nothing.
// Changes are applied in slice order, which for one URL is the order of its
// partition. OpenIncidents counts the incidents still open, which the sink
// exports as sitewatch_incidents_open.
type IncidentStore interface {
	Store
	ChangeWriter
	OpenIncidents(ctx context.Context) (int64, error)
}

// ChangeWriter is where a sink of status changes (Kind Changes) hands its
// batches: sinks/notify delivers them to webhooks. The contract is the
// Store's: WriteChanges returns only when every change is either done
// (delivered, written) or Rejected with a reason (it goes to the
// dead-letter topic); a non-nil error means the batch is not done and the
// sink tries it again (or, at shutdown, leaves it uncommitted to be read
// again). A change may be handed over more than once (after a crash, a
// rebalance or an interrupted flush), so writers are idempotent on
// change_id or, like webhooks, pass the change_id on for the receiver to
// deduplicate.
type ChangeWriter interface {
	WriteChanges(ctx context.Context, cs []*codecs.StatusChange) ([]Rejected, error)
}

// Rejected is a row that the store refused as invalid: Index is its
// position in the slice passed to the store, Reason says why.
type Rejected struct {
	Index  int
	Reason string
}

// Kind says what a sink consumes and which Store method it calls.
type Kind int

// The kinds of sink.
const (
	// Results consumes result events (codecs.Result) into check_results.
	Results Kind = iota + 1
	// Windows consumes window aggregates (codecs.Window) into check_windows.
	Windows
	// Changes consumes status changes (codecs.StatusChange) into a
	// ChangeWriter; build it with NewChanges.
	Changes
)

// String returns "results", "windows" or "incidents", the value of the
// sink label of the metrics.
func (k Kind) String() string {
	switch k {
	case Results:
		return "results"
	case Windows:
		return "windows"
	case Changes:
		return "changes"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Defaults for the zero values of Config.
const (
	DefaultBatchSize     = 1000
	DefaultFlushInterval = time.Second
	// DefaultWriteBatches is Config.WriteRows in batches: a backlog
	// written in transactions of 10,000 rows costs about what a bulk COPY
	// in calls of that size costs.
	DefaultWriteBatches = 10
	DefaultBackoffMin   = 100 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultDrainTimeout = 10 * time.Second
)

// Config configures a Sink. Zero durations and sizes take the defaults.
type Config struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	// Sarama is the caller's client configuration (version, TLS, SASL). The
	// sink works on a copy and forces what its guarantees need: a new
	// group starts at the oldest offset, consumer errors are returned to
	// it, and the dead-letter producer is synchronous.
	Sarama *sarama.Config
	// Group is the consumer group id.
	Group string
	// Topics are the topics consumed.
	Topics []string
	// Kind selects the decoder and the Store method (NewChanges sets
	// Changes).
	Kind Kind
	// Name is the sink label of the metrics and the sink attribute of the
	// logs (default: the kind's name). Two sinks of one kind on the same
	// registry need different names to keep their series apart.
	Name string
	// DeadLetterTopic receives undecodable messages and rejected rows.
	DeadLetterTopic string
	// BatchSize is the number of messages per partition that triggers a
	// flush (default 1000).
	BatchSize int
	// FlushInterval is the longest a consumed message waits in a batch
	// before it is flushed (default 1s).
	FlushInterval time.Duration
	// Writers is the number of store writes of results or windows in
	// flight at once, each of batches of other partitions (default: the
	// store's WriteConcurrency, or 1 for a store without one). Status
	// changes are written one batch at a time.
	Writers int
	// WriteRows is how many rows a store write of results or windows
	// gathers, at most (plus one batch), from the batches of several
	// partitions that are due when it starts (default 10 × BatchSize).
	WriteRows int
	// BackoffMin and BackoffMax bound the exponential backoff (with
	// jitter) between retries of a failed store write or dead-letter
	// produce (default 100ms and 30s).
	BackoffMin, BackoffMax time.Duration
	// DrainTimeout bounds the final flush of a partition's batch when the
	// sink stops or the partition is revoked (default 10s). A batch not
	// flushed in time is left uncommitted and is consumed again later.
	DrainTimeout time.Duration
	// Logger receives the sink's logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the sink's metrics (default: not exported).
	Registerer prometheus.Registerer
	// Health, when not nil, is told when store writes have failed for
	// longer than OutageAfter (telemetry.DefaultOutageAfter when zero), and
	// nil at the next successful write.
	Health      func(error)
	OutageAfter time.Duration
}

// Sink consumes one kind of event from Kafka into a Store or a
// ChangeWriter. Build it with New or NewChanges and start it with Run.
type Sink struct {
	cfg     Config
	sarama  *sarama.Config
	store   Store
	changes ChangeWriter
	log     *slog.Logger
	m       *metrics
	outage  *telemetry.Outage
}

// New checks cfg, applies its defaults and returns a sink that writes
// results or windows to store. It does not connect to Kafka: Run does.
func New(cfg Config, store Store) (*Sink, error) {
	if cfg.Kind == Changes {
		return nil, errors.New("sink changes: build it with NewChanges")
	}
	var dst any
	if store != nil {
		dst = store
	}
	return newSink(cfg, store, nil, dst)
}

// NewChanges is New for a sink of status changes (Kind Changes) that
// hands them to w.
func NewChanges(cfg Config, w ChangeWriter) (*Sink, error) {
	cfg.Kind = Changes
	var dst any
	if w != nil {
		dst = w
	}
	return newSink(cfg, nil, w, dst)
}

// newSink is New and NewChanges: dst is the store or writer (nil when
// none was given).
func newSink(cfg Config, store Store, changes ChangeWriter, dst any) (*Sink, error) {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.WriteRows == 0 {
		cfg.WriteRows = DefaultWriteBatches * cfg.BatchSize
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Kind.String()
	}
	var errs []error
	if dst == nil {
		errs = append(errs, errors.New("no store"))
	}
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("no consumer group"))
	}
	if len(cfg.Topics) == 0 {
		errs = append(errs, errors.New("no topics"))
	}
	if cfg.Kind != Results && cfg.Kind != Windows && cfg.Kind != Changes {
		errs = append(errs, fmt.Errorf("unknown kind %d", int(cfg.Kind)))
	}
	if cfg.DeadLetterTopic == "" {
		errs = append(errs, errors.New("no dead-letter topic"))
	}
	if cfg.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size %d: must be positive", cfg.BatchSize))
	}
	if cfg.Writers < 0 || cfg.WriteRows < 0 {
		errs = append(errs, fmt.Errorf("writers %d and write rows %d: must be positive", cfg.Writers, cfg.WriteRows))
	}
	if cfg.FlushInterval < 0 || cfg.BackoffMin < 0 || cfg.DrainTimeout < 0 {
		errs = append(errs, errors.New("flush interval, backoff and drain timeout must be positive"))
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff max %s is below backoff min %s", cfg.BackoffMax, cfg.BackoffMin))
	}
	// A group without committed offsets reads from the earliest offset,
	// consumer errors come back to Run (which logs them), and the
	// dead-letter producer is synchronous: an offset is marked only after
	// Kafka has acknowledged the batch's dead letters.
	sc := kafkarun.Config(cfg.Sarama)
	// Offsets are committed by the claims only, one Commit at a time (see
	// handler.commit): sarama's offset manager deadlocks when Commit runs
	// on several goroutines, or beside its own auto-commit loop, while the
	// coordinator answers NOT_COORDINATOR (a claim's Commit waits for the
	// manager's broker lock, held by the loop refreshing the coordinator,
	// which waits for the broker's lock, held by another Commit waiting for
	// the partition managers' lock; the fault suite's coordinator test left
	// the sink's group empty for good so). Every batch is committed right
	// after it is stored, so nothing relies on the loop.
	sc.Consumer.Offsets.AutoCommit.Enable = false
	// A partition's final flush must end before the group gives up on this
	// member during a rebalance.
	if cfg.DrainTimeout >= sc.Consumer.Group.Rebalance.Timeout {
		errs = append(errs, fmt.Errorf("drain timeout %s must be below the consumer group rebalance timeout %s", cfg.DrainTimeout, sc.Consumer.Group.Rebalance.Timeout))
	}
	if err := sc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("kafka config: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	m, err := newMetrics(cfg.Registerer, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
	}
	if _, ok := dst.(incidentCounter); ok {
		if err := m.registerOpenIncidents(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("sink %s: %w", cfg.Name, err)
		}
	}
	// A store with metrics of its own (rows already stored, rows in the
	// default partition) exports them with the sink's; both sinks of a
	// processor share the store, so the second finds them registered.
	if c, ok := dst.(prometheus.Collector); ok {
		if _, err := registerOrReuse(cfg.Registerer, c); err != nil {
			return nil, fmt.Errorf("sink %s: register store metrics: %w", cfg.Name, err)
		}
	}
	return &Sink{
		cfg:     cfg,
		sarama:  sc,
		store:   store,
		changes: changes,
		log:     cfg.Logger.With("sink", cfg.Name, "group", cfg.Group),
		m:       m,
		outage:  &telemetry.Outage{What: "store writes", After: cfg.OutageAfter, Report: cfg.Health},
	}, nil
}

// Run consumes until ctx is done, then flushes and commits the batches in
// hand (each within DrainTimeout), leaves the group and returns nil. It
// returns an error only when it cannot connect to Kafka at start; later
// failures (store outages, broker restarts, rebalances) are retried.
func (s *Sink) Run(ctx context.Context) error {
	client, err := sarama.NewClient(s.cfg.Brokers, s.sarama)
	if err != nil {
		return fmt.Errorf("sink %s: connect to kafka: %w", s.cfg.Name, err)
	}
	defer client.Close()
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return fmt.Errorf("sink %s: dead-letter producer: %w", s.cfg.Name, err)
	}
	defer producer.Close()
	group, err := sarama.NewConsumerGroupFromClient(s.cfg.Group, client)
	if err != nil {
		return fmt.Errorf("sink %s: consumer group %s: %w", s.cfg.Name, s.cfg.Group, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for err := range group.Errors() {
			s.log.Warn("kafka consumer error", "err", err)
		}
	})
	defer func() {
		// Close leaves the group so that its partitions move to the other
		// members at once; it also ends the Errors loop.
		if err := group.Close(); err != nil {
			s.log.Warn("close consumer group", "err", err)
		}
		wg.Wait()
	}()

	// The open-incidents gauge starts from the store, not from zero.
	s.countOpenIncidents(ctx, s.log)
	h := &handler{s: s, producer: producer}
	s.log.Info("sink started", "topics", s.cfg.Topics, "batch_size", s.cfg.BatchSize, "flush_interval", s.cfg.FlushInterval)
	for attempt := 0; ; {
		// Consume returns at every rebalance; join again until ctx ends.
		err := group.Consume(ctx, s.cfg.Topics, h)
		if ctx.Err() != nil {
			s.log.Info("sink stopped")
			return nil
		}
		if err == nil {
			attempt = 0
			continue
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return fmt.Errorf("sink %s: %w", s.cfg.Name, err)
		}
		attempt++
		d := retry.Delay(s.cfg.BackoffMin, s.cfg.BackoffMax, attempt)
		s.log.Warn("join consumer group failed, retrying", "attempt", attempt, "retry_in", d, "err", err)
		if !retry.Sleep(ctx, d) {
			return nil
		}
	}
}

// retry calls fn until it succeeds or ctx is done (retry.Do, with the
// backoff of BackoffMin and BackoffMax), calling onFail after every
// failure. It returns nil, or an error once ctx is done.
func (s *Sink) retry(ctx context.Context, log *slog.Logger, what string, onFail func(error), fn func(context.Context) error) error {
	return retry.Do(ctx, log, what, retry.Backoff{Min: s.cfg.BackoffMin, Max: s.cfg.BackoffMax}, func(ctx context.Context) error {
		err := fn(ctx)
		if err != nil && ctx.Err() == nil && onFail != nil {
			onFail(err)
		}
		return err
	})
}
