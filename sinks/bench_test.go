package sinks_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/sinks"
)

// BenchmarkSinkResults measures the whole loop, Kafka (kfake, in-process)
// to SQLite (a file in a temp dir) with offsets committed, for b.N result
// events over both result topics (3 partitions each), at the default
// batch size. It reports rows/s.
func BenchmarkSinkResults(b *testing.B) {
	k := newKafka(b, 3, topicUp, topicDown, topicDLQ)
	store := openStore(b)
	var recs []*kgo.Record
	for i := range b.N {
		rec, _ := resultRecord(b, i)
		recs = append(recs, rec)
		if len(recs) == 5000 {
			k.produce(recs...)
			recs = recs[:0]
		}
	}
	k.produce(recs...)

	b.ResetTimer()
	start := time.Now()
	r := startSink(b, k, sinks.Config{Group: "bench", Topics: []string{topicUp, topicDown}, Kind: sinks.Results}, store)
	k.waitCommitted("bench", topicUp, topicDown)
	elapsed := time.Since(start)
	b.StopTimer()
	r.stop(b)
	if n := len(storedEventIDs(b, store)); n != b.N {
		b.Fatalf("stored %d rows, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
}
