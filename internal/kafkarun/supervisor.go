package kafkarun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/internal/retry"
)

// Restart backoff of a Supervisor: a goka processor that fails is rebuilt
// after 0.5 s, then waits double after each further failure, up to 30 s; a
// run that lasted a minute counts as healthy and starts the backoff over.
const (
	restartMin     = 500 * time.Millisecond
	restartMax     = 30 * time.Second
	healthyRunTime = time.Minute
)

// Supervisor runs a goka processor and rebuilds it after a failure (a
// consumer-group error such as a JoinGroup that outlived the client's read
// timeout, brokers away for too long), with backoff, logging and counting
// every restart. Its state comes back from the group table and its
// uncommitted input is read again. It also tells whether the processor is
// ready (table recovered, consuming) now, not only at start: Health is told
// of every change.
type Supervisor struct {
	// Name is the group's name in logs and health reasons.
	Name string
	Log  *slog.Logger
	// Build creates a new goka processor; it is called again after every
	// failure.
	Build func() (*goka.Processor, error)
	// Run runs proc until ctx ends or it fails; proc.Run when nil.
	Run func(ctx context.Context, proc *goka.Processor) error
	// Restarts, when not nil, counts the restarts.
	Restarts prometheus.Counter
	// Health, when not nil, is called with the reason the processor is not
	// processing (starting, restarting after an error), and with nil once
	// it is ready again.
	Health func(error)

	mu    sync.Mutex
	proc  *goka.Processor
	ready chan struct{}
	once  sync.Once
}

// ErrStarting is the health reason of a processor that has not been ready
// yet.
var ErrStarting = errors.New("starting: joining the consumer group and recovering its table")

// Start builds the first processor, so that a configuration goka refuses
// fails at once; Serve would otherwise build it itself.
func (s *Supervisor) Start() error {
	s.health(ErrStarting)
	proc, err := s.Build()
	if err != nil {
		return err
	}
	s.setCurrent(proc)
	return nil
}

func (s *Supervisor) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready == nil {
		s.ready = make(chan struct{})
	}
}

func (s *Supervisor) setCurrent(proc *goka.Processor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc = proc
}

// Current is the goka processor in use, nil while none could be built.
func (s *Supervisor) Current() *goka.Processor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Ready is closed the first time the processor is ready.
func (s *Supervisor) Ready() <-chan struct{} {
	s.init()
	return s.ready
}

func (s *Supervisor) health(err error) {
	if s.Health != nil {
		s.Health(err)
	}
}

// Serve runs the processor until ctx ends, rebuilding it after every
// failure. After ctx ends it returns what the last run returned when goka
// stopped (nil for a clean stop).
func (s *Supervisor) Serve(ctx context.Context) error {
	s.init()
	run := s.Run
	if run == nil {
		run = func(ctx context.Context, proc *goka.Processor) error { return proc.Run(ctx) }
	}
	backoff := retry.Backoff{Min: restartMin, Max: restartMax}
	s.health(ErrStarting)
	for {
		started := time.Now()
		proc := s.Current()
		var err error
		if proc == nil {
			if proc, err = s.Build(); err == nil {
				s.setCurrent(proc)
			}
		}
		if err == nil {
			watchCtx, stopWatch := context.WithCancel(ctx)
			go s.watchReady(watchCtx, proc)
			err = run(ctx, proc)
			stopWatch()
			if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
				err = nil
			}
		}
		if ctx.Err() != nil {
			if err != nil {
				// What goka says while it is being stopped is about the
				// stop: a SIGTERM while it still waits for its tables
				// ends Run with "context closed while waiting for startup
				// tables", which is no failure (and made the processor
				// exit 1 on a plain shutdown).
				s.Log.Info(s.Name+" stopped during its start or run", "err", err)
			}
			return nil
		}
		if err == nil {
			err = errors.New("goka processor stopped unexpectedly")
		}
		if s.Restarts != nil {
			s.Restarts.Inc()
		}
		if time.Since(started) > healthyRunTime {
			backoff.Reset()
		}
		wait := backoff.Next()
		s.health(fmt.Errorf("restarting after a failure: %w", err))
		s.Log.Error(s.Name+" processor failed; restarting", "in", wait, "err", err)
		s.setCurrent(nil)
		if !retry.Sleep(ctx, wait) {
			return nil
		}
	}
}

// watchReady reports the processor healthy once it is running. goka's
// WaitForReady waits on the partitions assigned when it is called, which a
// rebalance may stop for good, so it is asked again until it answers or
// the processor ends.
func (s *Supervisor) watchReady(ctx context.Context, proc *goka.Processor) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := proc.WaitForReadyContext(wctx)
		cancel()
		select {
		case <-proc.Done():
			return
		default:
		}
		if err == nil && ctx.Err() == nil {
			s.health(nil)
			s.once.Do(func() { close(s.ready) })
			return
		}
	}
}

// WaitForReady blocks until the processor is ready, or ctx ends.
func (s *Supervisor) WaitForReady(ctx context.Context) error {
	select {
	case <-s.Ready():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for %s processor: %w", s.Name, ctx.Err())
	}
}
