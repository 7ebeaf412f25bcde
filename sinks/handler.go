package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
)

// handler is the sarama.ConsumerGroupHandler of a Sink. Every claimed
// partition has its own batch, flushed and committed by its own
// ConsumeClaim goroutine, so offsets are only ever marked by the session
// that read the messages.
type handler struct {
	s        *Sink
	producer sarama.SyncProducer
}

var _ sarama.ConsumerGroupHandler = (*handler)(nil)

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.s.log.Info("partitions assigned", "claims", sess.Claims(), "generation", sess.GenerationID())
	return nil
}

func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.s.log.Debug("partitions released", "generation", sess.GenerationID())
	return nil
}

// ConsumeClaim batches one partition's messages and flushes the batch when
// it reaches BatchSize, when the partition has caught up (see caughtUp) or
// when its first message is FlushInterval old. While a
// flush retries a store outage it reads nothing more, so the backlog stays
// in Kafka.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := h.s
	ctx := sess.Context()
	c := &claimState{
		h:    h,
		sess: sess,
		hwm:  claim.HighWaterMarkOffset,
		next: -1,
		log:  s.log.With("topic", claim.Topic(), "partition", claim.Partition()),
		b:    newBatch(s.cfg.Kind, s.cfg.Group),
	}
	partition := strconv.Itoa(int(claim.Partition()))
	c.lag = s.m.lag.WithLabelValues(claim.Topic(), partition)
	defer s.m.lag.DeleteLabelValues(claim.Topic(), partition)

	timer := time.NewTimer(s.cfg.FlushInterval)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time // nil while the batch is empty
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return c.drain()
			}
			c.b.add(msg)
			s.m.consumed.Inc()
			if c.next < 0 {
				c.next = msg.Offset
			}
			c.updateLag()
			if len(c.b.msgs) == 1 {
				timer.Reset(s.cfg.FlushInterval)
				due = timer.C
			}
			if len(c.b.msgs) < s.cfg.BatchSize && !c.caughtUp(msg, claim) {
				continue
			}
		case <-due:
		case <-ctx.Done():
			return c.drain()
		}
		timer.Stop()
		due = nil
		if err := c.flush(ctx); err != nil {
			// Only the end of the session interrupts a flush.
			return c.drain()
		}
	}
}

// caughtUp reports whether the batch should be flushed before it is full
// because the partition has nothing more to give: no message is waiting
// and msg is the last one Kafka has. Waiting out the flush interval would
// only delay those rows (the tail of a backlog above all). Below a
// quarter of a batch it waits all the same, so that a trickle of live
// events does not become a transaction each.
func (c *claimState) caughtUp(msg *sarama.ConsumerMessage, claim sarama.ConsumerGroupClaim) bool {
	return len(c.b.msgs) >= max(1, c.h.s.cfg.BatchSize/4) &&
		len(claim.Messages()) == 0 && msg.Offset+1 >= claim.HighWaterMarkOffset()
}

// claimState is one partition claim's batch and what flushing it needs.
type claimState struct {
	h    *handler
	sess sarama.ConsumerGroupSession
	hwm  func() int64
	lag  prometheus.Gauge
	// next is the offset after the last committed message (-1 until the
	// first message): the lag is counted from it.
	next int64
	log  *slog.Logger
	b    *batch
}

// updateLag sets the lag gauge to the messages after the last commit,
// including those waiting in the batch.
func (c *claimState) updateLag() {
	if c.next >= 0 {
		c.lag.Set(float64(max(0, c.hwm()-c.next)))
	}
}

// drain flushes the batch in hand when the claim ends (shutdown or
// rebalance), within DrainTimeout. The session's offsets can still be
// committed at this point: sarama releases the session only after every
// ConsumeClaim has returned. A batch that cannot be flushed in time stays
// unmarked and is read again by the partition's next owner.
func (c *claimState) drain() error {
	if len(c.b.msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.sess.Context()), c.h.s.cfg.DrainTimeout)
	defer cancel()
	if err := c.flush(ctx); err != nil {
		c.log.Warn("batch not flushed before the partition was released; it will be consumed again",
			"messages", len(c.b.msgs), "first_offset", c.b.msgs[0].Offset, "err", err)
	}
	return nil
}

// flush writes the batch, sends its dead letters, then marks and commits
// its offsets, in that order, so that a crash at any point re-delivers the
// batch instead of losing it. Steps that succeeded are not repeated when a
// flush interrupted by ctx is resumed by drain. It returns nil or ctx's
// error.
func (c *claimState) flush(ctx context.Context) error {
	s, b := c.h.s, c.b
	if !b.stored {
		if err := c.store(ctx); err != nil {
			return err
		}
	}
	if len(b.dead) > 0 {
		if err := c.sendDeadLetters(ctx); err != nil {
			return err
		}
	}
	last := b.msgs[len(b.msgs)-1]
	c.sess.MarkMessage(last, "")
	c.sess.Commit()
	c.next = last.Offset + 1
	c.updateLag()
	s.m.batchSize.Observe(float64(len(b.msgs)))
	c.log.Debug("batch committed", "messages", len(b.msgs), "rows", b.rows(), "next_offset", last.Offset+1)
	b.reset()
	return nil
}

// store writes the batch's rows with retries and turns the store's
// rejections into dead letters.
func (c *claimState) store(ctx context.Context) error {
	s, b := c.h.s, c.b
	n := b.rows()
	if n == 0 {
		b.stored = true
		return nil
	}
	var rejected []Rejected
	onFail := func(err error) {
		s.m.writeErrors.Inc()
		s.outage.Fail(err)
		c.updateLag() // keeps growing while the store is down
	}
	err := s.retry(ctx, c.log, "store write", onFail, func(ctx context.Context) error {
		start := time.Now()
		var err error
		switch s.cfg.Kind {
		case Results:
			rejected, err = s.store.WriteResults(ctx, b.results)
		case Windows:
			rejected, err = s.store.WriteWindows(ctx, b.windows)
		case Changes:
			rejected, err = s.changes.WriteChanges(ctx, b.changes)
		}
		if err != nil {
			return fmt.Errorf("write %d %s: %w", n, s.cfg.Kind, err)
		}
		s.m.writeTime.Observe(time.Since(start).Seconds())
		return nil
	})
	if err != nil {
		return err
	}
	s.outage.OK()
	accepted := n
	for _, r := range rejected {
		if r.Index < 0 || r.Index >= n {
			// A store bug; the row was not written, but there is no
			// message to blame, so it can only be logged.
			c.log.Error("store rejected a row index out of range", "index", r.Index, "rows", n, "reason", r.Reason)
			continue
		}
		accepted--
		msg := b.rowMsgs[r.Index]
		reason := "rejected by store: " + r.Reason
		if s.cfg.Kind == Changes {
			reason = "rejected by " + s.cfg.Name + ": " + r.Reason
		}
		c.log.Warn("row rejected; sending it to the dead-letter topic", "offset", msg.Offset, "reason", reason)
		b.addDead(msg, deadRejected, reason)
	}
	s.m.written.Add(float64(accepted))
	b.stored = true
	s.countOpenIncidents(ctx, c.log)
	return nil
}

// incidentCounter is a ChangeWriter that keeps incidents (see
// IncidentStore).
type incidentCounter interface {
	OpenIncidents(ctx context.Context) (int64, error)
}

// countOpenIncidents refreshes sitewatch_incidents_open after a write, when
// the writer keeps incidents. A failure only leaves the gauge as it was.
func (s *Sink) countOpenIncidents(ctx context.Context, log *slog.Logger) {
	ic, ok := s.changes.(incidentCounter)
	if !ok || s.m.openIncidents == nil {
		return
	}
	n, err := ic.OpenIncidents(ctx)
	if err != nil {
		log.Warn("count open incidents", "err", err)
		return
	}
	s.m.openIncidents.Set(float64(n))
}

// sendDeadLetters produces the batch's dead letters synchronously,
// retrying only those Kafka did not acknowledge.
func (c *claimState) sendDeadLetters(ctx context.Context) error {
	s, b := c.h.s, c.b
	return s.retry(ctx, c.log, "produce dead letters", nil, func(context.Context) error {
		msgs := make([]*sarama.ProducerMessage, len(b.dead))
		for i, d := range b.dead {
			msgs[i] = &sarama.ProducerMessage{
				Topic:    s.cfg.DeadLetterTopic,
				Value:    sarama.ByteEncoder(d.value),
				Metadata: i,
			}
			if d.key != nil {
				msgs[i].Key = sarama.ByteEncoder(d.key)
			}
		}
		err := c.h.producer.SendMessages(msgs)
		var perrs sarama.ProducerErrors
		if err != nil && !errors.As(err, &perrs) {
			return fmt.Errorf("produce %d dead letters to %s: %w", len(msgs), s.cfg.DeadLetterTopic, err)
		}
		// Count what Kafka acknowledged; keep the rest for the next attempt.
		unacked := make(map[int]bool, len(perrs))
		var failed []deadLetter
		for _, pe := range perrs {
			i := pe.Msg.Metadata.(int)
			unacked[i] = true
			failed = append(failed, b.dead[i])
		}
		for i, d := range b.dead {
			if !unacked[i] {
				s.m.deadLetters.WithLabelValues(d.class).Inc()
			}
		}
		b.dead = failed
		if len(failed) > 0 {
			return fmt.Errorf("produce %d of %d dead letters to %s: %w", len(failed), len(msgs), s.cfg.DeadLetterTopic, err)
		}
		return nil
	})
}

// batch is the messages read from one partition since its last commit.
type batch struct {
	kind  Kind
	group string
	// msgs are all the messages, in offset order: the last one is marked.
	msgs []*sarama.ConsumerMessage
	// results or windows are the decoded rows to write, deduplicated;
	// rowMsgs[i] is the message row i came from.
	results []*codecs.Result
	windows []*codecs.Window
	changes []*codecs.StatusChange
	rowMsgs []*sarama.ConsumerMessage
	// seen maps an event_id, a change_id, or a window's url and start, to
	// its row.
	seen map[rowKey]int
	// dead are the dead letters not yet acknowledged by Kafka.
	dead []deadLetter
	// stored is set once the rows are in the store, so that a resumed
	// flush does not write them again.
	stored bool
}

type rowKey struct {
	id    string
	start int64
}

type deadLetter struct {
	class      string // metric label: decode or rejected
	key, value []byte
}

func newBatch(kind Kind, group string) *batch {
	return &batch{kind: kind, group: group, seen: make(map[rowKey]int)}
}

func (b *batch) rows() int { return len(b.rowMsgs) }

func (b *batch) reset() {
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	clear(b.results)
	b.results = b.results[:0]
	clear(b.windows)
	b.windows = b.windows[:0]
	clear(b.changes)
	b.changes = b.changes[:0]
	clear(b.rowMsgs)
	b.rowMsgs = b.rowMsgs[:0]
	clear(b.seen)
	b.dead = nil
	b.stored = false
}

// add decodes msg into the batch. An undecodable message becomes a dead
// letter. A result already in the batch (same event_id) is dropped, and of
// two emissions of the same window only the higher revision is kept: the
// store would ignore the other anyway, and PostgreSQL's COPY cannot take
// the same key twice in one statement.
func (b *batch) add(msg *sarama.ConsumerMessage) {
	b.msgs = append(b.msgs, msg)
	switch b.kind {
	case Results:
		r, err := codecs.DecodeResult(msg.Value)
		if err != nil {
			b.addDead(msg, deadDecode, "decode result: "+err.Error())
			return
		}
		k := rowKey{id: r.EventID}
		if _, dup := b.seen[k]; dup {
			return
		}
		b.seen[k] = len(b.results)
		b.results = append(b.results, r)
		b.rowMsgs = append(b.rowMsgs, msg)
	case Windows:
		w, err := codecs.DecodeWindow(msg.Value)
		if err != nil {
			b.addDead(msg, deadDecode, "decode window: "+err.Error())
			return
		}
		k := rowKey{id: w.URL, start: w.WindowStart.UnixNano()}
		if i, dup := b.seen[k]; dup {
			if w.Revision > b.windows[i].Revision {
				b.windows[i] = w
				b.rowMsgs[i] = msg
			}
			return
		}
		b.seen[k] = len(b.windows)
		b.windows = append(b.windows, w)
		b.rowMsgs = append(b.rowMsgs, msg)
	case Changes:
		c, err := codecs.DecodeStatusChange(msg.Value)
		if err != nil {
			b.addDead(msg, deadDecode, "decode status change: "+err.Error())
			return
		}
		k := rowKey{id: c.ChangeID}
		if _, dup := b.seen[k]; dup {
			return
		}
		b.seen[k] = len(b.changes)
		b.changes = append(b.changes, c)
		b.rowMsgs = append(b.rowMsgs, msg)
	}
}

// Dead-letter classes, the reason label of sitewatch_sink_dead_letters_total.
const (
	deadDecode   = "decode"   // not a valid event
	deadRejected = "rejected" // refused by the store
)

// addDead records msg as a dead letter with the reason.
func (b *batch) addDead(msg *sarama.ConsumerMessage, class, reason string) {
	value, err := codecs.DeadLetterCodec{}.Encode(kafkarun.MessageDeadLetter(msg, reason, b.group, time.Now()))
	if err != nil {
		// Encoding a struct of bytes and strings cannot fail; if it ever
		// does, keep the offset from being committed silently past it.
		panic(fmt.Sprintf("encode dead letter: %v", err))
	}
	b.dead = append(b.dead, deadLetter{class: class, key: msg.Key, value: value})
}
