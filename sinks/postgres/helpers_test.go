package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// testCtx is a per-test deadline, so that a stuck lock fails the test
// instead of hanging the suite.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	limit := 30 * time.Second
	if _, bench := t.(*testing.B); bench {
		limit = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	if _, bench := t.(*testing.B); bench {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// migratedStore returns a fresh, migrated database's URL and a Store on it.
func migratedStore(t testing.TB, opts Options) (string, *Store) {
	t.Helper()
	url := testkit.Postgres(t)
	ctx := testCtx(t)
	if err := Migrate(ctx, url, testLogger(t)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return url, s
}

// connect opens a plain connection for the test's own queries.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryInt(t testing.TB, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }

// upResult is a successful check of url at checkedAt.
func upResult(id, url string, checkedAt time.Time, ms float64) *codecs.Result {
	return &codecs.Result{
		V: codecs.Version, EventID: id, URL: url,
		ScheduledAt: checkedAt.Add(-time.Second), CheckedAt: checkedAt,
		Outcome: codecs.OutcomeUp, StatusCode: 200,
		ResponseTimeMS: ptr(ms), DNSMS: ptr(1.5), ConnectMS: ptr(2.25), TLSMS: nil,
		TTFBMS: ptr(ms - 1), TransferMS: ptr(0.5), BodyBytes: 1234,
		Checker: "checker-1",
	}
}

// downResult is a failed check that got no response.
func downResult(id, url string, checkedAt time.Time) *codecs.Result {
	return &codecs.Result{
		V: codecs.Version, EventID: id, URL: url,
		ScheduledAt: checkedAt, CheckedAt: checkedAt,
		Outcome: codecs.OutcomeDown, StatusCode: 0,
		ErrorKind: ptr(codecs.ErrConnect), ErrorMessage: ptr("connection refused"),
		Checker: "checker-2",
	}
}

// results makes n valid results spread over a few minutes after start.
func results(prefix string, n int, start time.Time) []*codecs.Result {
	rs := make([]*codecs.Result, n)
	for i := range rs {
		at := start.Add(time.Duration(i) * 250 * time.Millisecond)
		url := fmt.Sprintf("https://site%d.example/", i%7)
		if i%5 == 4 {
			rs[i] = downResult(fmt.Sprintf("%s-%d", prefix, i), url, at)
		} else {
			rs[i] = upResult(fmt.Sprintf("%s-%d", prefix, i), url, at, float64(10+i%40))
		}
	}
	return rs
}

// window is a valid window of url starting at start.
func window(url string, start time.Time, revision int64, checks int64) *codecs.Window {
	return &codecs.Window{
		V: codecs.Version, URL: url, WindowStart: start, WindowEnd: start.Add(5 * time.Minute),
		Checks: checks, Failures: 0, Responses: checks,
		ResponseMinMS: ptr(10.0), ResponseAvgMS: ptr(20.0), ResponseMaxMS: ptr(30.0),
		ResponseP50MS: ptr(20.0), ResponseP95MS: ptr(29.0), ResponseP99MS: ptr(30.0),
		StatusCounts: map[string]int64{"200": checks},
		Revision:     revision,
	}
}
