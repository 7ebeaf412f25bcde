package windows

import (
	"context"
	"sync"
	"time"

	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/internal/kafkarun"
)

// Writing a URL's state behind, while a backlog drains.
//
// Every event changes its URL's state, and goka writes a state by
// producing the whole of it to the table topic: kilobytes per event (the
// window's response times, the event ids that make it exact). Draining a
// backlog of 300,000 events (bench/processor) that was over a gigabyte
// copied, encoded and sent to Kafka, a third of the processor's CPU, on
// two cores it shares with the sinks and PostgreSQL.
//
// So while the input partition has more messages waiting, a URL's state
// stays in memory (held) and is written at most every heldMax events or
// heldFor, by the event that finds it due, or by the flush pass for URLs
// that went quiet. The events applied to a held state are held too
// (kafkarun.Held): InOrderCommits marks none of them, nor any later
// message of their partition, until the state that has them is in Kafka
// (released after the writing message is done, or after the flush pass).
// A crash, or a rebalance, therefore reads them again onto the table as it
// was last written, which is the at-least-once the event ids make exact.
// Windows emitted from a held state are emitted again, with the same
// revision, by that replay.
//
// A processor that keeps up (the partition not behind) writes each event's
// state at once, as before: holding only pays where many events of a URL
// come close together.
const (
	heldMax = 64
	heldFor = 500 * time.Millisecond
)

// flushVisitor is the goka visitor that writes the held states due.
const flushVisitor = "write-held"

// heldState is one URL's state not yet written, and the messages applied to
// it since its last write.
type heldState struct {
	st    *state
	msgs  []kafkarun.Held
	since time.Time // when the first of msgs was applied
}

// heldStates are the held states of every partition this instance
// consumes, by URL. Their keys are partitioned, so a URL's state is only
// touched from its partition's goroutine; the lock is for the flush pass
// and rebalances.
type heldStates struct {
	mu     sync.Mutex
	byURL  map[string]*heldState
	oldest time.Time // of any since, zero when none is held
}

func (h *heldStates) get(url string) *heldState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byURL[url]
}

func (h *heldStates) put(url string, hs *heldState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byURL == nil {
		h.byURL = map[string]*heldState{}
	}
	h.byURL[url] = hs
	if h.oldest.IsZero() || hs.since.Before(h.oldest) {
		h.oldest = hs.since
	}
}

// remove forgets a state written. oldest is left as it is (it may say
// too early, which costs a flush pass that finds nothing due) and set
// right by the next pass.
func (h *heldStates) remove(url string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.byURL, url)
	if len(h.byURL) == 0 {
		h.oldest = time.Time{}
	}
}

// recount sets oldest from the states held.
func (h *heldStates) recount() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.oldest = time.Time{}
	for _, hs := range h.byURL {
		if h.oldest.IsZero() || hs.since.Before(h.oldest) {
			h.oldest = hs.since
		}
	}
}

// due reports whether a state has been held for heldFor by now.
func (h *heldStates) due(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.oldest.IsZero() && now.Sub(h.oldest) >= heldFor
}

// reset forgets every held state: at a rebalance, whose new session reads
// their messages again (they were never marked).
func (h *heldStates) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byURL = nil
	h.oldest = time.Time{}
}

// stateOf is the URL's state as the callback of ctx should see it: the held
// one, or the table's.
func (p *Processor) stateOf(ctx goka.Context) (*state, *heldState) {
	if hs := p.held.get(ctx.Key()); hs != nil {
		return hs.st, hs
	}
	st, _ := ctx.Value().(*state)
	return st, nil
}

// store writes st, the URL's new state after the message of ctx, or holds
// it (see above). inTable says that the table has a state for the URL: a
// URL's first state is written at once, since the flush pass visits the
// keys of the table only.
func (p *Processor) store(ctx goka.Context, st *state, hs *heldState, inTable bool) {
	now := time.Now() // wall time, whatever clock the windows run on
	topic, partition, offset := string(ctx.Topic()), ctx.Partition(), ctx.Offset()
	if inTable && p.holding(topic, partition, offset) && (hs == nil || (len(hs.msgs) < heldMax && now.Sub(hs.since) < heldFor)) {
		m := p.marks.Hold(topic, partition, offset)
		p.metrics.heldApplied.Inc()
		if hs == nil {
			p.held.put(ctx.Key(), &heldState{st: st, msgs: []kafkarun.Held{m}, since: now})
			return
		}
		hs.st = st
		hs.msgs = append(hs.msgs, m)
		return
	}
	ctx.SetValue(st)
	p.metrics.writes.Inc()
	if hs != nil {
		p.marks.ReleaseAfter(topic, partition, offset, hs.msgs)
		p.held.remove(ctx.Key())
	}
}

// holding reports whether states are held after the message at offset: the
// processor reads from a consumer group (goka's tester has no marks) and
// the partition has more messages waiting.
func (p *Processor) holding(topic string, partition int32, offset int64) bool {
	behind, known := p.marks.Behind(topic, partition, offset+1)
	return known && behind
}

// flushVisit writes a held state that is due; meta is the pass's time.
func (p *Processor) flushVisit(ctx goka.Context, meta any) {
	pass := meta.(*flushPass)
	hs := p.held.get(ctx.Key())
	if hs == nil || pass.now.Sub(hs.since) < heldFor {
		return
	}
	ctx.SetValue(hs.st)
	p.metrics.writes.Inc()
	p.held.remove(ctx.Key())
	pass.mu.Lock()
	pass.written = append(pass.written, hs.msgs...)
	pass.mu.Unlock()
}

// flushPass is one pass of flushVisit over the table.
type flushPass struct {
	now     time.Time
	mu      sync.Mutex
	written []kafkarun.Held
}

// flushHeld writes the held states due at now (all of them when now is
// past every one, as at shutdown), and releases their messages once goka
// has them in Kafka.
func (p *Processor) flushHeld(ctx context.Context, proc *goka.Processor, now time.Time) error {
	if !p.held.due(now) {
		return nil
	}
	pass := &flushPass{now: now}
	defer p.held.recount()
	if err := proc.VisitAll(ctx, flushVisitor, pass); err != nil {
		// Not released: the messages are read again after the restart
		// or rebalance that aborted the pass.
		return err
	}
	p.marks.Release(pass.written)
	p.log.Debug("held states written", "states", len(pass.written))
	return nil
}
