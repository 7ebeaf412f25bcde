package kafkarun

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// InOrderCommits wraps goka's consumer group so that an input offset is
// marked only once every message before it in its partition is done.
//
// goka marks a message's offset (offset+1) as soon as that message is done
// (its emits and table write acknowledged, and a DeferCommit called back),
// and sarama keeps the highest offset marked. Messages finish out of
// order: a window emission and a table write travel through different
// producer queues, and the url_checker's checks run concurrently, a slow
// site's for up to its timeout. Without this wrapper a crash right after a
// later message's commit skipped the earlier, unfinished messages for
// good: a window stayed at an old revision, a slot was neither checked nor
// redelivered. With it, a crash redelivers every message from the first
// unfinished one on: at-least-once processing (see the package doc).
//
// marks, when not nil, is kept up to date with which input messages are
// done, so that the windows processor knows when an emission has reached
// Kafka.
func InOrderCommits(build goka.ConsumerGroupBuilder, marks *Marks) goka.ConsumerGroupBuilder {
	if marks == nil {
		marks = NewMarks()
	}
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cg, err := build(brokers, group, clientID)
		if err != nil {
			return nil, err
		}
		return &inOrderGroup{ConsumerGroup: cg, marks: marks}, nil
	}
}

type inOrderGroup struct {
	sarama.ConsumerGroup
	marks *Marks
}

func (g *inOrderGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	return g.ConsumerGroup.Consume(ctx, topics, &inOrderHandler{inner: h, marks: g.marks})
}

// inOrderHandler serves one session (sarama calls Setup, then
// ConsumeClaim per claim, then Cleanup, on a handler per Consume call).
type inOrderHandler struct {
	inner sarama.ConsumerGroupHandler
	marks *Marks
	sess  *inOrderSession
}

func (h *inOrderHandler) Setup(s sarama.ConsumerGroupSession) error {
	// sarama starts each claim on its own goroutine: until a claim's
	// ConsumeClaim runs, its partition must read as behind, not as
	// unclaimed, or a processor merging two topics would take the late
	// one for absent (processors/alerts orders by it).
	for topic, partitions := range s.Claims() {
		for _, partition := range partitions {
			h.marks.expect(topic, partition)
		}
	}
	h.sess = &inOrderSession{ConsumerGroupSession: s, marks: h.marks, parts: map[topicPartition]*pendingOffsets{}, after: map[held][]Held{}}
	h.marks.setSession(h.sess)
	return h.inner.Setup(h.sess)
}

func (h *inOrderHandler) Cleanup(sarama.ConsumerGroupSession) error {
	err := h.inner.Cleanup(h.sess)
	h.marks.endSession(h.sess)
	return err
}

func (h *inOrderHandler) ConsumeClaim(_ sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	// What a previous owner committed is done; anything this session
	// reads is not, until it is marked.
	h.marks.start(claim.Topic(), claim.Partition(), claim.InitialOffset(), claim.HighWaterMarkOffset())
	p := h.sess.pending(claim.Topic(), claim.Partition())
	out := make(chan *sarama.ConsumerMessage)
	// Every message is recorded as delivered before goka can see it, so a
	// mark can always tell which earlier messages are still in flight.
	go func() {
		defer close(out)
		hw := int64(-1)
		for msg := range claim.Messages() {
			p.deliver(msg.Offset)
			if now := claim.HighWaterMarkOffset(); now > hw {
				hw = now
				h.marks.setHighWater(claim.Topic(), claim.Partition(), hw)
			}
			select {
			case out <- msg:
			case <-h.sess.Context().Done():
				// sarama drains the claim itself once the session ends.
				return
			}
		}
	}()
	return h.inner.ConsumeClaim(h.sess, &inOrderClaim{ConsumerGroupClaim: claim, msgs: out})
}

type inOrderClaim struct {
	sarama.ConsumerGroupClaim
	msgs chan *sarama.ConsumerMessage
}

func (c *inOrderClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

type topicPartition struct {
	topic     string
	partition int32
}

// inOrderSession passes a mark on only up to the first message of its
// partition that is not done yet.
type inOrderSession struct {
	sarama.ConsumerGroupSession
	marks *Marks
	mu    sync.Mutex
	parts map[topicPartition]*pendingOffsets
	// after holds, per message, the held messages it releases once done
	// (Marks.ReleaseAfter); afterN counts its keys, so that the marks of
	// the messages that release nothing (most) need not look.
	after  map[held][]Held
	afterN atomic.Int64
}

// held names one input message of a session.
type held struct {
	tp     topicPartition
	offset int64
}

func (s *inOrderSession) pending(topic string, partition int32) *pendingOffsets {
	s.mu.Lock()
	defer s.mu.Unlock()
	tp := topicPartition{topic, partition}
	p := s.parts[tp]
	if p == nil {
		p = &pendingOffsets{}
		s.parts[tp] = p
	}
	return p
}

func (s *inOrderSession) MarkOffset(topic string, partition int32, next int64, metadata string) {
	if upTo, ok := s.pending(topic, partition).finish(next - 1); ok {
		s.ConsumerGroupSession.MarkOffset(topic, partition, upTo, metadata)
		s.marks.advance(topic, partition, upTo)
	}
	if s.afterN.Load() == 0 {
		return
	}
	key := held{topicPartition{topic, partition}, next - 1}
	s.mu.Lock()
	rel, ok := s.after[key]
	if ok {
		delete(s.after, key)
		s.afterN.Add(-1)
	}
	s.mu.Unlock()
	s.release(rel)
}

// release lets held messages of this session be marked once done.
func (s *inOrderSession) release(hs []Held) {
	for _, h := range hs {
		if h.sess != s {
			continue // held in an earlier session: never marked, read again
		}
		if upTo, ok := s.pending(h.m.tp.topic, h.m.tp.partition).release(h.m.offset); ok {
			s.ConsumerGroupSession.MarkOffset(h.m.tp.topic, h.m.tp.partition, upTo, "")
			s.marks.advance(h.m.tp.topic, h.m.tp.partition, upTo)
		}
	}
}

func (s *inOrderSession) MarkMessage(msg *sarama.ConsumerMessage, metadata string) {
	s.MarkOffset(msg.Topic, msg.Partition, msg.Offset+1, metadata)
}

// pendingOffsets are one partition's delivered offsets not yet marked, in
// delivery (ascending) order, each with whether it is done and held.
type pendingOffsets struct {
	mu sync.Mutex
	// q[head:] are the offsets; q[:head] were marked (their room is
	// reused once the queue empties or the head passes half of it).
	q    []pendingOffset
	head int
}

type pendingOffset struct {
	offset int64
	done   bool
	held   bool // done or not, not to be marked yet
}

func (p *pendingOffsets) deliver(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.q = append(p.q, pendingOffset{offset: offset})
}

// find returns offset's entry, nil when it was not delivered (or is
// marked already); callers hold mu.
func (p *pendingOffsets) find(offset int64) *pendingOffset {
	q := p.q[p.head:]
	i, found := slices.BinarySearchFunc(q, offset, func(e pendingOffset, o int64) int { return cmp.Compare(e.offset, o) })
	if !found {
		return nil
	}
	return &q[i]
}

// finish records offset as done and returns the offset to mark (the one
// after the last of the done messages at the head), or false when the
// head is still in flight. An offset never delivered is marked as asked.
func (p *pendingOffsets) finish(offset int64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.find(offset)
	if e == nil {
		return offset + 1, true
	}
	e.done = true
	return p.advance()
}

// hold keeps offset from being marked, even once done, until release.
func (p *pendingOffsets) hold(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.find(offset); e != nil {
		e.held = true
	}
}

// release ends the hold of offset and returns the offset to mark, as
// finish does.
func (p *pendingOffsets) release(offset int64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.find(offset); e != nil {
		e.held = false
	}
	return p.advance()
}

// advance drops the done messages at the head that are not held and
// returns the offset after the last of them; callers hold mu.
func (p *pendingOffsets) advance() (int64, bool) {
	n := p.head
	for n < len(p.q) && p.q[n].done && !p.q[n].held {
		n++
	}
	if n == p.head {
		return 0, false
	}
	last := p.q[n-1].offset
	p.head = n
	switch {
	case p.head == len(p.q):
		p.q, p.head = p.q[:0], 0
	case p.head > 256 && p.head > len(p.q)/2:
		p.q = p.q[:copy(p.q, p.q[p.head:])]
		p.head = 0
	}
	return last + 1, true
}

// Marks are, per input topic and partition this process consumes,
// the offset below which every message is done: committed before the
// partition was claimed, or processed here with every write acknowledged.
type Marks struct {
	mu sync.Mutex
	// next is unset until the partition is claimed; used reports whether
	// any partition ever was (goka's tester bypasses the consumer group).
	next map[topicPartition]int64
	used bool
	// claimed and highWater are each claimed partition's initial offset
	// and newest known high-water mark, for Behind.
	claimed   map[topicPartition]int64
	highWater map[topicPartition]int64
	// sess is the consumer group session running now, for Hold (read at
	// every message a processor holds: no lock).
	sess atomic.Pointer[inOrderSession]
}

// Held is an input message whose effect is not yet in Kafka although goka
// is done with it: a processor holding a key's state in memory (writing it
// every so many messages, not at each) holds the messages applied to it
// since its last write. InOrderCommits marks neither a held message nor
// any later one of its partition until it is released, so a crash or a
// rebalance reads it again: the table it recovers does not have it.
type Held struct {
	sess *inOrderSession // nil: no consumer group (goka's tester)
	m    held
}

// Hold holds the message at offset of topic's partition; call it from the
// message's callback, before goka marks it.
func (c *Marks) Hold(topic string, partition int32, offset int64) Held {
	s := c.sess.Load()
	h := Held{sess: s, m: held{topicPartition{topic, partition}, offset}}
	if s != nil {
		s.pending(topic, partition).hold(offset)
	}
	return h
}

// ReleaseAfter releases hs once the message at offset of topic's partition
// is done (its own writes acknowledged): the callback of a message that
// writes a key's state releases the messages held for that state. Call it
// from that message's callback.
func (c *Marks) ReleaseAfter(topic string, partition int32, offset int64, hs []Held) {
	s := c.sess.Load()
	if s == nil || len(hs) == 0 {
		return
	}
	key := held{topicPartition{topic, partition}, offset}
	s.mu.Lock()
	if _, ok := s.after[key]; !ok {
		s.afterN.Add(1)
	}
	s.after[key] = append(s.after[key], hs...)
	s.mu.Unlock()
}

// Release releases hs now: their state is in Kafka (written by a visit
// that goka acknowledged).
func (c *Marks) Release(hs []Held) {
	s := c.sess.Load()
	if s != nil {
		s.release(hs)
	}
}

func (c *Marks) setSession(s *inOrderSession) { c.sess.Store(s) }

func (c *Marks) endSession(s *inOrderSession) { c.sess.CompareAndSwap(s, nil) }

// NewMarks returns marks with no partition claimed yet.
func NewMarks() *Marks {
	return &Marks{next: map[topicPartition]int64{}, claimed: map[topicPartition]int64{}, highWater: map[topicPartition]int64{}}
}

// notStarted is the initial offset of a partition claimed by the session
// whose claim has not started yet.
const notStarted = int64(math.MaxInt64)

// expect records that the session claimed the partition, before its
// claim starts.
func (c *Marks) expect(topic string, partition int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.claimed[topicPartition{topic, partition}] = notStarted
}

// start records a new claim of the partition, read from initial on.
func (c *Marks) start(topic string, partition int32, initial, highWater int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used = true
	tp := topicPartition{topic, partition}
	c.next[tp] = initial
	c.claimed[tp] = initial
	// A claim knows its high-water mark only after its first fetch; keep
	// what SetHighWater learnt from the broker meanwhile.
	c.highWater[tp] = max(c.highWater[tp], highWater)
}

// SetHighWater records a partition's high-water mark as the broker
// reported it (at a rebalance, before the claim's first fetch).
func (c *Marks) SetHighWater(topic string, partition int32, hw int64) {
	c.setHighWater(topic, partition, hw)
}

func (c *Marks) setHighWater(topic string, partition int32, hw int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := topicPartition{topic, partition}
	if hw > c.highWater[tp] {
		c.highWater[tp] = hw
	}
}

// Behind reports whether the partition of topic has messages not yet
// processed: next is the offset after the last one the processor handled
// (-1 when it handled none since the claim). known is false when the
// partition is not claimed through the consumer group (goka's tester).
func (c *Marks) Behind(topic string, partition int32, next int64) (behind, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := topicPartition{topic, partition}
	initial, ok := c.claimed[tp]
	if !ok {
		return false, false
	}
	if initial == notStarted {
		// Claimed, not read yet: what it holds is unknown, so it may
		// hold older events.
		return true, true
	}
	if next < initial {
		next = initial
	}
	// A claim without a committed offset starts at sarama.OffsetOldest
	// (negative): nothing is behind in a partition that never had a record.
	next = max(next, 0)
	return next < c.highWater[tp], true
}

// advance records that every message before next is done.
func (c *Marks) advance(topic string, partition int32, next int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := topicPartition{topic, partition}
	if next > c.next[tp] {
		c.next[tp] = next
	}
}

// Done returns the test "is this message done" for messages of the partition,
// or nil when no partition was ever claimed through the consumer group.
// A topic not claimed yet is not done: waiting is the safe answer.
func (c *Marks) Done(partition int32) func(topic string, offset int64) bool {
	c.mu.Lock()
	used := c.used
	c.mu.Unlock()
	if !used {
		return nil
	}
	return func(topic string, offset int64) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		next, ok := c.next[topicPartition{topic, partition}]
		return ok && offset < next
	}
}
