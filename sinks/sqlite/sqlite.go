package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	msqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// timeLayout is RFC 3339 with a fixed nine-digit fraction. Go's
// RFC3339Nano drops trailing zeros, which makes "…:05Z" sort after
// "…:05.5Z"; a fixed width keeps text order equal to time order.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// busyTimeout is how long a writer waits for another connection's write
// transaction (the results and windows sinks share the file) before the
// batch fails and the sink retries it.
const busyTimeout = 10 * time.Second

// Store is the SQLite implementation of sinks.Store.
type Store struct {
	db     *sql.DB
	logger *slog.Logger
	// writer admits one write transaction at a time. SQLite has a single
	// writer anyway; queueing here instead of in its busy handler, which
	// polls with sleeps of up to 100 ms, keeps concurrent sinks (one per
	// partition claim) from idling while the lock is free.
	writer chan struct{}
}

var _ sinks.IncidentStore = (*Store)(nil)

// Open opens (creating it if needed) the SQLite database at path and
// brings its schema up to date.
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	// The driver splits the DSN at the first '?', so a path with one would
	// be silently truncated.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite %s: path must not contain '?'", path)
	}
	// _txlock=immediate takes the write lock at BEGIN, so two writers queue
	// on busy_timeout instead of one failing with SQLITE_BUSY when it
	// upgrades a read transaction.
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		path, busyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := migrateUp(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	logger.Info("sqlite store open", "path", path)
	return &Store{db: db, logger: logger, writer: make(chan struct{}, 1)}, nil
}

func migrateUp(db *sql.DB) error {
	src, err := iofs.New(migrationsFS, "migrations")
	if err != nil {
		return fmt.Errorf("read embedded migrations: %w", err)
	}
	defer src.Close()
	drv, err := msqlite.WithInstance(db, &msqlite.Config{})
	if err != nil {
		return fmt.Errorf("migration driver: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// m.Close is not called: it would close db, which the Store keeps.
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return nil
}

// DB gives read access to the database, for status pages and tests. Write
// through WriteResults and WriteWindows only.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close sqlite: %w", err)
	}
	return nil
}

const insertResult = `INSERT INTO check_results (
	event_id, url, scheduled_at, checked_at, outcome, status_code,
	response_time_ms, dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms,
	body_bytes, regexp, regexp_matched, error_kind, error_message, checker,
	tls_not_after, region
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (event_id) DO NOTHING`

// WriteResults stores rs in one transaction. Results already stored (same
// event_id) are left as they are. Rows that break a constraint are
// returned as rejected and the others are written; an error means nothing
// was written.
func (s *Store) WriteResults(ctx context.Context, rs []*codecs.Result) ([]sinks.Rejected, error) {
	return s.write(ctx, "results", len(rs), func(i int) (string, []any, string) {
		r := rs[i]
		if r == nil {
			return "", nil, "nil result"
		}
		return insertResult, []any{
			r.EventID, r.URL, formatTime(r.ScheduledAt), formatTime(r.CheckedAt), r.Outcome, r.StatusCode,
			r.ResponseTimeMS, r.DNSMS, r.ConnectMS, r.TLSMS, r.TTFBMS, r.TransferMS,
			r.BodyBytes, r.Regexp, r.RegexpMatched, r.ErrorKind, r.ErrorMessage, r.Checker,
			formatTimePtr(r.TLSNotAfter), codecs.RegionOrDefault(r.Region),
		}, ""
	})
}

// upsertWindow replaces a stored window only with a higher revision: the
// windows processor re-emits a window with a higher revision when a late
// event changes it, and Kafka may deliver an older emission again. An
// equal revision leaves the stored row, as in PostgreSQL.
const upsertWindow = `INSERT INTO check_windows (
	url, window_start, window_end, checks, failures, responses,
	response_min_ms, response_avg_ms, response_max_ms,
	response_p50_ms, response_p95_ms, response_p99_ms, percentiles_exact,
	status_counts, regexp_failures, revision, region
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (url, region, window_start) DO UPDATE SET
	window_end = excluded.window_end,
	checks = excluded.checks,
	failures = excluded.failures,
	responses = excluded.responses,
	response_min_ms = excluded.response_min_ms,
	response_avg_ms = excluded.response_avg_ms,
	response_max_ms = excluded.response_max_ms,
	response_p50_ms = excluded.response_p50_ms,
	response_p95_ms = excluded.response_p95_ms,
	response_p99_ms = excluded.response_p99_ms,
	percentiles_exact = excluded.percentiles_exact,
	status_counts = excluded.status_counts,
	regexp_failures = excluded.regexp_failures,
	revision = excluded.revision
WHERE excluded.revision > check_windows.revision`

// WriteWindows upserts ws in one transaction, keeping for each (url,
// region, window_start) the highest revision seen. Rows that break a constraint
// are returned as rejected and the others are written; an error means
// nothing was written.
func (s *Store) WriteWindows(ctx context.Context, ws []*codecs.Window) ([]sinks.Rejected, error) {
	return s.write(ctx, "windows", len(ws), func(i int) (string, []any, string) {
		w := ws[i]
		if w == nil {
			return "", nil, "nil window"
		}
		c := w.StatusCounts
		if c == nil {
			c = map[string]int64{} // an object, never JSON null
		}
		counts, err := json.Marshal(c)
		if err != nil { // a map[string]int64 always encodes
			return "", nil, "encode status_counts: " + err.Error()
		}
		return upsertWindow, []any{
			w.URL, formatTime(w.WindowStart), formatTime(w.WindowEnd), w.Checks, w.Failures, w.Responses,
			w.ResponseMinMS, w.ResponseAvgMS, w.ResponseMaxMS,
			w.ResponseP50MS, w.ResponseP95MS, w.ResponseP99MS, w.PercentilesExact,
			string(counts), w.RegexpFailures, w.Revision, codecs.RegionOrDefault(w.Region),
		}, ""
	})
}

// openIncident and closeIncident keep incidents from status_changes, as in
// sinks/postgres (see there): a down opens one (a change seen before, or a
// second open incident for the URL, is skipped), the up that follows
// closes it, counting the period's failed checks stored in check_results.
const (
	openIncident = `INSERT INTO incidents (url, started_at, cause_kind, cause_message, failed_checks, down_change_id)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING`

	closeIncident = `UPDATE incidents SET
	ended_at = ?2,
	up_change_id = ?3,
	failed_checks = max(failed_checks, (SELECT count(*) FROM check_results r
		WHERE r.url = incidents.url AND r.outcome = 'down'
		AND r.checked_at >= incidents.started_at AND r.checked_at < ?2))
WHERE url = ?1 AND ended_at IS NULL AND started_at <= ?2`
)

// WriteChanges applies status changes to incidents in one transaction, in
// slice order; see sinks.IncidentStore. Changes of other kinds than down and up
// are accepted and change nothing.
func (s *Store) WriteChanges(ctx context.Context, cs []*codecs.StatusChange) ([]sinks.Rejected, error) {
	return s.write(ctx, "changes", len(cs), func(i int) (string, []any, string) {
		c := cs[i]
		if c == nil {
			return "", nil, "nil change"
		}
		switch c.Kind {
		case codecs.ChangeDown:
			return openIncident, []any{c.URL, formatTime(c.Since), c.ErrorKind, c.ErrorMessage, c.Consecutive, c.ChangeID}, ""
		case codecs.ChangeUp:
			return closeIncident, []any{c.URL, formatTime(c.Since), c.ChangeID}, ""
		}
		return "", nil, ""
	})
}

// OpenIncidents counts the incidents still open.
func (s *Store) OpenIncidents(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM incidents_open").Scan(&n); err != nil {
		return 0, fmt.Errorf("count open incidents: %w", err)
	}
	return n, nil
}

// write executes, inside one transaction, the statement row returns for
// each of n rows, or rejects the row unwritten with the reason row returns
// (a nil row, with the same reasons as the PostgreSQL store); a row with
// neither is skipped. A constraint violation only aborts its own statement
// in SQLite, so the transaction goes on with the next row and the
// violation is reported as a rejection.
func (s *Store) write(ctx context.Context, what string, n int, row func(i int) (query string, args []any, reject string)) (_ []sinks.Rejected, err error) {
	if n == 0 {
		return nil, nil
	}
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return nil, fmt.Errorf("write %s: %w", what, ctx.Err())
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("write %s: begin: %w", what, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmts := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	var rejected []sinks.Rejected
	for i := range n {
		query, args, reject := row(i)
		if reject != "" {
			rejected = append(rejected, sinks.Rejected{Index: i, Reason: reject})
			continue
		}
		if query == "" {
			continue
		}
		stmt := stmts[query]
		if stmt == nil {
			if stmt, err = tx.PrepareContext(ctx, query); err != nil {
				return nil, fmt.Errorf("write %s: prepare: %w", what, err)
			}
			stmts[query] = stmt
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			if reason, ok := constraintViolation(err); ok {
				rejected = append(rejected, sinks.Rejected{Index: i, Reason: reason})
				continue
			}
			return nil, fmt.Errorf("write %s: row %d: %w", what, i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("write %s: commit: %w", what, err)
	}
	return rejected, nil
}

// constraintViolation reports whether err is SQLite refusing the row
// itself (CHECK, NOT NULL, …) as opposed to the database failing, and
// returns the reason to record with the dead letter.
func constraintViolation(err error) (string, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return "", false
	}
	// Extended result codes are on: the low byte is the primary code.
	if se.Code()&0xff != sqlite3.SQLITE_CONSTRAINT {
		return "", false
	}
	return se.Error(), true
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// formatTimePtr is formatTime for a nullable column.
func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}
