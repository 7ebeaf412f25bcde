package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
)

// handler is the sarama.ConsumerGroupHandler of a Sink. Every claimed
// partition has its own batches, decoded by its own ConsumeClaim goroutine
// and, once written by the session's writer, marked by that goroutine, so
// offsets are only ever marked by the session that read the messages, in
// offset order; the session's committer sends them to Kafka.
type handler struct {
	s        *Sink
	producer sarama.SyncProducer
	// w is the current session's writer (sessions follow one another:
	// Setup makes it before any ConsumeClaim starts, Cleanup closes it
	// after the last returned).
	w *writer
	// commitMu makes the offset commits take turns: see the sarama
	// deadlock in newSink.
	commitMu sync.Mutex
	// kick asks the session's committer for a commit (a buffer of one:
	// requests made while a commit is under way are sent by the next
	// one); committed is closed when the committer has stopped.
	kick      chan struct{}
	committed chan struct{}
}

// commit sends the session's marked offsets to Kafka, one at a time. A
// commit that fails (the coordinator moved) leaves them marked; the next
// one, at the latest the one Cleanup makes, sends them again.
func (h *handler) commit(sess sarama.ConsumerGroupSession) {
	h.commitMu.Lock()
	defer h.commitMu.Unlock()
	sess.Commit()
}

// requestCommit asks the committer to send the offsets marked so far.
//
// A claim does not wait for its commit: the rows are stored before their
// offsets are marked, so a commit that is late or lost only re-delivers
// rows that the store skips as already stored. Waiting cost the claims
// their next batch's turn: Kafka answers a connection's requests in
// order, so a commit sent while a fetch waits for new messages (up to
// Consumer.MaxWaitTime, 500 ms) waited for that fetch, and the claims,
// committing one at a time, stored a backlog's last batches half a second
// apart (bench/processor).
func (h *handler) requestCommit() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// committer sends the session's offsets whenever a claim asks, until
// Cleanup closes kick.
func (h *handler) committer(sess sarama.ConsumerGroupSession) {
	defer close(h.committed)
	for range h.kick {
		h.commit(sess)
	}
}

var _ sarama.ConsumerGroupHandler = (*handler)(nil)

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.s.log.Info("partitions assigned", "claims", sess.Claims(), "generation", sess.GenerationID())
	n := 0
	for _, ps := range sess.Claims() {
		n += len(ps)
	}
	h.w = newWriter(h.s, sess.Context(), n)
	h.kick, h.committed = make(chan struct{}, 1), make(chan struct{})
	go h.committer(sess)
	return nil
}

func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.w.close()
	// Every claim has returned: no more requests.
	close(h.kick)
	<-h.committed
	// The batches drained last, and what a failed commit left marked.
	h.commit(sess)
	h.s.log.Debug("partitions released", "generation", sess.GenerationID())
	return nil
}

// ConsumeClaim batches one partition's messages. A batch is due when it
// reaches BatchSize, when the partition has caught up (see caughtUp) or
// when its first message is FlushInterval old; a due batch goes to the
// writer as soon as the claim's previous one is written and committed,
// and meanwhile the claim reads and decodes the next batch (up to
// BatchSize messages). While the store is down the claim therefore stops
// reading after one batch in hand, so the backlog stays in Kafka.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := h.s
	ctx := sess.Context()
	c := &claimState{
		h:    h,
		sess: sess,
		hwm:  claim.HighWaterMarkOffset,
		log:  s.log.With("topic", claim.Topic(), "partition", claim.Partition()),
	}
	c.b, c.spare = newBatch(s.cfg.Kind, s.cfg.Group, c), newBatch(s.cfg.Kind, s.cfg.Group, c)
	c.next.Store(-1)
	partition := strconv.Itoa(int(claim.Partition()))
	c.lag = s.m.lag.WithLabelValues(claim.Topic(), partition)
	defer s.m.lag.DeleteLabelValues(claim.Topic(), partition)

	timer := time.NewTimer(s.cfg.FlushInterval)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time // nil while the batch is empty or already due
	for {
		var msgs <-chan *sarama.ConsumerMessage
		if c.pending == nil || len(c.b.msgs) < s.cfg.BatchSize {
			msgs = claim.Messages()
		}
		var written <-chan struct{}
		if c.pending != nil {
			written = c.pending.done
		}
		select {
		case msg, ok := <-msgs:
			if !ok {
				return c.drain()
			}
			c.b.add(msg)
			s.m.consumed.Inc()
			if c.next.Load() < 0 {
				c.next.Store(msg.Offset)
			}
			c.updateLag()
			if len(c.b.msgs) == 1 {
				timer.Reset(s.cfg.FlushInterval)
				due = timer.C
			}
			if len(c.b.msgs) >= s.cfg.BatchSize || c.caughtUp(msg, claim) {
				c.b.due = true
			}
		case <-due:
			due = nil
			c.b.due = true
		case <-written:
			if err := c.finish(ctx); err != nil {
				// Only the end of the session interrupts a write.
				return c.drain()
			}
		case <-ctx.Done():
			return c.drain()
		}
		if c.pending == nil && c.b.due {
			timer.Stop()
			due = nil
			c.handOver()
		}
	}
}

// caughtUp reports whether the batch should be flushed before it is full
// because the partition has nothing more to give: no message is waiting
// and msg is the last one Kafka has. Waiting out the flush interval would
// only delay those rows (the tail of a backlog above all). Below a
// quarter of a batch it waits all the same, so that a trickle of live
// events does not become a transaction each, unless the claim has been
// draining a backlog: then the batch is the backlog's last, and with a
// partition's remainder waiting out the interval, a backlog's last rows
// came up to a second after the rest (bench/processor).
func (c *claimState) caughtUp(msg *sarama.ConsumerMessage, claim sarama.ConsumerGroupClaim) bool {
	if c.hwm()-(msg.Offset+1) >= int64(c.h.s.cfg.BatchSize) {
		c.draining = true
	}
	up := (c.draining || len(c.b.msgs) >= max(1, c.h.s.cfg.BatchSize/4)) &&
		len(claim.Messages()) == 0 && msg.Offset+1 >= claim.HighWaterMarkOffset()
	if up {
		c.draining = false
	}
	return up
}

// claimState is one partition claim's batches and what committing them
// needs.
type claimState struct {
	h    *handler
	sess sarama.ConsumerGroupSession
	hwm  func() int64
	lag  prometheus.Gauge
	// next is the offset after the last committed message (-1 until the
	// first message): the lag is counted from it. The writer reads it too
	// (updateLag while the store is down).
	next atomic.Int64
	log  *slog.Logger
	// draining is set while the claim reads a backlog (a batch or more
	// behind), until it has caught up.
	draining bool
	// b is the batch being read; pending the one handed to the writer and
	// not yet committed (nil when none); spare the emptied third, reused.
	b, pending, spare *batch
}

// updateLag sets the lag gauge to the messages after the last commit,
// including those waiting in the batches.
func (c *claimState) updateLag() {
	if next := c.next.Load(); next >= 0 {
		c.lag.Set(float64(max(0, c.hwm()-next)))
	}
}

// handOver gives the batch being read to the writer and starts the next.
func (c *claimState) handOver() {
	c.pending, c.b, c.spare = c.b, c.spare, nil
	c.h.w.submit(c.pending)
}

// drain writes and commits the batches in hand when the claim ends
// (shutdown or rebalance), within DrainTimeout. The session's offsets can
// still be committed at this point: sarama releases the session only
// after every ConsumeClaim has returned. A batch that cannot be written in
// time stays unmarked, as does everything after it, and is read again by
// the partition's next owner.
func (c *claimState) drain() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.sess.Context()), c.h.s.cfg.DrainTimeout)
	defer cancel()
	for c.pending != nil || len(c.b.msgs) > 0 {
		if c.pending == nil {
			c.handOver()
		}
		b := c.pending
		select {
		case <-b.done:
		case <-ctx.Done():
		}
		if err := c.finish(ctx); err != nil {
			c.log.Warn("batch not flushed before the partition was released; it will be consumed again",
				"messages", len(b.msgs), "first_offset", b.msgs[0].Offset, "err", err)
			return nil
		}
	}
	return nil
}

// finish completes the pending batch once the writer is done with it:
// its rejected rows become dead letters, the dead letters are sent, then
// its offsets are marked and a commit is requested, in that order, so that
// a crash at any point re-delivers the batch instead of losing it. Steps that
// succeeded are not repeated when a finish interrupted by ctx is resumed
// by drain. It returns nil, the write's error (the writer stopped before
// the batch was stored) or ctx's error.
func (c *claimState) finish(ctx context.Context) error {
	s, b := c.h.s, c.pending
	select {
	case <-b.done:
	default:
		return ctx.Err()
	}
	if b.err != nil {
		return b.err
	}
	if !b.stored {
		c.rejectRows()
		b.stored = true
	}
	if len(b.dead) > 0 {
		if err := c.sendDeadLetters(ctx); err != nil {
			return err
		}
	}
	last := b.msgs[len(b.msgs)-1]
	c.sess.MarkMessage(last, "")
	c.h.requestCommit()
	c.next.Store(last.Offset + 1)
	c.updateLag()
	s.m.batchSize.Observe(float64(len(b.msgs)))
	c.log.Debug("batch stored, offsets marked", "messages", len(b.msgs), "rows", b.rows(), "next_offset", last.Offset+1)
	b.reset()
	c.pending, c.spare = nil, b
	return nil
}

// rejectRows turns the rows the store refused into dead letters.
func (c *claimState) rejectRows() {
	s, b := c.h.s, c.pending
	for _, r := range b.rejected {
		msg := b.rowMsgs[r.Index]
		reason := "rejected by store: " + r.Reason
		if s.cfg.Kind == Changes {
			reason = "rejected by " + s.cfg.Name + ": " + r.Reason
		}
		c.log.Warn("row rejected; sending it to the dead-letter topic", "offset", msg.Offset, "reason", reason)
		b.addDead(msg, deadRejected, reason)
	}
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
	s, b := c.h.s, c.pending
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

// batch is a run of messages read from one partition, in offset order.
type batch struct {
	kind  Kind
	group string
	c     *claimState
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
	// due is set when the batch is to be written: full, caught up or
	// FlushInterval old.
	due bool
	// done is closed by the writer when it is done with the batch: err is
	// nil when the rows are stored (rejected then lists the rows the store
	// refused, by index into rowMsgs), else why not.
	done     chan struct{}
	err      error
	rejected []Rejected
	// stored is set once the rejected rows became dead letters, so that a
	// resumed finish does not add them again.
	stored bool
}

type rowKey struct {
	id     string
	region string // a window's: each region's window is its own row
	start  int64
}

type deadLetter struct {
	class      string // metric label: decode or rejected
	key, value []byte
}

func newBatch(kind Kind, group string, c *claimState) *batch {
	return &batch{kind: kind, group: group, c: c, seen: make(map[rowKey]int)}
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
	b.due = false
	b.done, b.err = nil, nil
	b.rejected = nil
	b.stored = false
}

// add decodes msg into the batch. An undecodable message becomes a dead
// letter. A result already in the batch (same event_id) is dropped, and of
// two emissions of the same window (URL, region and start) only the higher
// revision is kept: the
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
		k := rowKey{id: w.URL, region: w.Region, start: w.WindowStart.UnixNano()}
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
