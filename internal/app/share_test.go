package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
	"github.com/sitewatch/sitewatch/scheduler"
	"github.com/sitewatch/sitewatch/telemetry"
)

// TestShareKeeperFollowsTheAssignment: before any assignment the emitter
// schedules nothing and /healthz says why; an assignment schedules the
// sites of its partitions (by the producer's partitioner, with the
// topic's partition count); an instance out of its group schedules
// nothing again and says so.
func TestShareKeeperFollowsTheAssignment(t *testing.T) {
	const parts = 12
	_, addrs := testkit.Kafka(t, kfake.SeedTopics(parts, codecs.TopicRequests))
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := metadataClient(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	health := telemetry.NewHealth()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	k, err := newShareKeeper(client, codecs.TopicRequests, log, health.Part("scheduler"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(health.Problems(), "\n"); !strings.Contains(got, "scheduler: starting: no partition") {
		t.Errorf("health before any assignment: %q", got)
	}
	var sites []config.Site
	for i := range 240 {
		sites = append(sites, config.Site{URL: fmt.Sprintf("https://s%d.example.test/", i), Interval: time.Hour, Timeout: time.Second})
	}
	reg := prometheus.NewRegistry()
	sched, err := scheduler.New(sites, scheduler.Options{Emit: func(context.Context, *codecs.Request) error { return nil }, Registerer: reg, Share: k.initial()})
	if err != nil {
		t.Fatal(err)
	}
	k.sched = sched
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = sched.Run(ctx) }()
	go func() { _ = k.run(ctx) }()

	waitMetric := func(name string, want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for testkit.Metric(t, reg, name) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v, want %v", name, testkit.Metric(t, reg, name), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitMetric("sitewatch_schedule_known_sites", 240)
	waitMetric("sitewatch_schedule_sites", 0)

	owned := []int32{1, 4, 7}
	want := 0
	for _, s := range sites {
		switch urlchecker.RequestPartition(s.URL, parts) {
		case 1, 4, 7:
			want++
		}
	}
	k.assigned(owned, true)
	waitMetric("sitewatch_schedule_owned_partitions", 3)
	waitMetric("sitewatch_schedule_sites", float64(want))
	if p := health.Problems(); len(p) != 0 {
		t.Errorf("health with partitions assigned: %v", p)
	}

	k.assigned(nil, false)
	waitMetric("sitewatch_schedule_owned_partitions", 0)
	waitMetric("sitewatch_schedule_sites", 0)
	if got := strings.Join(health.Problems(), "\n"); !strings.Contains(got, "out of its group") {
		t.Errorf("health out of the group: %q", got)
	}

	// An assignment of no partition (more emitters than partitions) is
	// healthy: the instance is in its group and has nothing to do.
	k.assigned([]int32{}, true)
	deadline := time.Now().Add(10 * time.Second)
	for len(health.Problems()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("health with an empty assignment: %v", health.Problems())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
