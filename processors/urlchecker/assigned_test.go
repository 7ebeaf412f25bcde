package urlchecker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
)

// TestRequestPartitionIsWhereRequestsLand: the partition a scheduler
// computes for a URL is the one the request producer puts its requests
// on, or emitters would schedule each other's sites.
func TestRequestPartitionIsWhereRequestsLand(t *testing.T) {
	const parts = 12
	_, addrs := testkit.Kafka(t, kfake.SeedTopics(parts, codecs.TopicRequests))
	re, stop := startRequestEmitter(t, addrs, nil)
	const n = 600
	now := time.Now().UTC()
	for i := range n {
		url := fmt.Sprintf("https://site-%d.example.test/p?i=%d", i, i*7)
		if err := re.Emit(context.Background(), &codecs.Request{V: codecs.Version, URL: url, Method: "GET", TimeoutMS: 1000,
			ScheduledAt: now, NextAt: now.Add(time.Minute), RequestID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	stop() // flushes
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(codecs.TopicRequests),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen, used := 0, map[int32]bool{}
	for seen < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			seen++
			used[r.Partition] = true
			if want := urlchecker.RequestPartition(string(r.Key), parts); r.Partition != want {
				t.Errorf("request for %s landed on partition %d, RequestPartition says %d", r.Key, r.Partition, want)
			}
		})
	}
	if seen != n {
		t.Fatalf("read %d requests back, want %d", seen, n)
	}
	if len(used) != parts {
		t.Errorf("%d requests used %d of %d partitions", n, len(used), parts)
	}
}

// assignments records what Config.Assigned hears.
type assignments struct {
	mu     sync.Mutex
	parts  []int32
	member bool
	calls  int
}

func (a *assignments) assigned(parts []int32, member bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.parts, a.member = parts, member
	a.calls++
}

func (a *assignments) get() ([]int32, bool, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.parts), a.member, a.calls
}

// TestAssignedHearsEachInstancesPartitions: two instances in one group
// hear disjoint assignments covering every partition; one that stops
// hears it is no member any more, and the other then has them all.
func TestAssignedHearsEachInstancesPartitions(t *testing.T) {
	const parts = 6
	_, addrs := testkit.Kafka(t, kfake.SeedTopics(parts, codecs.TopicRequests, codecs.TopicSucceeded, codecs.TopicFailed, codecs.TopicDeadLetters))
	var heard [2]assignments
	var stops [2]func()
	for i := range 2 {
		p, err := urlchecker.New(urlchecker.Config{
			Brokers: addrs, Sarama: saramaConfig(), TopicManager: topicManagerConfig(),
			InstanceID: fmt.Sprintf("a%d", i), Checker: checker.New(checker.Options{}), Logger: quiet(),
			Assigned: heard[i].assigned,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		var once sync.Once
		stops[i] = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run a%d: %v", i, err)
				}
			})
		}
		t.Cleanup(stops[i])
	}
	all := []int32{0, 1, 2, 3, 4, 5}
	waitFor(t, "both instances assigned every partition between them", 60*time.Second, func() bool {
		a, okA, _ := heard[0].get()
		b, okB, _ := heard[1].get()
		union := slices.Sorted(slices.Values(append(a, b...)))
		return okA && okB && len(a) > 0 && len(b) > 0 && slices.Equal(union, all)
	})
	stops[1]()
	if parts, member, _ := heard[1].get(); member || len(parts) != 0 {
		t.Errorf("stopped instance last heard %v member=%v, want no partitions, no member", parts, member)
	}
	waitFor(t, "the remaining instance assigned every partition", 60*time.Second, func() bool {
		a, ok, _ := heard[0].get()
		return ok && slices.Equal(a, all)
	})
}
