package sinks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// ConcurrentWriter is implemented by stores that take several write
// transactions at once (sinks/postgres, over its connection pool): a sink
// then keeps up to WriteConcurrency store writes in flight, each of
// batches of other partitions. A store without it (sinks/sqlite, a single
// writer) gets one write at a time.
type ConcurrentWriter interface {
	WriteConcurrency() int
}

// writer is one session's store writes, shared by all of its claims.
//
// A claim hands over its batch when the batch is due and goes on reading
// and decoding the next one while this one is in the store: the database
// and the decoding overlap instead of taking turns. Each claim has at most
// one batch here at a time, so the batches of one partition are written,
// and then committed by their claim, in offset order (the first of two
// emissions of one event stored is the first in the partition, as the
// windows processor counts it), while batches of different partitions are
// written side by side by up to n workers, and a worker gathers the
// batches waiting when it becomes free into one store call (up to
// gatherRows rows), so that a backlog is written in transactions of many
// partitions, as a bulk COPY would be, and not one per partition.
type writer struct {
	s *Sink
	// queue has room for one batch per claim of the session, so handing
	// over never blocks.
	queue      chan *batch
	gatherRows int
	// ctx is the workers' context: it outlives the session by
	// DrainTimeout, so that the batches the claims hand over while they
	// drain are still written, and then ends.
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool
	wg     sync.WaitGroup
}

// newWriter starts the workers for a session with claims claims, writing
// until sessCtx ends and DrainTimeout after that.
func newWriter(s *Sink, sessCtx context.Context, claims int) *writer {
	ctx, cancel := context.WithCancel(context.WithoutCancel(sessCtx))
	w := &writer{s: s, queue: make(chan *batch, max(claims, 1)), ctx: ctx, cancel: cancel}
	w.stop = context.AfterFunc(sessCtx, func() {
		t := time.AfterFunc(s.cfg.DrainTimeout, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	n := s.writers()
	// Only results and windows are gathered: the idempotent stores take
	// rows of several partitions in one transaction as well as in
	// several. A ChangeWriter delivers to receivers one batch per call, as
	// it always has.
	if s.cfg.Kind == Results || s.cfg.Kind == Windows {
		w.gatherRows = s.cfg.WriteRows
	}
	for range n {
		w.wg.Go(w.run)
	}
	return w
}

// close stops the workers once every claim has returned (sarama calls
// Cleanup after the last ConsumeClaim), ending any write still retrying.
func (w *writer) close() {
	w.stop()
	w.cancel()
	close(w.queue)
	w.wg.Wait()
}

// submit hands b over; done is closed when the write is over (b.err says
// how). A batch without rows is done at once.
func (w *writer) submit(b *batch) {
	b.done = make(chan struct{})
	b.err = nil
	if b.rows() == 0 {
		close(b.done)
		return
	}
	w.queue <- b
}

func (w *writer) run() {
	var bs []*batch
	for b := range w.queue {
		bs = append(bs[:0], b)
	gather:
		for rows := b.rows(); rows < w.gatherRows; {
			select {
			case more, ok := <-w.queue:
				if !ok {
					break gather
				}
				bs = append(bs, more)
				rows += more.rows()
			default:
				break gather
			}
		}
		w.write(bs)
		clear(bs)
	}
}

// write stores the rows of bs in one store call, retried until it
// succeeds or the writer's context ends, then hands each batch its
// rejected rows and closes its done channel.
func (w *writer) write(bs []*batch) {
	s := w.s
	n := 0
	for _, b := range bs {
		n += b.rows()
	}
	log := s.log
	if len(bs) == 1 {
		log = bs[0].c.log
	}
	// The rows of all batches, in batch order: each batch is a run of its
	// partition, in offset order.
	var results []*codecs.Result
	var windows []*codecs.Window
	var changes []*codecs.StatusChange
	if len(bs) == 1 {
		results, windows, changes = bs[0].results, bs[0].windows, bs[0].changes
	} else {
		for _, b := range bs {
			results = append(results, b.results...)
			windows = append(windows, b.windows...)
			changes = append(changes, b.changes...)
		}
	}
	var rejected []Rejected
	onFail := func(err error) {
		s.m.writeErrors.Inc()
		s.outage.Fail(err)
		for _, b := range bs {
			b.c.updateLag() // keeps growing while the store is down
		}
	}
	err := s.retry(w.ctx, log, "store write", onFail, func(ctx context.Context) error {
		start := time.Now()
		var err error
		switch s.cfg.Kind {
		case Results:
			rejected, err = s.store.WriteResults(ctx, results)
		case Windows:
			rejected, err = s.store.WriteWindows(ctx, windows)
		case Changes:
			rejected, err = s.changes.WriteChanges(ctx, changes)
		}
		if err != nil {
			return fmt.Errorf("write %d %s: %w", n, s.cfg.Kind, err)
		}
		s.m.writeTime.Observe(time.Since(start).Seconds())
		return nil
	})
	if err == nil {
		s.outage.OK()
		s.m.written.Add(float64(n - spread(bs, rejected, n, log)))
		s.countOpenIncidents(w.ctx, log)
	}
	for _, b := range bs {
		b.err = err
		close(b.done)
	}
}

// spread gives each batch the rejections of its rows, with indices into
// the batch, and returns how many rows were rejected.
func spread(bs []*batch, rejected []Rejected, n int, log *slog.Logger) int {
	count := 0
	for _, r := range rejected {
		if r.Index < 0 || r.Index >= n {
			// A store bug; the row was not written, but there is no
			// message to blame, so it can only be logged.
			log.Error("store rejected a row index out of range", "index", r.Index, "rows", n, "reason", r.Reason)
			continue
		}
		i := r.Index
		for _, b := range bs {
			if i < b.rows() {
				b.rejected = append(b.rejected, Rejected{Index: i, Reason: r.Reason})
				count++
				break
			}
			i -= b.rows()
		}
	}
	return count
}

// writers is the number of store writes a sink keeps in flight: the
// store's WriteConcurrency for results and windows unless Config.Writers
// says otherwise, one for status changes (their receivers see them one
// batch at a time, as before).
func (s *Sink) writers() int {
	if s.cfg.Kind == Changes {
		return 1
	}
	if s.cfg.Writers > 0 {
		return s.cfg.Writers
	}
	if cw, ok := s.store.(ConcurrentWriter); ok {
		return max(1, cw.WriteConcurrency())
	}
	return 1
}
