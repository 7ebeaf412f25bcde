package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
)

// BenchmarkWriteResults measures the store alone: batches of 1000 new
// results in one transaction each. It reports rows/s.
func BenchmarkWriteResults(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]*codecs.Result, 1000)
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = upResult(fmt.Sprintf("ev-%09d", n), t0.Add(time.Duration(n)*time.Millisecond))
			n++
		}
		if _, err := s.WriteResults(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
