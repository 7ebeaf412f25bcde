package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/sinks/notify"
)

// TestNotifyKilledBeforeCommit: the processor (-run notify) is killed
// with SIGKILL after the receiver got a change and before the offset was
// committed. After the restart the change is delivered again, the same
// bytes under the same Idempotency-Key (at-least-once); once accepted it
// is committed, and a third start sends nothing.
func TestNotifyKilledBeforeCommit(t *testing.T) {
	t.Parallel()
	const pathToken = "PATH-TOKEN-5e1f"
	_, addrs := testkit.Kafka(t, kfake.SeedTopics(testPartitions, string(topics.StatusChanges), string(topics.DeadLetters)))

	type got struct {
		key  string
		body []byte
	}
	var mu sync.Mutex
	var reqs []got
	var first *child
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, got{r.Header.Get(notify.HeaderIdempotencyKey), body})
		n := len(reqs)
		mu.Unlock()
		if n == 1 {
			first.kill() // received, not yet answered, so not committed
		}
	}))
	defer rc.Close()
	requests := func() []got {
		mu.Lock()
		defer mu.Unlock()
		return append([]got(nil), reqs...)
	}
	args := []string{
		"-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "4", "-run", "notify",
		"-alert-webhook", rc.URL + "/hook/" + pathToken, "-log-level", "debug",
	}
	first = startChild(t, args)

	at := time.Now().UTC()
	kind, msg := codecs.ErrTimeout, "no answer"
	c := &codecs.StatusChange{ChangeID: "https://k.example/|down|1", URL: "https://k.example/", Name: "K",
		Kind: codecs.ChangeDown, State: codecs.StateDown, PreviousState: codecs.StateUp, Since: at.Add(-time.Minute), ChangedAt: at,
		Consecutive: 3, EventID: "ev1", ErrorKind: &kind, ErrorMessage: &msg}
	value, err := codecs.StatusChangeCodec{}.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: string(topics.StatusChanges), Key: []byte(c.URL), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the first delivery", first.logs, func() bool { return len(requests()) >= 1 })
	<-first.done

	second := startProcessor(t, args)
	waitFor(t, 90*time.Second, "the delivery after the restart", second.logs, func() bool { return len(requests()) >= 2 })
	// Accepted, so marked; the stop commits it (the third start checks).
	waitFor(t, 30*time.Second, "the offset marked", second.logs, func() bool {
		return strings.Contains(second.logs.String(), "offsets marked")
	})
	second.stop()
	r := requests()
	if len(r) != 2 || r[0].key != c.ChangeID || r[1].key != c.ChangeID || string(r[0].body) != string(r[1].body) {
		t.Fatalf("requests %+v: want the change twice, same key and body", r)
	}

	third := startProcessor(t, args)
	waitFor(t, 60*time.Second, "the third start to join", third.logs, func() bool {
		return strings.Contains(third.logs.String(), "partitions assigned")
	})
	time.Sleep(time.Second)
	third.stop()
	if n := len(requests()); n != 2 {
		t.Errorf("%d requests after the third start, want 2: the accepted change was not committed", n)
	}
	for i, logs := range []string{first.logs.String(), second.logs.String(), third.logs.String()} {
		if strings.Contains(logs, pathToken) {
			t.Errorf("run %d logged the webhook's path token:\n%s", i+1, logs)
		}
	}
}
