package windows

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConsumerGroupFailureRestartsTheProcessor: a consumer-group error
// stops goka's processor for good (it returns "error consuming from group
// consumer"). In the fault suite (test/faults) a JoinGroup that outlived
// sarama's 30 s read timeout during a rebalance did that and took the
// whole sitewatch processor down with exit status 1. Run must instead
// rebuild the goka processor, count the restart and go on: every result is
// still consumed and every window emitted.
func TestConsumerGroupFailureRestartsTheProcessor(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test with in-process Kafka")
	}
	k := newKafkaEnv(t)
	rs := generateResults()
	k.produce(t, rs)
	windows := k.consumeWindows(t)
	clock := newFakeClock(at(12, 31, 0))
	// The first JoinGroup of the windows group fails with an error that
	// sarama does not retry.
	fault := k.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.JoinGroup}, Group: string(DefaultGroup),
		Err: kerr.GroupAuthorizationFailed, Count: 1})

	reg := prometheus.NewRegistry()
	var healthMu sync.Mutex
	var health []error // every report, in order
	p, err := New(Config{
		Brokers: k.brokers, Sarama: k.sarama(), Topics: testTopics, Now: clock.Now,
		Registerer: reg, Logger: testLogger(t, slog.LevelWarn), IdleCheck: 100 * time.Millisecond,
		TopicManager: k.topicManager(),
		Health: func(err error) {
			healthMu.Lock()
			defer healthMu.Unlock()
			health = append(health, err)
		},
	})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("run did not return after cancel")
		}
	}()

	eventually(t, 60*time.Second, "all results consumed after the restart", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v after the consumer group failed; want a restart", err)
		default:
		}
		n := gatherCounter(t, reg, "sitewatch_windows_events_consumed_total")
		return n == float64(len(rs)), fmt.Sprintf("%v of %d consumed, fault hit %d times", n, len(rs), fault.Hits())
	})
	if fault.Hits() != 1 {
		t.Fatalf("the JoinGroup fault was hit %d times, want 1", fault.Hits())
	}
	if n := gatherCounter(t, reg, "sitewatch_windows_restarts_total"); n != 1 {
		t.Errorf("sitewatch_windows_restarts_total = %v, want 1", n)
	}
	if err := p.WaitForReady(ctx); err != nil {
		t.Errorf("WaitForReady after the restart: %v", err)
	}
	// /healthz followed it: unhealthy while restarting, healthy after.
	eventually(t, 20*time.Second, "healthy again after the restart", func() (bool, string) {
		healthMu.Lock()
		defer healthMu.Unlock()
		restarting := false
		for _, err := range health {
			if err != nil && strings.Contains(err.Error(), "restarting after a failure") {
				restarting = true
			}
		}
		return restarting && health[len(health)-1] == nil, fmt.Sprintf("health reports %v", health)
	})
	clock.Set(at(12, 40, 0))
	want := expectedWindows(rs, DefaultWindowSize)
	eventually(t, 20*time.Second, "windows equal raw aggregates", func() (bool, string) {
		d := windows.diff(want)
		return d == "", d
	})
}
