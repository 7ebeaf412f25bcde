package postgres

import (
	"github.com/sitewatch/sitewatch/sinks"

	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Options' zero values.
const (
	// DefaultStatementTimeout bounds each statement of a write. A batch
	// of a thousand rows takes milliseconds; a statement still running
	// after this long is stuck (a lock, a dying server), and failing it
	// lets the sink retry instead of hanging with offsets uncommitted.
	DefaultStatementTimeout = 30 * time.Second
	// DefaultMaxConns is enough for the two sinks' writes
	// (writeConcurrency each), partition upkeep and the web part's reads.
	DefaultMaxConns = 6
	// writeConcurrency is the writes a sink keeps in flight. Two keep the
	// database busy while the sink decodes and gathers the next batches;
	// more only queue on the same cores.
	writeConcurrency = 2
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// StatementTimeout is the server-side statement_timeout of the
	// store's connections. Zero means DefaultStatementTimeout unless the
	// database URL sets statement_timeout itself; negative means none.
	StatementTimeout time.Duration
	// MaxConns caps the connection pool when the database URL does not:
	// a pool_max_conns in the URL wins. Zero means DefaultMaxConns.
	MaxConns int32
	// Logger receives partition upkeep events; nil discards them.
	Logger *slog.Logger
}

// Store writes sitewatch's rows to PostgreSQL through a connection pool.
// Its methods are safe for concurrent use. The schema must have been
// migrated (Migrate) before the first write.
type Store struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	m      storeMetrics
}

// storeMetrics count what the log reports about written rows. The Store is
// a prometheus.Collector of them: the sinks register it with theirs.
type storeMetrics struct {
	alreadyStored prometheus.Counter
	toDefault     prometheus.Counter
	copyFallbacks prometheus.Counter
}

func newStoreMetrics() storeMetrics {
	return storeMetrics{
		alreadyStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_store_results_already_stored_total",
			Help: "Results not written because their event_id was already stored (a redelivery after a crash or rebalance, or a slot checked again).",
		}),
		toDefault: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_store_results_default_partition_total",
			Help: "Results stored in check_results_default because no daily partition covers their scheduled_at (late, replayed or clock-skewed events).",
		}),
		copyFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sitewatch_store_results_copy_fallbacks_total",
			Help: "Result batches the plain COPY into check_results refused (a redelivered or invalid row, or the database away), written again by the deduplicating path.",
		}),
	}
}

var _ prometheus.Collector = (*Store)(nil)

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	s.m.alreadyStored.Describe(ch)
	s.m.toDefault.Describe(ch)
	s.m.copyFallbacks.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	s.m.alreadyStored.Collect(ch)
	s.m.toDefault.Collect(ch)
	s.m.copyFallbacks.Collect(ch)
}

// Rejected is a row PostgreSQL refused as invalid: Index is its position in
// the batch given to WriteResults or WriteWindows, Reason the server's
// explanation. The row was not written; the rest of its batch was.
type Rejected = sinks.Rejected

var _ sinks.IncidentStore = (*Store)(nil)

// Open connects to the database at databaseURL (a postgres:// URL or a
// key=value DSN) and checks that it answers.
func Open(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: parse database URL: %w", err)
	}
	// pgxpool fills MaxConns with its own default when the URL has no
	// pool_max_conns, and then forgets whether it had one; the URL, parsed
	// as pgx parses it (pool_* settings stay runtime parameters there),
	// says whether the user chose a size, which must win.
	if !urlSetsParam(databaseURL, "pool_max_conns") {
		cfg.MaxConns = opts.MaxConns
		if cfg.MaxConns <= 0 {
			cfg.MaxConns = DefaultMaxConns
		}
	}
	params := cfg.ConnConfig.RuntimeParams
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "sitewatch"
	}
	// The URL may set it as a parameter of its own or, the libpq way, in
	// options (?options=-c%20statement_timeout%3D5s); either way it must
	// win over the default, which the server would otherwise apply last.
	_, inURL := params["statement_timeout"]
	inURL = inURL || strings.Contains(params["options"], "statement_timeout")
	switch {
	case opts.StatementTimeout > 0:
		params["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	case opts.StatementTimeout < 0:
		params["statement_timeout"] = "0"
	case !inURL:
		params["statement_timeout"] = strconv.FormatInt(DefaultStatementTimeout.Milliseconds(), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: pool, logger: logger, m: newStoreMetrics()}, nil
}

// urlSetsParam reports whether the database URL or DSN gives the named
// parameter (pgx keeps parameters it does not know, pool_* among them, as
// runtime parameters).
func urlSetsParam(databaseURL, name string) bool {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return false // pgxpool.ParseConfig has accepted it; cannot happen
	}
	_, ok := cfg.RuntimeParams[name]
	return ok
}

// Ping checks that the database answers, for health checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() { s.pool.Close() }

// WriteConcurrency tells the sinks (sinks.ConcurrentWriter) how many
// writes each may keep in flight: batches of other partitions in
// transactions side by side, while the sink decodes the next ones.
func (s *Store) WriteConcurrency() int { return writeConcurrency }
