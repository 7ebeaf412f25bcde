package dashboard

import (
	"github.com/sitewatch/sitewatch/internal/testkit"

	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
)

const (
	topicUp   = "status_request_succeeded"
	topicDown = "status_request_failed"
)

type syncBuffer = testkit.SyncBuffer

// cluster starts kfake with the two result topics and returns a producer
// that writes results with the record timestamp set to checked_at, as the
// emitter's producer does in real time.
func cluster(t *testing.T) (addrs []string, produce func(*codecs.Result)) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topicUp, topicDown))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var codec codecs.ResultCodec
	return c.ListenAddrs(), func(r *codecs.Result) {
		t.Helper()
		v, err := codec.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		topic := topicUp
		if !r.Up() {
			topic = topicDown
		}
		rec := &kgo.Record{Topic: topic, Key: []byte(r.URL), Value: v, Timestamp: r.CheckedAt}
		if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func startRun(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return within 20s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: under `make test` every package's tests share two cores.
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunTableFromKafka(t *testing.T) {
	t.Parallel()
	addrs, produce := cluster(t)
	now := time.Now().UTC()
	// History: a failure of A ten minutes ago is shown as its last
	// failure; B's only check, two hours ago, is older than the lookback.
	produce(result("h1", "https://a/", now.Add(-10*time.Minute), false, -1))
	produce(result("h2", "https://b/", now.Add(-2*time.Hour), false, 10))

	out := &syncBuffer{}
	board := NewBoard([]Site{{URL: "https://a/", Name: "Alpha"}, {URL: "https://b/", Name: "Beta"}}, 5*time.Minute)
	stop := startRun(t, Config{
		Brokers: addrs, Topics: []string{topicUp, topicDown}, Board: board, Out: out, Terminal: true,
		Refresh: 50 * time.Millisecond, Title: "sitewatch · logs: x.log", Size: func() (int, int) { return 120, 30 },
	})
	for i := range 3 {
		produce(result("n"+string(rune('0'+i)), "https://a/", time.Now().UTC(), true, 12.5))
	}
	frame := func() string {
		s := out.String()
		return s[strings.LastIndex(s, cursorHome)+len(cursorHome):]
	}
	waitFor(t, "A up with three checks", func() bool {
		f := frame()
		return strings.Contains(f, "Alpha") && strings.Contains(f, "100.0%") && strings.Contains(f, "12.5")
	})
	f := frame()
	if !strings.HasPrefix(f, "sitewatch · logs: x.log"+clearLine+"\n") {
		t.Errorf("frame does not start with the title: %q", f)
	}
	var alpha, beta string
	for _, l := range strings.Split(f, "\n") {
		switch {
		case strings.HasPrefix(l, "Alpha"):
			alpha = l
		case strings.HasPrefix(l, "Beta"):
			beta = l
		}
	}
	if !strings.Contains(alpha, "up") || !strings.Contains(alpha, "m") || !strings.Contains(alpha, "ago connect: connection refused") {
		t.Errorf("Alpha row %q: want up with the failure of ten minutes ago", alpha)
	}
	if !strings.Contains(beta, " -  ") || strings.Contains(beta, "ago") {
		t.Errorf("Beta row %q: want not checked (its result is older than the lookback)", beta)
	}
	stop()
	all := out.String()
	if !strings.Contains(all[strings.LastIndex(all, cursorHome):], "stopping") || !strings.HasSuffix(all, clearBelow+"\n") {
		t.Errorf("output does not end with the stopping frame: %q", all[max(0, len(all)-300):])
	}
}

func TestRunPlainLogsChanges(t *testing.T) {
	t.Parallel()
	addrs, produce := cluster(t)
	// A failure before the start is history, not news.
	produce(result("h1", "https://a/", time.Now().UTC().Add(-time.Minute), false, -1))
	logs := &syncBuffer{}
	out := &syncBuffer{}
	board := NewBoard([]Site{{URL: "https://a/", Name: "Alpha"}}, time.Minute)
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	stop := startRun(t, Config{
		Brokers: addrs, Sarama: sc, Topics: []string{topicUp, topicDown}, Board: board, Out: out,
		Refresh: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	waitFor(t, "history read", func() bool { return board.Snapshot(time.Now()).Rows[0].Checked })
	produce(result("n1", "https://a/", time.Now().UTC(), true, 3))
	waitFor(t, "recovery logged", func() bool { return strings.Contains(logs.String(), `msg="site up" component=dashboard site=Alpha`) })
	produce(result("n2", "https://a/", time.Now().UTC(), false, -1))
	waitFor(t, "failure logged", func() bool {
		return strings.Contains(logs.String(), `msg="site down" component=dashboard site=Alpha url=https://a/`)
	})
	stop()
	if n := strings.Count(logs.String(), "site down"); n != 1 {
		t.Errorf("%d site-down lines, want 1 (the history is not news):\n%s", n, logs.String())
	}
	if out.String() != "" {
		t.Errorf("plain mode wrote to the table output: %q", out.String())
	}
}

// TestRunShowsConsumerFailureAtOnce: when a partition consumer cannot
// start (here a topic that does not exist), the table says so in its title
// and the log while it runs, not only at shutdown, and keeps showing what
// it has.
func TestRunShowsConsumerFailureAtOnce(t *testing.T) {
	t.Parallel()
	addrs, produce := cluster(t)
	produce(result("h1", "https://a/", time.Now().UTC(), true, 12.5))
	out, logs := &syncBuffer{}, &syncBuffer{}
	board := NewBoard([]Site{{URL: "https://a/", Name: "Alpha"}}, 5*time.Minute)
	startRun(t, Config{
		Brokers: addrs, Topics: []string{topicUp, "no_such_topic"}, Board: board, Out: out, Terminal: true,
		Refresh: 50 * time.Millisecond, Title: "sitewatch", Size: func() (int, int) { return 120, 30 },
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	waitFor(t, "the failure in the log", func() bool {
		return strings.Contains(logs.String(), "live table stopped following kafka") && strings.Contains(logs.String(), "no_such_topic")
	})
	waitFor(t, "the failure in the title", func() bool {
		s := out.String()
		f := s[strings.LastIndex(s, cursorHome)+len(cursorHome):]
		return strings.HasPrefix(f, "sitewatch  [not following kafka: ") && strings.Contains(f, "no_such_topic")
	})
}
