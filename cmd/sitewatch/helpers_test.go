package main

import (
	"github.com/sitewatch/sitewatch/internal/testkit"

	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

// syncBuffer collects a program's output safely across goroutines.
type syncBuffer = testkit.SyncBuffer

// site is one local website of the fixture and what its checks must say.
type site struct {
	url    string
	up     bool
	kind   string // error_kind when down
	noResp bool   // no response arrives (connection refused)
	hits   *atomic.Int64
}

// sitesFixture starts local websites of every kind the table and the
// windows must handle, and writes a sites file checking each every second:
// up with varied response times, a 503, a regexp that does not match, one
// that does, and a port where nothing listens.
func sitesFixture(t *testing.T) (path string, sites []site) {
	t.Helper()
	serve := func(status int, body string, jitter bool) (string, *atomic.Int64) {
		hits := new(atomic.Int64)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			if jitter {
				time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
			}
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL, hits
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	var b strings.Builder
	b.WriteString("defaults:\n  interval: 1s\n  timeout: 900ms\nsites:\n")
	add := func(s site, extra string) {
		sites = append(sites, s)
		fmt.Fprintf(&b, "  - url: %s\n%s", s.url, extra)
	}
	u, h := serve(200, "all good", true)
	add(site{url: u + "/fast", up: true, hits: h}, "    name: fast and fine\n")
	u, h = serve(503, "maintenance", false)
	add(site{url: u + "/", kind: codecs.ErrStatus, hits: h}, "")
	u, h = serve(200, "<html>hello</html>", false)
	add(site{url: u + "/rx-miss", kind: codecs.ErrRegexp, hits: h}, "    regexp: \"never-there\"\n")
	u, h = serve(200, "<html>status: OK</html>", true)
	add(site{url: u + "/rx-hit", up: true, hits: h}, "    regexp: \"status: (OK|fine)\"\n")
	add(site{url: closed.URL + "/", kind: codecs.ErrConnect, noResp: true, hits: new(atomic.Int64)}, "    name: nothing listens here\n")

	path = filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, sites
}

// startSitewatch runs the real program in a goroutine; stop cancels its
// context, as SIGINT does, and returns its exit status.
func startSitewatch(t *testing.T, args ...string) (stop func() int, stdout, stderr *syncBuffer) {
	t.Helper()
	if !slices.Contains(args, "-kafka-listen") && !slices.Contains(args, "-brokers") {
		// Never the default 9092: a developer's Kafka may be there, and
		// parallel tests would take it from each other.
		args = append(args, "-kafka-listen", "127.0.0.1:0")
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	if !slices.Contains(args, "-http-addr") {
		// Never the default 127.0.0.1:8080: tests run side by side.
		args = append([]string{"-http-addr", "127.0.0.1:0"}, args...)
	}
	go func() { done <- run(ctx, args, stdout, stderr) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(90 * time.Second):
				t.Fatalf("sitewatch did not stop within 90s; logs:\n%s", stderr.String())
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stop, stdout, stderr
}

// rawResult is a check_results row.
type rawResult struct {
	EventID     string
	URL         string
	ScheduledAt time.Time
	CheckedAt   time.Time
	Outcome     string
	StatusCode  int
	ResponseMS  *float64
	ErrorKind   *string
}

// windowRow is a check_windows row.
type windowRow struct {
	URL                       string
	Start, End                time.Time
	Checks, Failures          int64
	Responses, RegexpFailures int64
	MinMS, AvgMS, MaxMS       *float64
	P50MS, P95MS, P99MS       *float64
	// Exact is percentiles_exact.
	Exact        bool
	StatusCounts map[string]int64
	Revision     int64
}

// dbTime scans a timestamp from PostgreSQL (time.Time) or SQLite (RFC
// 3339 text).
type dbTime struct{ t *time.Time }

func (d dbTime) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*d.t = x.UTC()
		return nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		*d.t = t.UTC()
		return err
	case []byte:
		return d.Scan(string(x))
	}
	return fmt.Errorf("timestamp of type %T", v)
}

// store reads the tables through database/sql, the same queries on both
// backends.
type store struct {
	db *sql.DB
}

func openStore(t *testing.T, driver, dsn string) *store {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &store{db: db}
}

func (s *store) results(t *testing.T) []rawResult {
	t.Helper()
	rows, err := s.db.Query(`SELECT event_id, url, scheduled_at, checked_at, outcome, status_code, response_time_ms, error_kind FROM check_results`)
	if err != nil {
		t.Fatalf("read check_results: %v", err)
	}
	defer rows.Close()
	var out []rawResult
	for rows.Next() {
		var r rawResult
		if err := rows.Scan(&r.EventID, &r.URL, dbTime{&r.ScheduledAt}, dbTime{&r.CheckedAt}, &r.Outcome, &r.StatusCode, &r.ResponseMS, &r.ErrorKind); err != nil {
			t.Fatalf("scan check_results: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read check_results: %v", err)
	}
	return out
}

// windows returns the check_windows rows.
func (s *store) windows(t *testing.T) []windowRow {
	t.Helper()
	ws, err := s.tryWindows()
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// tryWindows reads check_windows, failing while the program has not
// created the database yet.
func (s *store) tryWindows() ([]windowRow, error) {
	rows, err := s.db.Query(`SELECT url, window_start, window_end, checks, failures, responses, regexp_failures,
		response_min_ms, response_avg_ms, response_max_ms, response_p50_ms, response_p95_ms, response_p99_ms,
		CAST(status_counts AS TEXT), revision, percentiles_exact FROM check_windows`)
	if err != nil {
		return nil, fmt.Errorf("read check_windows: %w", err)
	}
	defer rows.Close()
	var out []windowRow
	for rows.Next() {
		var w windowRow
		var counts string
		if err := rows.Scan(&w.URL, dbTime{&w.Start}, dbTime{&w.End}, &w.Checks, &w.Failures, &w.Responses, &w.RegexpFailures,
			&w.MinMS, &w.AvgMS, &w.MaxMS, &w.P50MS, &w.P95MS, &w.P99MS, &counts, &w.Revision, &w.Exact); err != nil {
			return nil, fmt.Errorf("scan check_windows: %w", err)
		}
		if err := json.Unmarshal([]byte(counts), &w.StatusCounts); err != nil {
			return nil, fmt.Errorf("status_counts %q: %w", counts, err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// kafkaEventIDs reopens the embedded Kafka's data directory once the
// program has stopped and returns the event_id of every result it holds.
func kafkaEventIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("reopen embedded kafka: %v", err)
	}
	defer c.Close()
	tp := (&kafkaconn.Options{}).Topics()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics(string(tp.Succeeded), string(tp.Failed)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ids := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Poll until a fetch comes back empty after the deadline-free reads:
	// the topics are closed, so their end is fixed.
	idle := 0
	for idle < 3 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			res, err := codecs.DecodeResult(r.Value)
			if err != nil {
				t.Errorf("undecodable result in kafka: %v", err)
				return
			}
			ids[res.EventID]++
		})
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return ids
}

// recompute is what a window must hold, from the raw rows.
func recompute(rs []rawResult) windowRow {
	w := windowRow{StatusCounts: map[string]int64{}}
	var resp []float64
	var sum float64
	for _, r := range rs {
		w.Checks++
		if r.Outcome == codecs.OutcomeDown {
			w.Failures++
		}
		if r.ErrorKind != nil && *r.ErrorKind == codecs.ErrRegexp {
			w.RegexpFailures++
		}
		w.StatusCounts[fmt.Sprint(r.StatusCode)]++
		if r.ResponseMS != nil {
			resp = append(resp, *r.ResponseMS)
			sum += *r.ResponseMS
		}
	}
	w.Responses = int64(len(resp))
	if len(resp) > 0 {
		sort.Float64s(resp)
		mn, mx, avg := resp[0], resp[len(resp)-1], sum/float64(len(resp))
		w.MinMS, w.MaxMS, w.AvgMS = &mn, &mx, &avg
		p50, p95, p99 := percentileCont(resp, 0.5), percentileCont(resp, 0.95), percentileCont(resp, 0.99)
		w.P50MS, w.P95MS, w.P99MS = &p50, &p95, &p99
	}
	return w
}

// percentileCont is PostgreSQL's percentile_cont over sorted values.
func percentileCont(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + (pos-float64(lo))*(sorted[lo+1]-sorted[lo])
}
