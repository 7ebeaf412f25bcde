package kafkarun

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
)

// A shutdown (ctx ends) is a clean stop whatever goka answers while it is
// being stopped: a SIGTERM during its start made it return "context closed
// while waiting for startup tables", and the processor exited 1.
func TestSupervisorStopDuringStartIsClean(t *testing.T) {
	tt := tester.New(t)
	s := &Supervisor{
		Name: "test", Log: slog.New(slog.DiscardHandler),
		Build: func() (*goka.Processor, error) {
			g := goka.DefineGroup("supervised", goka.Input("in", new(codec.String), func(goka.Context, any) {}))
			return goka.NewProcessor(nil, g, goka.WithTester(tt))
		},
		Run: func(ctx context.Context, _ *goka.Processor) error {
			<-ctx.Done()
			return errors.New("error waiting for start up tables: context closed while waiting for startup tables to become ready")
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after shutdown: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
}
