package urlchecker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/telemetry"
)

// RequestEmitterConfig configures a RequestEmitter.
type RequestEmitterConfig struct {
	Brokers []string
	// Sarama is the connection configuration; required unless
	// EmitterOptions supply the producer (goka's tester).
	Sarama *sarama.Config
	// Topic defaults to the contract's status_request_created.
	Topic goka.Stream
	// Buffer is the most requests waiting for Kafka; beyond it the oldest
	// is dropped and counted. DefaultBuffer when zero.
	Buffer int
	// DrainTimeout bounds the flush at shutdown; 10 s when zero.
	DrainTimeout time.Duration
	// Logger defaults to discarding logs.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Health, when not nil, is told when requests cannot be delivered to
	// Kafka for longer than OutageAfter (telemetry.DefaultOutageAfter when
	// zero), and nil once they are again.
	Health      func(error)
	OutageAfter time.Duration
	// EmitterOptions are appended to the ones built from Sarama.
	EmitterOptions []goka.EmitterOption
	// Stored, when not nil, hears the partition and offset of every
	// request Kafka stored (scheduler.Admission.Produced). Called from the
	// producer's goroutine: it must not block.
	Stored func(partition int32, offset int64)
}

// RequestEmitter puts check requests on the requests topic, keyed by URL
// and partitioned with goka's hasher, as the url_checker group table
// requires. Its Emit method is the scheduler's EmitFunc: it never blocks,
// buffers within Buffer while Kafka is away, retries, and counts what it
// drops.
type RequestEmitter struct {
	cfg     RequestEmitterConfig
	box     *outbox
	running atomic.Bool
}

// NewRequestEmitter checks the configuration; Run connects.
func NewRequestEmitter(cfg RequestEmitterConfig) (*RequestEmitter, error) {
	if cfg.Sarama == nil && len(cfg.EmitterOptions) == 0 {
		return nil, errors.New("urlchecker: RequestEmitterConfig.Sarama is required")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopics.Requests
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := newOutboxMetrics("requests")
	if err := telemetry.Register(cfg.Registerer, "request emitter", m.collectors()...); err != nil {
		return nil, err
	}
	e := &RequestEmitter{cfg: cfg}
	log := cfg.Logger.With("component", "request_emitter")
	opts := append([]goka.EmitterOption{goka.WithEmitterHasher(requestHasher)}, cfg.EmitterOptions...)
	e.box = newOutbox("requests", log, cfg.Buffer, 1000, m, func() (map[goka.Stream]*goka.Emitter, error) {
		return openEmitters(cfg.Brokers, cfg.Sarama, log, opts, emitterSpec{cfg.Topic, codecs.RequestCodec{}})
	})
	e.box.outage = &telemetry.Outage{What: "delivery of check requests to kafka", After: cfg.OutageAfter, Report: cfg.Health}
	return e, nil
}

// requestHasher places requests on partitions: goka's default hasher,
// which the group table's partitions follow too, so a URL's requests and
// its table row are on the same partition.
var requestHasher = goka.DefaultHasher()

// requestPartitioners hold sarama partitioners built on requestHasher
// (each has hash state, and building one costs a random source).
var requestPartitioners = sync.Pool{New: func() any {
	return sarama.NewCustomHashPartitioner(requestHasher)("")
}}

// RequestPartition is the partition, of count, that a RequestEmitter puts
// the requests for url on: the producer's own partitioner, so that the
// emitter scheduling the sites of a partition (scheduler.Share) is the one
// that consumes their requests.
func RequestPartition(url string, count int32) int32 {
	p := requestPartitioners.Get().(sarama.Partitioner)
	defer requestPartitioners.Put(p)
	n, err := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(url)}, count)
	if err != nil {
		// A string key always encodes, and the hash always writes.
		panic(fmt.Sprintf("urlchecker: partition of %q: %v", url, err))
	}
	return n
}

// Emit queues one request. It returns an error only after Run ended (the
// request is then counted as dropped).
func (e *RequestEmitter) Emit(_ context.Context, req *codecs.Request) error {
	return e.box.push(&item{topic: e.cfg.Topic, key: req.URL, value: req, done: func(error) {}, stored: e.cfg.Stored})
}

// Buffered is the number of requests waiting for Kafka: in the buffer, or
// sent and not yet acknowledged.
func (e *RequestEmitter) Buffered() int { return e.box.buffered() }

// Run sends requests until ctx ends, then flushes what is buffered within
// DrainTimeout; what could not be sent by then is dropped and counted.
// Requests emitted before Run starts wait in the buffer.
func (e *RequestEmitter) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("urlchecker: RequestEmitter.Run called twice")
	}
	go e.box.loop()
	<-ctx.Done()
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.DrainTimeout)
	defer cancel()
	if err := e.box.close(drainCtx); err != nil {
		return fmt.Errorf("request emitter: %w", err)
	}
	return nil
}
