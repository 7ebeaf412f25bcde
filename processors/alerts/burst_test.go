package alerts

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// TestBurstHalvesLandingApart: the two result topics' halves of one burst
// come from separate producers, and the failed half lands seconds before
// the succeeded half (an emitter's buffer after a broker outage). The
// failures must still be applied after the successes checked before them:
// one down from up, then one up. Before the fix the failures went after
// settle (1 s), the site went down from "unknown" and the earlier
// successes were late (bench/alerts -outage lost the first cycle after the
// outage so).
func TestBurstHalvesLandingApart(t *testing.T) {
	if testing.Short() {
		t.Skip("kfake")
	}
	t.Parallel()
	_, brokers := testkit.Kafka(t)
	scfg := goka.DefaultConfig()
	scfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication, tmc.Stream.Replication = 1, 1
	tmb := goka.TopicManagerBuilderWithConfig(scfg, tmc)
	tm, err := tmb(brokers)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []goka.Stream{testTopics.Succeeded, testTopics.Failed, testTopics.Changes, testTopics.DeadLetters} {
		if err := tm.EnsureStreamExists(string(topic), 3); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	tm.Close()

	p, err := New(Config{
		Brokers: brokers, Sarama: scfg, Topics: testTopics, Storage: storage.MemoryBuilder(), TopicManager: tmb,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := p.WaitForReady(wctx); err != nil {
		t.Fatal(err)
	}

	const site = "https://shop.example/"
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	rs := pattern(site, "uudddduu")
	for _, r := range rs {
		d := r.CheckedAt.Sub(t0)
		r.CheckedAt, r.ScheduledAt = base.Add(d), base.Add(d)
	}
	produce := func(topic goka.Stream, up bool) {
		e, err := goka.NewEmitter(brokers, topic, new(codec.Bytes),
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(scfg)), goka.WithEmitterTopicManagerBuilder(tmb))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Up() != up {
				continue
			}
			data, err := codecs.ResultCodec{}.Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Emit(r.URL, data); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	produce(testTopics.Failed, false)
	time.Sleep(3 * time.Second) // more than settle, less than quietFor
	produce(testTopics.Succeeded, true)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(string(testTopics.Changes)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*codecs.StatusChange
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for len(got) < 2 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(rec *kgo.Record) {
			c, err := codecs.DecodeStatusChange(rec.Value)
			if err != nil {
				t.Errorf("change: %v", err)
				return
			}
			got = append(got, c)
		})
	}
	// A moment for a wrong extra change to show.
	time.Sleep(time.Second)
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	cl.PollFetches(pctx).EachRecord(func(rec *kgo.Record) {
		c, _ := codecs.DecodeStatusChange(rec.Value)
		got = append(got, c)
	})
	pcancel()
	if kinds(got) != "down up" || got[0].PreviousState != codecs.StateUp || got[0].Consecutive != 3 {
		for _, c := range got {
			t.Logf("change %s %s→%s consecutive %d", c.Kind, c.PreviousState, c.State, c.Consecutive)
		}
		t.Errorf("changes %q, want one down from up at the third failure, then one up", kinds(got))
	}
}
