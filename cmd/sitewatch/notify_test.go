package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/sinks/notify"
)

// TestAllInOneSendsStatusChanges: the all-in-one command takes the notify
// flags and delivers what appears on status_changes to the webhook.
func TestAllInOneSendsStatusChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	_, addrs := testkit.Kafka(t)
	got := make(chan string, 10)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Header.Get(notify.HeaderIdempotencyKey)
	}))
	defer rc.Close()
	sitesFile, _ := sitesFixture(t)
	_, _, stderr := startSitewatch(t, "-sites", sitesFile, "-data-dir", t.TempDir(), "-table", "off",
		"-brokers", testkit.JoinAddrs(addrs), "-topic-partitions", "2", "-alert-webhook", rc.URL+"/hook")

	at := time.Now().UTC()
	c := &codecs.StatusChange{ChangeID: "https://aio.example/|up|1", URL: "https://aio.example/", Name: "AIO",
		Kind: codecs.ChangeUp, State: codecs.StateUp, PreviousState: codecs.StateDown, Since: at.Add(-time.Minute), ChangedAt: at,
		Consecutive: 2, EventID: "ev", StatusCode: 200}
	value, err := codecs.StatusChangeCodec{}.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Produce once sitewatch has made the topic: a record auto-creating
	// it raced with that creation (UNKNOWN_TOPIC_OR_PARTITION).
	for {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "status_changes", Key: []byte(c.URL), Value: value}).FirstErr()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("produce to status_changes: %v; logs:\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case key := <-got:
		if key != c.ChangeID {
			t.Errorf("Idempotency-Key %q, want %q", key, c.ChangeID)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the webhook got nothing within 60s; logs:\n%s", stderr.String())
	}
}
