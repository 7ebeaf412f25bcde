package sinks_test

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks"
)

// TestResultsExactlyOnce drives the results sink over both result topics
// with duplicates, undecodable messages and rows the store rejects, then
// restarts it: every valid event is stored exactly once, every bad one is
// in the dead-letter topic with its reason, and the restarted sink reads
// only what is new.
func TestResultsExactlyOnce(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 3, topicUp, topicDown, topicDLQ)
	store := openStore(t)
	const group = "sink-results"

	want := map[string]bool{}
	var recs []*kgo.Record
	for i := range 200 {
		rec, id := resultRecord(t, i)
		want[id] = true
		recs = append(recs, rec)
		if i%10 == 0 { // re-delivered right away: same batch
			recs = append(recs, &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value})
		}
	}
	for i := range 200 {
		if i%25 == 0 { // re-delivered much later: another batch
			rec, _ := resultRecord(t, i)
			recs = append(recs, rec)
		}
	}
	// Bad messages, with the reason each must carry.
	ftp := &codecs.Result{EventID: "ftp-1", URL: "ftp://files.example/", ScheduledAt: base, CheckedAt: base,
		Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "test"}
	ftpBytes, _ := codecs.ResultCodec{}.Encode(ftp)
	bad := []struct {
		rec    *kgo.Record
		reason string
	}{
		{&kgo.Record{Topic: topicUp, Key: []byte(sites[0]), Value: []byte("not json")}, "decode result: invalid json"},
		{&kgo.Record{Topic: topicDown, Key: []byte(sites[1]), Value: []byte(`{"v":2,"event_id":"x"}`)}, "decode result:"},
		{&kgo.Record{Topic: topicUp, Key: []byte(sites[2]), Value: []byte(`{"v":1,"event_id":"no-url"}`)}, `missing field "url"`},
		{&kgo.Record{Topic: topicDown, Key: []byte(sites[3]), Value: nil}, "decode result:"},
		{&kgo.Record{Topic: topicUp, Key: []byte("ftp://files.example/"), Value: ftpBytes}, "rejected by store:"},
	}
	// Interleave the bad messages with the good ones.
	for i, b := range bad {
		at := (i + 1) * len(recs) / (len(bad) + 1)
		recs = append(recs[:at], append([]*kgo.Record{b.rec}, recs[at:]...)...)
	}
	k.produce(recs...)

	r := startSink(t, k, sinks.Config{Group: group, Topics: []string{topicUp, topicDown}, Kind: sinks.Results, BatchSize: 17}, store)
	k.waitCommitted(group, topicUp, topicDown)
	assertExactlyOnce(t, store, want)

	dls := k.deadLetters()
	if len(dls) != len(bad) {
		t.Fatalf("dead letters = %d, want %d", len(dls), len(bad))
	}
	for _, b := range bad {
		found := false
		for _, d := range dls {
			if d.Topic == b.rec.Topic && d.Partition == b.rec.Partition && d.Offset == b.rec.Offset {
				found = true
				if !bytes.Equal(d.Value, b.rec.Value) || !bytes.Equal(d.Key, b.rec.Key) {
					t.Errorf("dead letter %s/%d@%d: key %q value %q, want the original %q %q", d.Topic, d.Partition, d.Offset, d.Key, d.Value, b.rec.Key, b.rec.Value)
				}
				if !strings.Contains(d.Reason, b.reason) {
					t.Errorf("dead letter of %q: reason %q, want it to contain %q", b.rec.Value, d.Reason, b.reason)
				}
				if d.Consumer != group || d.FailedAt.IsZero() {
					t.Errorf("dead letter consumer %q failed_at %v", d.Consumer, d.FailedAt)
				}
			}
		}
		if !found {
			t.Errorf("no dead letter for %q (%s/%d@%d)", b.rec.Value, b.rec.Topic, b.rec.Partition, b.rec.Offset)
		}
	}
	if got := r.metric(t, "sitewatch_sink_events_consumed_total"); got != float64(len(recs)) {
		t.Errorf("events consumed = %v, want %d", got, len(recs))
	}
	if got := r.metric(t, "sitewatch_sink_dead_letters_total", "reason", "decode"); got != 4 {
		t.Errorf("dead letters (decode) = %v, want 4", got)
	}
	if got := r.metric(t, "sitewatch_sink_dead_letters_total", "reason", "rejected"); got != 1 {
		t.Errorf("dead letters (rejected) = %v, want 1", got)
	}
	if got := r.metric(t, "sitewatch_sink_batch_size"); got == 0 {
		t.Error("no batch size observed")
	}
	// The gauge is set just after the commit that waitCommitted saw.
	waitFor(t, "the consumer lag to drop to 0", func() bool { return r.metric(t, "sitewatch_sink_consumer_lag") == 0 })
	r.stop(t)

	// Restart: the committed offsets are where the new sink starts.
	var more []*kgo.Record
	for i := 200; i < 220; i++ {
		rec, id := resultRecord(t, i)
		want[id] = true
		more = append(more, rec)
	}
	more = append(more, &kgo.Record{Topic: topicUp, Value: []byte("{")})
	k.produce(more...)
	r2 := startSink(t, k, sinks.Config{Group: group, Topics: []string{topicUp, topicDown}, Kind: sinks.Results, BatchSize: 17}, store)
	k.waitCommitted(group, topicUp, topicDown)
	assertExactlyOnce(t, store, want)
	if got := r2.metric(t, "sitewatch_sink_events_consumed_total"); got != float64(len(more)) {
		t.Errorf("restarted sink consumed %v messages, want only the %d new ones", got, len(more))
	}
	if n := len(k.deadLetters()); n != len(bad)+1 {
		t.Errorf("dead letters after restart = %d, want %d", n, len(bad)+1)
	}
}

// TestStoreOutage keeps the store failing while the sink runs and stops:
// nothing is committed; then a sink on a store that fails a few more
// times before it recovers writes everything exactly once.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 2, topicUp, topicDown, topicDLQ)
	db := openStore(t)
	store := &flakyStore{Store: db}
	store.down.Store(true)
	const group = "sink-outage"
	want := map[string]bool{}
	var recs []*kgo.Record
	for i := range 100 {
		rec, id := resultRecord(t, i)
		want[id] = true
		recs = append(recs, rec)
	}
	k.produce(recs...)
	cfg := sinks.Config{
		Group: group, Topics: []string{topicUp, topicDown}, Kind: sinks.Results, BatchSize: 30,
		BackoffMin: 2 * time.Millisecond, BackoffMax: 20 * time.Millisecond, DrainTimeout: 100 * time.Millisecond,
	}

	r := startSink(t, k, cfg, store)
	waitFor(t, "retries of the failing store", func() bool { return store.calls.Load() >= 10 })
	waitFor(t, "the lag to show the uncommitted backlog", func() bool {
		return r.metric(t, "sitewatch_sink_consumer_lag") == float64(len(recs))
	})
	r.stop(t) // returns although the store is still down: the drain is bounded
	if got := r.metric(t, "sitewatch_sink_write_errors_total"); got < 5 {
		t.Errorf("write errors = %v after %d failed calls, want them counted", got, store.failures.Load())
	}
	ends := k.endOffsets(topicUp, topicDown)
	for p, off := range k.committed(group, ends) {
		if off != -1 {
			t.Errorf("%v committed at %d while the store was down", p, off)
		}
	}
	if ids := storedEventIDs(t, db); len(ids) != 0 {
		t.Errorf("%d rows stored while the store was down", len(ids))
	}

	// The database comes back, flaky at first.
	store.down.Store(false)
	store.failFirst.Store(3)
	before := store.failures.Load()
	r2 := startSink(t, k, cfg, store)
	k.waitCommitted(group, topicUp, topicDown)
	assertExactlyOnce(t, db, want)
	if got := store.failures.Load() - before; got != 3 {
		t.Errorf("injected failures after recovery = %d, want 3", got)
	}
	if got := r2.metric(t, "sitewatch_sink_write_errors_total"); got != 3 {
		t.Errorf("write errors = %v, want 3", got)
	}
	if n := len(k.deadLetters()); n != 0 {
		t.Errorf("dead letters = %d, want none: an outage is not a bad message", n)
	}
}

// TestWindowsKeepHighestRevision feeds emissions of the same windows in
// scrambled revision order, within and across batches: check_windows
// ends with the highest revision of each.
func TestWindowsKeepHighestRevision(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 2, topicWindow, topicDLQ)
	store := openStore(t)
	const group = "sink-windows"
	revs := []int64{2, 0, 3, 1} // emission order of every window's revisions
	var recs []*kgo.Record
	for _, rev := range revs {
		for _, u := range sites[:3] {
			for w := range 4 {
				start := base.Add(time.Duration(w) * 5 * time.Minute)
				win := &codecs.Window{URL: u, WindowStart: start, WindowEnd: start.Add(5 * time.Minute),
					Checks: rev + 1, Responses: rev + 1, ResponseAvgMS: ptr(10.0),
					StatusCounts: map[string]int64{"200": rev + 1}, Revision: rev}
				b, err := codecs.WindowCodec{}.Encode(win)
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, &kgo.Record{Topic: topicWindow, Key: []byte(u), Value: b})
			}
		}
	}
	recs = append(recs, &kgo.Record{Topic: topicWindow, Key: []byte(sites[0]), Value: []byte(`{"v":1}`)})
	k.produce(recs...)

	r := startSink(t, k, sinks.Config{Group: group, Topics: []string{topicWindow}, Kind: sinks.Windows, BatchSize: 7}, store)
	k.waitCommitted(group, topicWindow)
	rows, err := store.DB().Query("SELECT url, window_start, revision, checks FROM check_windows")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			url, start      string
			revision, check int64
		)
		if err := rows.Scan(&url, &start, &revision, &check); err != nil {
			t.Fatal(err)
		}
		n++
		if revision != 3 || check != 4 {
			t.Errorf("window %s %s: revision %d checks %d, want the last revision 3 with 4 checks", url, start, revision, check)
		}
	}
	if n != 12 {
		t.Errorf("windows stored = %d, want 12", n)
	}
	dls := k.deadLetters()
	if len(dls) != 1 || !strings.HasPrefix(dls[0].Reason, "decode window:") {
		t.Errorf("dead letters = %+v, want the one undecodable window", dls)
	}
	if got := r.metric(t, "sitewatch_sink_events_consumed_total", "sink", "windows"); got != float64(len(recs)) {
		t.Errorf("consumed = %v, want %d", got, len(recs))
	}
}

// TestRebalance runs two sinks in one group while events arrive: the
// second joins mid-stream and the first leaves mid-stream. Every event is
// stored exactly once and both sinks took part.
func TestRebalance(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 4, topicUp, topicDown, topicDLQ)
	store := openStore(t)
	const group = "sink-rebalance"
	cfg := sinks.Config{Group: group, Topics: []string{topicUp, topicDown}, Kind: sinks.Results, BatchSize: 10}
	want := map[string]bool{}
	produce := func(from, to int) {
		for i := from; i < to; i += 10 {
			var recs []*kgo.Record
			for j := i; j < min(i+10, to); j++ {
				rec, id := resultRecord(t, j)
				want[id] = true
				recs = append(recs, rec)
			}
			k.produce(recs...)
			time.Sleep(5 * time.Millisecond)
		}
	}

	n := 0 // events produced
	more := func(count int) { produce(n, n+count); n += count }

	a := startSink(t, k, cfg, store)
	more(150)
	waitFor(t, "sink A to consume", func() bool { return a.metric(t, "sitewatch_sink_events_consumed_total") > 0 })
	b := startSink(t, k, cfg, store)
	more(150)
	// Events keep coming until B has some: A may have consumed all
	// the earlier ones before the rebalance gave B its partitions.
	waitFor(t, "sink B to get partitions", func() bool {
		if b.metric(t, "sitewatch_sink_events_consumed_total") > 0 {
			return true
		}
		more(10)
		return false
	})
	more(100)
	a.stop(t)
	more(100)
	k.waitCommitted(group, topicUp, topicDown)
	assertExactlyOnce(t, store, want)
	if len(want) != n {
		t.Fatalf("produced %d distinct events, want %d", len(want), n)
	}
}

// TestShutdownFlushesBatchInHand stops a sink whose batch is neither full
// nor due: what it consumed is written and committed before Run returns.
func TestShutdownFlushesBatchInHand(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 1, topicUp, topicDown, topicDLQ)
	store := openStore(t)
	const group = "sink-shutdown"
	want := map[string]bool{}
	for i := range 10 {
		rec, id := resultRecord(t, 2*i) // even: status_request_succeeded
		want[id] = true
		k.produce(rec)
	}
	r := startSink(t, k, sinks.Config{Group: group, Topics: []string{topicUp, topicDown}, Kind: sinks.Results,
		BatchSize: 1000, FlushInterval: time.Hour}, store)
	waitFor(t, "10 events consumed", func() bool { return r.metric(t, "sitewatch_sink_events_consumed_total") == 10 })
	if n := len(storedEventIDs(t, store)); n != 0 {
		t.Fatalf("%d rows written before the batch was full or due", n)
	}
	r.stop(t)
	assertExactlyOnce(t, store, want)
	ends := k.endOffsets(topicUp, topicDown)
	if got := k.committed(group, ends); !equalOffsets(got, map[tp]int64{{topicUp, 0}: 10, {topicDown, 0}: -1}) {
		t.Errorf("committed after shutdown = %v, want %s/0 at 10", got, topicUp)
	}
}

// TestCaughtUpPartitionFlushesEarly: a partition whose backlog is read to
// its end writes the partial batch at once rather than after the flush
// interval (an hour here), provided it holds a quarter of a batch; the
// shutdown test above shows that a smaller one still waits.
func TestCaughtUpPartitionFlushesEarly(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 1, topicUp, topicDown, topicDLQ)
	store := openStore(t)
	const group = "sink-caught-up"
	want := map[string]bool{}
	for i := range 300 {
		rec, id := resultRecord(t, 2*i)
		want[id] = true
		k.produce(rec)
	}
	r := startSink(t, k, sinks.Config{Group: group, Topics: []string{topicUp, topicDown}, Kind: sinks.Results,
		BatchSize: 1000, FlushInterval: time.Hour}, store)
	defer r.stop(t)
	waitFor(t, "300 rows written", func() bool { return len(storedEventIDs(t, store)) == 300 })
	assertExactlyOnce(t, store, want)
	ends := k.endOffsets(topicUp, topicDown)
	waitFor(t, "offsets committed", func() bool {
		return equalOffsets(k.committed(group, ends), map[tp]int64{{topicUp, 0}: 300, {topicDown, 0}: -1})
	})
}

// TestBacklogTailFlushesAtOnce: the last batch of a backlog is written as
// soon as the partition is read to its end, however small: here 1,100
// events with batches of 1,000 leave 100, below the quarter batch that a
// live trickle waits for, and the flush interval is an hour.
func TestBacklogTailFlushesAtOnce(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 1, topicUp, topicDown, topicDLQ)
	store := openStore(t)
	want := k.produceSucceeded(1100)
	r := startSink(t, k, sinks.Config{Group: "sink-backlog-tail", Topics: []string{topicUp, topicDown}, Kind: sinks.Results,
		BatchSize: 1000, FlushInterval: time.Hour}, store)
	defer r.stop(t)
	waitFor(t, "1100 rows written", func() bool { return len(storedEventIDs(t, store)) == 1100 })
	assertExactlyOnce(t, store, want)
}

// A claim goes on storing while its offsets are being committed. Kafka
// answers a connection's requests in order, and sarama sends a group's
// commits on the connection it fetches on: once a backlog is fetched, a
// commit waits behind a fetch that waits for new messages (up to
// Consumer.MaxWaitTime). A claim that waited for each commit stored a
// backlog's last batches half a second apart (bench/processor). Here every
// commit is held until all rows are stored (or 20 s): the rows are
// fetched in one response, so nothing but a wait for a commit can hold
// them up.
func TestClaimsDoNotWaitForTheirCommits(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 1, topicUp, topicDown, topicDLQ)
	store := openStore(t)
	want := k.produceSucceeded(500)
	stored := make(chan struct{})
	var held atomic.Int32
	k.cluster.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.cluster.KeepControl()
		held.Add(1)
		k.cluster.SleepControl(func() {
			select {
			case <-stored:
			case <-time.After(20 * time.Second):
			}
		})
		return nil, nil, false
	})
	const group = "sink-commit-held"
	r := startSink(t, k, sinks.Config{Group: group, Topics: []string{topicUp, topicDown}, Kind: sinks.Results, BatchSize: 25}, store)
	defer r.stop(t)
	waitFor(t, "500 rows written while the commits are held", func() bool { return len(storedEventIDs(t, store)) == 500 })
	close(stored)
	t.Logf("%d commits held while the rows were written", held.Load())
	assertExactlyOnce(t, store, want)
	// The offsets still get there.
	k.waitCommitted(group, topicUp, topicDown)
}

func TestNewRejectsBadConfig(t *testing.T) {
	store := &flakyStore{}
	ok := sinks.Config{Brokers: []string{"localhost:9092"}, Group: "g", Topics: []string{"t"}, Kind: sinks.Results, DeadLetterTopic: "dlq"}
	if _, err := sinks.New(ok, store); err != nil {
		t.Fatalf("New(valid config) = %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*sinks.Config)
		store sinks.Store
		want  string
	}{
		{"no brokers", func(c *sinks.Config) { c.Brokers = nil }, store, "no brokers"},
		{"no group", func(c *sinks.Config) { c.Group = "" }, store, "no consumer group"},
		{"no topics", func(c *sinks.Config) { c.Topics = nil }, store, "no topics"},
		{"no kind", func(c *sinks.Config) { c.Kind = 0 }, store, "unknown kind"},
		{"no dead-letter topic", func(c *sinks.Config) { c.DeadLetterTopic = "" }, store, "no dead-letter topic"},
		{"negative batch", func(c *sinks.Config) { c.BatchSize = -1 }, store, "batch size -1"},
		{"backoff inverted", func(c *sinks.Config) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }, store, "backoff max"},
		{"no store", func(*sinks.Config) {}, nil, "no store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := sinks.New(cfg, tc.store)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestDeadLetterTopicUnavailable: while a dead letter cannot be produced,
// the offsets of its batch are not committed (the message would otherwise
// be lost); once the topic exists, it is produced and the batch commits.
func TestDeadLetterTopicUnavailable(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 1, topicUp, topicDown) // no dead-letter topic yet
	store := openStore(t)
	const group = "sink-dlq-down"
	rec, id := resultRecord(t, 0)
	k.produce(rec, &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: []byte("garbage")})
	r := startSink(t, k, sinks.Config{Group: group, Topics: []string{topicUp, topicDown}, Kind: sinks.Results,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, store)

	waitFor(t, "the valid row to be stored", func() bool { return len(storedEventIDs(t, store)) == 1 })
	time.Sleep(300 * time.Millisecond) // several dead-letter attempts
	ends := k.endOffsets(topicUp, topicDown)
	if got := k.committed(group, ends)[tp{rec.Topic, 0}]; got != -1 {
		t.Fatalf("committed %d before the dead letter was produced", got)
	}
	if got := r.metric(t, "sitewatch_sink_dead_letters_total"); got != 0 {
		t.Fatalf("dead letters counted = %v before any was produced", got)
	}

	if err := k.admin.CreateTopic(topicDLQ, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create %s: %v", topicDLQ, err)
	}
	k.waitCommitted(group, topicUp, topicDown)
	dls := k.deadLetters()
	if len(dls) != 1 || string(dls[0].Value) != "garbage" || dls[0].Offset != 1 {
		t.Fatalf("dead letters = %+v, want the garbage message at offset 1", dls)
	}
	assertExactlyOnce(t, store, map[string]bool{id: true})
}

// TestDeadLetterMetricExportedAtZero: both dead-letter series exist from
// the start, so that an alert on their rate works before the first one.
func TestDeadLetterMetricExportedAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := sinks.Config{Brokers: []string{"127.0.0.1:1"}, Group: "g", Topics: []string{"t"}, Kind: sinks.Results,
		DeadLetterTopic: "dlq", Registerer: reg}
	if _, err := sinks.New(cfg, &flakyStore{}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "sitewatch_sink_dead_letters_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && m.GetCounter().GetValue() == 0 {
					reasons[lp.GetValue()] = true
				}
			}
		}
	}
	if !reasons["decode"] || !reasons["rejected"] {
		t.Errorf("sitewatch_sink_dead_letters_total at 0 for reasons %v, want decode and rejected", reasons)
	}
}

// TestIncidentsFromChanges: the incidents sink opens an incident with a
// down change and closes it with the up change, once however often the
// changes are delivered; the open-incidents gauge follows.
func TestIncidentsFromChanges(t *testing.T) {
	t.Parallel()
	const topicChanges = "status_changes"
	k := newKafka(t, 2, topicChanges, topicDLQ)
	store := openStore(t)
	const group = "sink-incidents"
	site := sites[0]
	change := func(id, kind string, since time.Time) *kgo.Record {
		c := &codecs.StatusChange{ChangeID: id, URL: site, Kind: kind, State: kind, PreviousState: codecs.StateUp,
			Since: since, ChangedAt: since.Add(2 * time.Minute), Consecutive: 3, EventID: "e-" + id}
		if kind == codecs.ChangeUp {
			c.PreviousState = codecs.StateDown
		}
		b, err := codecs.StatusChangeCodec{}.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: topicChanges, Key: []byte(site), Value: b}
	}
	down := change("c1", codecs.ChangeDown, base)
	k.produce(down, change("c1", codecs.ChangeDown, base), &kgo.Record{Topic: topicChanges, Key: []byte(site), Value: []byte(`{"v":1}`)})
	r := startChangesSink(t, k, sinks.Config{Group: group, Topics: []string{topicChanges}, Name: "incidents"}, store)
	k.waitCommitted(group, topicChanges)
	if got := r.metric(t, "sitewatch_incidents_open"); got != 1 {
		t.Errorf("open incidents gauge = %v, want 1", got)
	}
	k.produce(change("c2", codecs.ChangeUp, base.Add(10*time.Minute)), change("c1", codecs.ChangeDown, base))
	k.waitCommitted(group, topicChanges)
	var n, open int
	if err := store.DB().QueryRow("SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL) FROM incidents").Scan(&n, &open); err != nil {
		t.Fatal(err)
	}
	if n != 1 || open != 0 {
		t.Errorf("incidents: %d rows, %d open; want one, closed", n, open)
	}
	if got := r.metric(t, "sitewatch_incidents_open"); got != 0 {
		t.Errorf("open incidents gauge = %v, want 0", got)
	}
	if dls := k.deadLetters(); len(dls) != 1 || !strings.HasPrefix(dls[0].Reason, "decode status change:") {
		t.Errorf("dead letters = %+v, want the one undecodable change", dls)
	}
}
