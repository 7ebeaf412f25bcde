package kafkarun

import (
	"context"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
)

// WriteBehind writes a goka processor's key states behind while its input
// is behind: written at most every Max messages of the key or For, rather
// than at each.
//
// goka writes a state by producing the whole of it to the group table, and
// the windows and alerts states are kilobytes: draining a backlog of
// 300,000 events (bench/processor) wrote over a gigabyte, copied, encoded
// and sent to Kafka, on two cores shared with the sinks and PostgreSQL.
//
// While the input partition has more messages waiting (Marks.Behind), a
// key's state stays in memory and is written by the message that finds it
// due, or by the flush pass (Flush, a goka visitor, WriteBehindVisitor) for
// keys that went quiet. The messages applied to a held state are held too
// (Marks.Hold): InOrderCommits marks none of them, nor any later message
// of their partition, until the state that has them is in Kafka. A crash,
// or a rebalance, therefore reads them again onto the table as it was last
// written: the at-least-once that the event ids make exact. Outputs
// emitted from a held state are emitted again by that replay.
//
// A processor that keeps up writes each message's state at once, as
// without it: holding only pays where many messages of a key come close
// together. A key's first state is always written at once, since the flush
// pass visits the keys of the table only.
//
// The keys are partitioned, so a key's state is only touched from its
// partition's goroutine; the lock is for the flush pass and rebalances.
type WriteBehind[S any] struct {
	Marks *Marks
	// Max and For bound how many messages, and how long, a state is held.
	Max int
	For time.Duration
	// Writes counts the states written, Held the messages applied to a
	// held state; either may be nil.
	Writes, Held prometheus.Counter

	mu     sync.Mutex
	byKey  map[string]*heldValue[S]
	oldest time.Time // of any since; may be early (see remove), zero when none is held
}

// The bounds both processors write behind with: a state is kilobytes, 256
// writes become one, and half a second is well within the idle and grace
// times of the windows and the quiet time of the alerts. At 64, the table
// writes (goka's encode and produce of whole states) were still about 5 %
// of cmd/processor's CPU draining a backlog (bench/processor -perf); a
// crash re-reads at most this many messages of a key, which the event
// ids make exact.
const (
	WriteBehindMax = 256
	WriteBehindFor = 500 * time.Millisecond
)

// WriteBehindVisitor is the name of the goka visitor every processor
// writing behind defines as its WriteBehind's Visit.
const WriteBehindVisitor = "write-held"

type heldValue[S any] struct {
	st    S
	msgs  []Held
	since time.Time // wall time the first of msgs was applied
}

// Get returns the key's held state, if one is held.
func (w *WriteBehind[S]) Get(key string) (st S, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h := w.byKey[key]; h != nil {
		return h.st, true
	}
	return st, false
}

// Store writes st, the key's new state after the message of ctx, or holds
// it. inTable says that the table has a state for the key.
func (w *WriteBehind[S]) Store(ctx goka.Context, st S, inTable bool) {
	now := time.Now()
	key, topic, partition, offset := ctx.Key(), string(ctx.Topic()), ctx.Partition(), ctx.Offset()
	w.mu.Lock()
	h := w.byKey[key]
	w.mu.Unlock()
	if inTable && w.behind(topic, partition, offset) && (h == nil || (len(h.msgs) < w.Max && now.Sub(h.since) < w.For)) {
		m := w.Marks.Hold(topic, partition, offset)
		inc(w.Held)
		w.mu.Lock()
		defer w.mu.Unlock()
		if h == nil {
			if w.byKey == nil {
				w.byKey = map[string]*heldValue[S]{}
			}
			w.byKey[key] = &heldValue[S]{st: st, msgs: []Held{m}, since: now}
			if w.oldest.IsZero() || now.Before(w.oldest) {
				w.oldest = now
			}
			return
		}
		h.st = st
		h.msgs = append(h.msgs, m)
		return
	}
	ctx.SetValue(st)
	inc(w.Writes)
	if h != nil {
		w.Marks.ReleaseAfter(topic, partition, offset, h.msgs)
		w.remove(key)
	}
}

// behind reports whether states are held after the message at offset: the
// processor reads from a consumer group (goka's tester has no marks) and
// the partition has more messages waiting.
func (w *WriteBehind[S]) behind(topic string, partition int32, offset int64) bool {
	behind, known := w.Marks.Behind(topic, partition, offset+1)
	return known && behind
}

// remove forgets the key's held state. oldest is left as it is: it may
// then say too early, which costs a flush pass that finds nothing due,
// and the pass sets it right.
func (w *WriteBehind[S]) remove(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byKey, key)
	if len(w.byKey) == 0 {
		w.oldest = time.Time{}
	}
}

// Take removes the key's held state for a callback that writes the state
// itself (a visit: it has no message to hold): the messages it returns are
// to be released once that write is in Kafka (WritePass.Add, then
// Release after the visit pass).
func (w *WriteBehind[S]) Take(key string) []Held {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.byKey[key]
	if h == nil {
		return nil
	}
	delete(w.byKey, key)
	return h.msgs
}

// Reset forgets every held state: at a rebalance, whose new session reads
// their messages again (they were never marked).
func (w *WriteBehind[S]) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byKey = nil
	w.oldest = time.Time{}
}

// due reports whether a state has been held for For at now.
func (w *WriteBehind[S]) due(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.oldest.IsZero() && now.Sub(w.oldest) >= w.For
}

// recount sets oldest from the states held.
func (w *WriteBehind[S]) recount() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.oldest = time.Time{}
	for _, h := range w.byKey {
		if w.oldest.IsZero() || h.since.Before(w.oldest) {
			w.oldest = h.since
		}
	}
}

// WritePass collects the held messages whose states the callbacks of one
// visit pass wrote.
type WritePass struct {
	now  time.Time
	mu   sync.Mutex
	msgs []Held
}

// NewWritePass starts a pass at wall time now.
func NewWritePass(now time.Time) *WritePass { return &WritePass{now: now} }

// Add records messages to release after the pass.
func (p *WritePass) Add(msgs []Held) {
	p.mu.Lock()
	p.msgs = append(p.msgs, msgs...)
	p.mu.Unlock()
}

// Release releases the messages of a pass that goka completed: its writes
// are in Kafka.
func (w *WriteBehind[S]) Release(p *WritePass) {
	w.Marks.Release(p.msgs)
}

// Visit is the goka visitor WriteBehindVisitor: it writes the key's held
// state if it is due at the pass's time (meta, a *WritePass).
func (w *WriteBehind[S]) Visit(ctx goka.Context, meta any) {
	pass := meta.(*WritePass)
	w.mu.Lock()
	h := w.byKey[ctx.Key()]
	w.mu.Unlock()
	if h == nil || pass.now.Sub(h.since) < w.For {
		return
	}
	ctx.SetValue(h.st)
	inc(w.Writes)
	pass.Add(w.Take(ctx.Key()))
}

// Flush writes the held states due at now (every one when now is For past
// the last, as at shutdown) through proc's WriteBehindVisitor, and
// releases their messages once goka has the writes in Kafka.
func (w *WriteBehind[S]) Flush(ctx context.Context, proc *goka.Processor, now time.Time) error {
	return w.flush(ctx, proc, now)
}

// FlushAll writes every held state, as at shutdown, so that a restart does
// not read their messages again.
func (w *WriteBehind[S]) FlushAll(ctx context.Context, proc *goka.Processor) error {
	return w.flush(ctx, proc, time.Now().Add(w.For))
}

func (w *WriteBehind[S]) flush(ctx context.Context, proc *goka.Processor, now time.Time) error {
	if !w.due(now) {
		return nil
	}
	pass := NewWritePass(now)
	defer w.recount()
	if err := proc.VisitAll(ctx, WriteBehindVisitor, pass); err != nil {
		// Not released: the messages are read again after the restart or
		// rebalance that aborted the pass.
		return err
	}
	w.Release(pass)
	return nil
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}
