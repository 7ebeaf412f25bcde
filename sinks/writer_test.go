package sinks_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks"
)

// partitionsOf maps each URL (the record key) to its partition, from
// produced records.
func partitionsOf(recs []*kgo.Record) map[string]int32 {
	out := map[string]int32{}
	for _, r := range recs {
		out[string(r.Key)] = r.Partition
	}
	return out
}

// gatedStore holds every write until open is closed, and records the
// partitions of each write's rows, and how many writes of one partition
// were in the store at once.
type gatedStore struct {
	sinks.Store
	open      chan struct{}
	partition map[string]int32
	hold      time.Duration

	mu         sync.Mutex
	calls      [][]int32 // the distinct partitions of each write
	inFlight   map[int32]int
	maxInStore int // most writes of one partition in the store at once
}

func (g *gatedStore) WriteResults(ctx context.Context, rs []*codecs.Result) ([]sinks.Rejected, error) {
	parts := map[int32]bool{}
	for _, r := range rs {
		parts[g.partition[r.URL]] = true
	}
	var ps []int32
	g.mu.Lock()
	for p := range parts {
		ps = append(ps, p)
		g.inFlight[p]++
		g.maxInStore = max(g.maxInStore, g.inFlight[p])
	}
	g.calls = append(g.calls, ps)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		for _, p := range ps {
			g.inFlight[p]--
		}
		g.mu.Unlock()
	}()
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	time.Sleep(g.hold) // widens the window for two writes of one partition to meet
	return g.Store.WriteResults(ctx, rs)
}

// TestWriterOverlapsAndGathers: while the store holds a write, each claim
// goes on decoding its next batch, and only one (back-pressure: the
// backlog stays in Kafka); the batches of several partitions that are due
// meanwhile go to the store in one write.
func TestWriterOverlapsAndGathers(t *testing.T) {
	t.Parallel()
	const partitions, perPartition, batch = 4, 50, 10
	k := newKafka(t, partitions, topicUp, topicDown, topicDLQ)
	want := map[string]bool{}
	var recs []*kgo.Record
	for i := 0; len(recs) < partitions*perPartition*2; i += 2 { // even: status_request_succeeded
		rec, id := resultRecord(t, i)
		want[id] = true
		recs = append(recs, rec)
	}
	recs = k.produce(recs...)
	count := map[int32]int{}
	for _, r := range recs {
		count[r.Partition]++
	}
	if len(count) != partitions {
		t.Fatalf("events in %d partitions, want %d", len(count), partitions)
	}
	db := openStore(t)
	store := &gatedStore{Store: db, open: make(chan struct{}), partition: partitionsOf(recs), inFlight: map[int32]int{}}
	r := startSink(t, k, sinks.Config{Group: "sink-overlap", Topics: []string{topicUp, topicDown}, Kind: sinks.Results,
		BatchSize: batch, FlushInterval: time.Hour, Writers: 1}, store)

	// Every claim has one batch in the writer and reads one more: two
	// batches each, no more, while nothing is written.
	inHand := float64(partitions * 2 * batch)
	waitFor(t, "two batches per partition consumed while the store holds the first write", func() bool {
		return r.metric(t, "sitewatch_sink_events_consumed_total") == inHand
	})
	time.Sleep(200 * time.Millisecond)
	if got := r.metric(t, "sitewatch_sink_events_consumed_total"); got != inHand {
		t.Fatalf("consumed %v events while the store was held, want %v (one batch in the writer and one in hand per partition)", got, inHand)
	}
	if n := len(storedEventIDs(t, db)); n != 0 {
		t.Fatalf("%d rows stored while the store was held", n)
	}
	close(store.open)
	k.waitCommitted("sink-overlap", topicUp, topicDown)
	assertExactlyOnce(t, db, want)

	store.mu.Lock()
	defer store.mu.Unlock()
	most := 0
	for _, ps := range store.calls {
		most = max(most, len(ps))
	}
	if most < 2 {
		t.Errorf("every write held one partition's batch (%d writes); want the due batches of several partitions gathered into one", len(store.calls))
	}
}

// TestPartitionOrderWithParallelWriters: with several writes in flight,
// the batches of one partition still go to the store one at a time, in
// offset order, so that of two emissions of one event in a partition the
// first is the one stored (as the windows processor counts it).
func TestPartitionOrderWithParallelWriters(t *testing.T) {
	t.Parallel()
	k := newKafka(t, 2, topicUp, topicDown, topicDLQ)
	want := map[string]bool{}
	var recs []*kgo.Record
	firstChecked := map[string]time.Time{}
	for i := 0; i < 400; i += 2 {
		rec, id := resultRecord(t, i)
		want[id] = true
		recs = append(recs, rec)
	}
	// The same events again, checked later: in later batches of the same
	// partitions.
	for i := 0; i < 400; i += 20 {
		rec, id := resultRecord(t, i)
		r, err := codecs.DecodeResult(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		firstChecked[id] = r.CheckedAt
		r.CheckedAt = r.CheckedAt.Add(time.Minute)
		if rec.Value, err = (codecs.ResultCodec{}).Encode(r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	recs = k.produce(recs...)
	db := openStore(t)
	store := &gatedStore{Store: db, open: make(chan struct{}), partition: partitionsOf(recs), inFlight: map[int32]int{}, hold: 5 * time.Millisecond}
	close(store.open)
	startSink(t, k, sinks.Config{Group: "sink-order", Topics: []string{topicUp, topicDown}, Kind: sinks.Results,
		BatchSize: 5, WriteRows: 5, Writers: 4}, store)
	k.waitCommitted("sink-order", topicUp, topicDown)
	assertExactlyOnce(t, db, want)
	store.mu.Lock()
	if store.maxInStore > 1 {
		t.Errorf("%d writes of one partition were in the store at once, want one at a time", store.maxInStore)
	}
	store.mu.Unlock()
	for id, at := range firstChecked {
		var got string
		if err := db.DB().QueryRow("SELECT checked_at FROM check_results WHERE event_id = ?", id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		stored, err := time.Parse(time.RFC3339Nano, got)
		if err != nil {
			t.Fatalf("checked_at %q: %v", got, err)
		}
		if !stored.Equal(at) {
			t.Errorf("event %s stored with checked_at %s, want the first emission's %s", id, stored, at)
		}
	}
}
