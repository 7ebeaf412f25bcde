package urlchecker_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
	"github.com/sitewatch/sitewatch/scheduler"
)

// TestCrashWithChecksInFlightLosesNoSlot is a url_checker killed with
// SIGKILL while many checks are in flight, some of them slow: the fast
// checks after a slow one finish first. After the crash every slot must be
// checked, by the crashed instance before it died or by its successor after
// redelivery. Committing a fast check's offset while an earlier slow check
// was still running skipped the slow slot for good: neither checked nor
// redelivered.
//
// The crash: from a given moment the broker refuses every offset commit,
// so that nothing the instance does afterwards reaches Kafka, and the
// instance is stopped; only what it committed before counts, as after a
// kill -9.
func TestCrashWithChecksInFlightLosesNoSlot(t *testing.T) {
	kc, addrs := cluster(t)
	release := make(chan struct{})
	var slowStarted atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			slowStarted.Add(1)
			if !held(r, release) {
				return
			}
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	results := readTopics(t, addrs, codecs.TopicSucceeded, codecs.TopicFailed)

	var crashed atomic.Bool
	kc.ControlKey(int16(kmsg.OffsetCommit), func(r kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if !crashed.Load() {
			return nil, nil, false
		}
		// "Not committed, try later", which sarama takes quietly.
		req := r.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	first, err := urlchecker.New(urlchecker.Config{
		Brokers: addrs, Sarama: saramaConfig(), TopicManager: topicManagerConfig(),
		InstanceID: "crashing", Checker: checker.New(checker.Options{}), Logger: quiet(),
		DrainTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopFirst := context.WithCancel(context.Background())
	defer stopFirst()
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Run(ctx) }()
	select {
	case <-first.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("first instance not ready after 30s")
	}

	re, stop := startRequestEmitter(t, addrs, nil)
	now := time.Now().UTC()
	want := map[string]string{} // request id → url
	const n, every = 60, 6
	for i := range n {
		url := fmt.Sprintf("%s/fast/%d", srv.URL, i)
		if i%every == 0 {
			url = fmt.Sprintf("%s/slow/%d", srv.URL, i)
		}
		req := &codecs.Request{RequestID: scheduler.RequestID(url, now, codecs.DefaultRegion), URL: url, ScheduledAt: now,
			NextAt: now.Add(10 * time.Minute), Method: "GET", TimeoutMS: (5 * time.Minute).Milliseconds()}
		want[req.RequestID] = url
		if err := re.Emit(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	fast := n - n/every
	waitFor(t, "every fast result", 60*time.Second, func() bool { return len(results.results(t)) >= fast })
	waitFor(t, "every slow check to start", 30*time.Second, func() bool { return slowStarted.Load() == n/every })
	waitForSteadyCommits(t, addrs, string(urlchecker.DefaultGroup))

	// kill -9: nothing more reaches the broker's offsets.
	crashed.Store(true)
	stopFirst()
	if err := <-firstDone; err != nil {
		t.Logf("crashed instance: %v", err) // its drain could not finish: expected
	}
	crashed.Store(false)
	close(release)

	startProcessor(t, addrs, "successor", nil)
	missing := func() []string {
		got := map[string]bool{}
		for _, r := range results.results(t) {
			got[r.EventID] = true
			if want[r.EventID] != r.URL {
				t.Fatalf("result %s for %s, want url %s", r.EventID, r.URL, want[r.EventID])
			}
		}
		var out []string
		for id, url := range want {
			if !got[id] {
				out = append(out, url)
			}
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d of %d slots were neither checked nor redelivered after the crash: %v", len(m), n, m)
	}
}

// waitForSteadyCommits waits until the group has committed offsets and
// they stay the same across two fetches a few auto-commit intervals apart:
// everything the instance was going to commit before the crash is
// committed.
func waitForSteadyCommits(t *testing.T, addrs []string, group string) {
	t.Helper()
	adm, err := sarama.NewClusterAdmin(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	fetch := func() map[string]int64 {
		res, err := adm.ListConsumerGroupOffsets(group, nil)
		if err != nil {
			t.Fatalf("fetch committed offsets: %v", err)
		}
		out := map[string]int64{}
		for topic, parts := range res.Blocks {
			for p, b := range parts {
				if b.Offset >= 0 {
					out[fmt.Sprintf("%s/%d", topic, p)] = b.Offset
				}
			}
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	prev := fetch()
	for time.Now().Before(deadline) {
		time.Sleep(2500 * time.Millisecond)
		cur := fetch()
		if len(cur) > 0 && reflect.DeepEqual(cur, prev) {
			return
		}
		prev = cur
	}
	t.Fatalf("committed offsets of %s still moving after 60s: %v", group, prev)
}
