package urlchecker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/internal/retry"
	"github.com/sitewatch/sitewatch/telemetry"
)

// errClosed is returned by push after the outbox was closed.
var errClosed = errors.New("outbox closed")

// outbox buffers events for Kafka within a fixed number of items, hands
// them to goka emitters, retries failed sends with backoff (on top of
// sarama's own retries) and, when full, drops the oldest event and counts
// it. Every item's done func is called exactly once: after Kafka
// acknowledged it, or after it was counted as dropped.
type outbox struct {
	name   string // "results" or "requests", for logs
	log    *slog.Logger
	open   func() (map[goka.Stream]*goka.Emitter, error)
	limit  int // most items waiting to be handed to the producer
	window int // most items handed to the producer and not yet acknowledged
	m      outboxMetrics
	// outage, when set, hears of every failed and successful delivery.
	outage *telemetry.Outage

	mu       sync.Mutex
	queue    []*item // FIFO, oldest first, from head on
	head     int
	inflight int
	backoff  retry.Backoff
	retryAt  time.Time
	closing  bool // no more pushes; the loop ends when everything is sent
	aborted  bool // give up: drop what is left
	emitters map[goka.Stream]*goka.Emitter
	errLog   retry.RateLog
	dropLog  retry.RateLog

	wake   chan struct{}
	abort  chan struct{}
	exited chan struct{}
}

// item is one event to send.
type item struct {
	topic goka.Stream
	key   string
	value any
	done  func(error)
	// stored, when not nil, hears where Kafka stored the event.
	stored func(partition int32, offset int64)
}

type outboxMetrics struct {
	pending    prometheus.Gauge
	emitted    prometheus.Counter
	dropped    prometheus.Counter
	emitErrors prometheus.Counter
}

// newOutboxMetrics names the series sitewatch_<name>_…; name (requests or
// results) also appears in their HELP texts, so two outboxes never share one.
func newOutboxMetrics(name string) outboxMetrics {
	what := "Check " + name
	return outboxMetrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sitewatch_" + name + "_pending",
			Help: what + " buffered or in flight to Kafka, not yet acknowledged.",
		}),
		emitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_" + name + "_emitted_total",
			Help: what + " acknowledged by Kafka.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_" + name + "_dropped_total",
			Help: what + " dropped because the buffer was full, the shutdown drain ran out of time, or the event could not be encoded.",
		}),
		emitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_" + name + "_emit_errors_total",
			Help: what + ": failed attempts to deliver one to Kafka (each is retried unless the buffer overflows).",
		}),
	}
}

func (m outboxMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.pending, m.emitted, m.dropped, m.emitErrors}
}

func newOutbox(name string, log *slog.Logger, limit, window int, m outboxMetrics, open func() (map[goka.Stream]*goka.Emitter, error)) *outbox {
	return &outbox{
		name: name, log: log, open: open, limit: limit, window: window, m: m,
		backoff: retry.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second},
		errLog:  retry.RateLog{Every: 10 * time.Second},
		dropLog: retry.RateLog{Every: 10 * time.Second},
		wake:    make(chan struct{}, 1),
		abort:   make(chan struct{}),
		exited:  make(chan struct{}),
	}
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// push queues an event. It never blocks: when the buffer is full the
// oldest event is dropped (and counted) to make room.
func (o *outbox) push(it *item) error {
	o.mu.Lock()
	if o.closing || o.aborted {
		o.mu.Unlock()
		o.drop(it, "shutting down")
		return errClosed
	}
	var oldest *item
	if len(o.queue)-o.head >= o.limit {
		oldest = o.popFront()
	}
	o.queue = append(o.queue, it)
	o.setPending()
	o.mu.Unlock()
	if oldest != nil {
		o.drop(oldest, "buffer full")
	}
	o.signal()
	return nil
}

// popFront removes the oldest queued item; o.mu must be held.
func (o *outbox) popFront() *item {
	it := o.queue[o.head]
	o.queue[o.head] = nil
	o.head++
	if o.head == len(o.queue) {
		o.queue, o.head = o.queue[:0], 0
	} else if o.head > 1024 && o.head*2 > len(o.queue) {
		n := copy(o.queue, o.queue[o.head:])
		clear(o.queue[n:])
		o.queue, o.head = o.queue[:n], 0
	}
	return it
}

// pushFront puts a failed item back at the head; o.mu must be held.
func (o *outbox) pushFront(it *item) {
	if o.head > 0 {
		o.head--
		o.queue[o.head] = it
		return
	}
	o.queue = append(o.queue, nil)
	copy(o.queue[1:], o.queue)
	o.queue[0] = it
}

func (o *outbox) setPending() {
	o.m.pending.Set(float64(len(o.queue) - o.head + o.inflight))
}

// buffered is the events waiting: queued, or sent and not acknowledged.
func (o *outbox) buffered() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue) - o.head + o.inflight
}

// drop counts and logs a dropped event and releases it.
func (o *outbox) drop(it *item, reason string) {
	o.m.dropped.Inc()
	o.mu.Lock()
	n, ok := o.dropLog.Allow(time.Now())
	o.mu.Unlock()
	if ok {
		o.log.Warn("event dropped", "events", o.name, "topic", string(it.topic), "key", it.key, "reason", reason, "dropped_since_last_log", n)
	}
	it.done(nil)
}

// loop opens the emitters (retrying while the brokers are unreachable) and
// sends queued items until the outbox is closed and empty, or aborted.
func (o *outbox) loop() {
	defer close(o.exited)
	backoff := retry.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}
	for attempt := 1; ; attempt++ {
		ems, err := o.open()
		if err == nil {
			o.mu.Lock()
			o.emitters = ems
			o.mu.Unlock()
			if attempt > 1 {
				o.log.Info("kafka producer connected", "events", o.name, "attempts", attempt)
			}
			break
		}
		o.outage.Fail(err)
		wait := backoff.Next()
		o.log.Warn("kafka producer unavailable, buffering and retrying", "events", o.name, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-o.abort:
			return
		}
	}
	for {
		it := o.next()
		if it == nil {
			return
		}
		em := o.emitters[it.topic]
		prom, err := em.Emit(it.key, it.value)
		if err != nil {
			// Only encoding fails here, which no retry can fix.
			o.mu.Lock()
			o.inflight--
			o.setPending()
			o.mu.Unlock()
			o.drop(it, fmt.Sprintf("encode: %v", err))
			continue
		}
		prom.ThenWithMessage(func(msg *sarama.ProducerMessage, err error) {
			if err == nil && it.stored != nil && msg != nil {
				it.stored(msg.Partition, msg.Offset)
			}
			o.ack(it, err)
		})
	}
}

// next waits for an item that may be sent now and marks it in flight; nil
// means the loop should end.
func (o *outbox) next() *item {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		if o.aborted || (o.closing && len(o.queue) == o.head && o.inflight == 0) {
			return nil
		}
		var timer <-chan time.Time
		if len(o.queue) > o.head && o.inflight < o.window {
			d := time.Until(o.retryAt)
			if d <= 0 {
				it := o.popFront()
				o.inflight++
				o.setPending()
				return it
			}
			timer = time.After(d)
		}
		o.mu.Unlock()
		select {
		case <-o.wake:
		case <-timer:
		case <-o.abort:
		}
		o.mu.Lock()
	}
}

// ack handles Kafka's answer for one item.
func (o *outbox) ack(it *item, err error) {
	o.mu.Lock()
	o.inflight--
	if err == nil {
		o.backoff.Reset()
		o.retryAt = time.Time{}
		o.setPending()
		o.mu.Unlock()
		o.outage.OK()
		o.m.emitted.Inc()
		it.done(nil)
		o.signal()
		return
	}
	o.m.emitErrors.Inc()
	backoff := o.backoff.Next()
	o.retryAt = time.Now().Add(backoff)
	n, logIt := o.errLog.Allow(time.Now())
	var dropReason string
	switch {
	case o.aborted:
		dropReason = "shutdown drain timed out"
	case len(o.queue)-o.head >= o.limit:
		// The failed item is the oldest there is.
		dropReason = "buffer full"
	default:
		o.pushFront(it)
	}
	o.setPending()
	o.mu.Unlock()
	o.outage.Fail(err)
	if logIt {
		o.log.Warn("kafka send failed, retrying", "events", o.name, "topic", string(it.topic), "in", backoff, "err", err, "errors_since_last_log", n)
	}
	if dropReason != "" {
		o.drop(it, dropReason)
	}
	o.signal()
}

// close stops accepting events and waits until every buffered event was
// acknowledged or ctx ends; then whatever is left is dropped and counted.
// Finally the producers are flushed and closed.
func (o *outbox) close(ctx context.Context) error {
	o.mu.Lock()
	o.closing = true
	o.mu.Unlock()
	o.signal()
	var left []*item
	select {
	case <-o.exited:
	case <-ctx.Done():
		o.mu.Lock()
		o.aborted = true
		for len(o.queue) > o.head {
			left = append(left, o.popFront())
		}
		o.setPending()
		o.mu.Unlock()
		close(o.abort)
		<-o.exited
	}
	for _, it := range left {
		o.drop(it, "shutdown drain timed out")
	}
	o.mu.Lock()
	ems := o.emitters
	o.mu.Unlock()
	// Finish waits for the producer's in-flight messages; sarama gives up
	// on them after its own retries, so this ends, but bound the wait.
	finished := make(chan error, 1)
	go func() {
		var errs []error
		for topic, em := range ems {
			if err := em.Finish(); err != nil {
				errs = append(errs, fmt.Errorf("close producer for %s: %w", topic, err))
			}
		}
		finished <- errors.Join(errs...)
	}()
	grace := time.NewTimer(15 * time.Second)
	defer grace.Stop()
	select {
	case err := <-finished:
		if len(left) > 0 {
			return fmt.Errorf("%s: %d events dropped at shutdown: %w", o.name, len(left), errors.Join(ctx.Err(), err))
		}
		return err
	case <-grace.C:
		return fmt.Errorf("%s: kafka producer did not flush within 15s of the drain", o.name)
	}
}
