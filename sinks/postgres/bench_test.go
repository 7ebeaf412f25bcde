package postgres

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
)

const benchBatch = 1000

// benchResults makes the i-th batch of distinct results within one day.
func benchResults(i int) []*codecs.Result {
	rs := results(fmt.Sprintf("b%d", i), benchBatch, t0.Add(time.Duration(i)*time.Second))
	for j, r := range rs {
		r.URL = fmt.Sprintf("https://site%04d.example.com/path", j%500)
	}
	return rs
}

// BenchmarkWriteResults is the sink's path: staging COPY, INSERT ... ON
// CONFLICT DO NOTHING, one transaction per batch of 1000.
func BenchmarkWriteResults(b *testing.B) {
	_, s := migratedStore(b, Options{})
	ctx := testCtx(b)
	if err := s.MaintainPartitions(ctx, t0, 1, 0); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		rs := benchResults(i)
		i++
		b.StartTimer()
		if rej, err := s.WriteResults(ctx, rs); err != nil || len(rej) != 0 {
			b.Fatal(rej, err)
		}
	}
	b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPlainCopy is the floor: a bare COPY of the same rows straight
// into check_results, without idempotency or rejection handling.
func BenchmarkPlainCopy(b *testing.B) {
	_, s := migratedStore(b, Options{})
	ctx := testCtx(b)
	if err := s.MaintainPartitions(ctx, t0, 1, 0); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		rs := benchResults(i)
		i++
		b.StartTimer()
		src := pgx.CopyFromSlice(len(rs), func(k int) ([]any, error) {
			r := rs[k]
			return []any{r.EventID, r.URL, r.ScheduledAt, r.CheckedAt, r.Outcome, int16(r.StatusCode),
				r.ResponseTimeMS, r.DNSMS, r.ConnectMS, r.TLSMS, r.TTFBMS, r.TransferMS,
				r.BodyBytes, r.Regexp, r.RegexpMatched, r.ErrorKind, r.ErrorMessage, r.Checker,
				r.TLSNotAfter, codecs.RegionOrDefault(r.Region)}, nil
		})
		if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"check_results"}, strings.Fields(strings.ReplaceAll(resultColumnList, ",", " ")), src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "rows/s")
}
