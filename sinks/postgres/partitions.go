package postgres

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Partition upkeep takes an ACCESS EXCLUSIVE lock on check_results for a
// moment. lockTimeout keeps a queued lock from stalling every reader and
// writer behind a long query: upkeep gives up and runs again next time.
// maintenanceTimeout replaces the store's statement timeout, because
// moving stray rows out of the default partition may take longer than a
// batch write.
const (
	lockTimeout        = "5s"
	maintenanceTimeout = "10min"
)

// partitionPrefix and partitionName are the only partition names this
// package creates or drops; any other partition (an operator's) is left
// alone.
const partitionPrefix = "check_results_p"

var partitionName = regexp.MustCompile(`^check_results_p[0-9]{8}$`)

// partition is one UTC day of check_results, [from, to) of scheduled_at
// (the partition key since migration 000002).
type partition struct {
	name     string
	from, to time.Time
}

// utcDay is the start of t's day in UTC.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dailyPartition names day's partition. Partition DDL cannot take
// parameters, so the name and bounds are built from the time alone and
// the name is checked against the fixed pattern before any SQL sees it.
func dailyPartition(day time.Time) (partition, error) {
	from := utcDay(day)
	p := partition{name: partitionPrefix + from.Format("20060102"), from: from, to: from.AddDate(0, 0, 1)}
	if !partitionName.MatchString(p.name) {
		return partition{}, fmt.Errorf("no partition for %s: year out of range", from.Format(time.DateOnly))
	}
	return p, nil
}

// parsePartition is dailyPartition's inverse; ok is false for a name that
// is not one of ours.
func parsePartition(name string) (p partition, ok bool) {
	if !partitionName.MatchString(name) {
		return partition{}, false
	}
	day, err := time.Parse("20060102", name[len(partitionPrefix):])
	if err != nil {
		return partition{}, false
	}
	p, err = dailyPartition(day)
	return p, err == nil && p.name == name
}

func (p partition) ident() string { return pgx.Identifier{p.name}.Sanitize() }

// createSQL is safe to build as text: name and bounds come from a
// time.Time, and the name has matched partitionName.
func (p partition) createSQL() string {
	return fmt.Sprintf("CREATE TABLE %s PARTITION OF check_results FOR VALUES FROM ('%s') TO ('%s')",
		p.ident(), p.from.Format(time.RFC3339), p.to.Format(time.RFC3339))
}

// MaintainPartitions keeps check_results' daily partitions, and is meant to
// run at start and then every hour or so. It is safe to run from several
// processes at once.
//
//   - It creates the partitions of yesterday (within the retention), today
//     and the next ahead days (UTC).
//   - It gives a partition to every day from now-retention on that has rows
//     in the default partition (late or replayed events), moving those rows
//     into it in the same transaction, so the default partition stays small.
//   - It drops the partitions of days that ended before now-retention and
//     deletes the default partition's rows of those days.
//
// A retention of zero or less keeps everything and moves only rows of
// today and later out of the default partition.
func (s *Store) MaintainPartitions(ctx context.Context, now time.Time, ahead int, retention time.Duration) error {
	today := utcDay(now)
	ahead = max(ahead, 0)
	end := today.AddDate(0, 0, ahead+1) // first day not wanted yet
	keepFrom := today
	if retention > 0 {
		keepFrom = utcDay(now.Add(-retention))
	}

	existing, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	// Yesterday's too: a backlog read just after midnight (a first start,
	// a processor down for the evening) is mostly of the day before, and
	// went to the default partition until the next upkeep.
	from := today.AddDate(0, 0, -1)
	if retention > 0 && from.Before(keepFrom) {
		from = keepFrom
	}
	want := map[string]partition{}
	for d := from; d.Before(end); d = d.AddDate(0, 0, 1) {
		p, err := dailyPartition(d)
		if err != nil {
			return fmt.Errorf("maintain partitions: %w", err)
		}
		want[p.name] = p
	}
	strays, err := s.strayDays(ctx, keepFrom, end)
	if err != nil {
		return err
	}
	for _, d := range strays {
		if p, err := dailyPartition(d); err == nil {
			want[p.name] = p
		}
	}
	for _, p := range sortedPartitions(want) {
		if _, ok := existing[p.name]; ok {
			continue
		}
		if err := s.createPartition(ctx, p); err != nil {
			return err
		}
	}

	if retention <= 0 {
		return nil
	}
	for _, p := range sortedPartitions(existing) {
		if p.to.After(keepFrom) {
			continue
		}
		if err := s.dropPartition(ctx, p); err != nil {
			return err
		}
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM check_results_default WHERE scheduled_at < $1", keepFrom)
	if err != nil {
		return fmt.Errorf("maintain partitions: delete expired rows of the default partition: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		s.logger.Info("deleted expired rows from the default partition", "rows", n, "before", keepFrom)
	}
	return nil
}

// partitions lists the daily partitions of check_results that this
// package manages, by name.
func (s *Store) partitions(ctx context.Context) (map[string]partition, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'check_results'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("maintain partitions: list partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("maintain partitions: list partitions: %w", err)
	}
	out := map[string]partition{}
	for _, n := range names {
		if p, ok := parsePartition(n); ok {
			out[n] = p
		}
	}
	return out, nil
}

// strayDays lists the UTC days in [from, to) that have rows in the default
// partition.
func (s *Store) strayDays(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT date_trunc('day', scheduled_at, 'UTC')
FROM check_results_default
WHERE scheduled_at >= $1 AND scheduled_at < $2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("maintain partitions: find rows in the default partition: %w", err)
	}
	days, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("maintain partitions: find rows in the default partition: %w", err)
	}
	return days, nil
}

// lockCheckResults takes check_results for partition DDL. Writers lock the
// parent before any partition, so locking the parent first (and only it)
// keeps the order the same and cannot deadlock with them.
func lockCheckResults(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+lockTimeout+"'; "+
		"SET LOCAL statement_timeout = '"+maintenanceTimeout+"'; "+
		"LOCK TABLE ONLY check_results IN ACCESS EXCLUSIVE MODE")
	if err != nil {
		return fmt.Errorf("lock check_results: %w", err)
	}
	return nil
}

// createPartition makes p's partition. PostgreSQL refuses to create a
// partition while the default partition holds rows of its range, so those
// rows are set aside, the partition created, and the rows put back (now
// routed to it), all in one transaction: a concurrent reader sees them
// either in the default partition or in the new one, never nowhere.
func (s *Store) createPartition(ctx context.Context, p partition) error {
	var moved int64
	created := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockCheckResults(ctx, tx); err != nil {
			return err
		}
		// Another process may have made it while we waited for the lock.
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", p.ident()).Scan(&exists); err != nil {
			return fmt.Errorf("look for partition: %w", err)
		}
		if exists {
			return nil
		}
		var stray bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM check_results_default
WHERE scheduled_at >= $1 AND scheduled_at < $2)`, p.from, p.to).Scan(&stray); err != nil {
			return fmt.Errorf("look for rows in the default partition: %w", err)
		}
		if stray {
			if _, err := tx.Exec(ctx, "CREATE TEMP TABLE sitewatch_moving (LIKE check_results) ON COMMIT DROP"); err != nil {
				return fmt.Errorf("create holding table: %w", err)
			}
			tag, err := tx.Exec(ctx, `WITH moved AS (
    DELETE FROM check_results_default WHERE scheduled_at >= $1 AND scheduled_at < $2 RETURNING *)
INSERT INTO sitewatch_moving SELECT * FROM moved`, p.from, p.to)
			if err != nil {
				return fmt.Errorf("take rows out of the default partition: %w", err)
			}
			moved = tag.RowsAffected()
		}
		if _, err := tx.Exec(ctx, p.createSQL()); err != nil {
			return fmt.Errorf("create partition: %w", err)
		}
		if stray {
			if _, err := tx.Exec(ctx, "INSERT INTO check_results SELECT * FROM sitewatch_moving"); err != nil {
				return fmt.Errorf("move rows into the partition: %w", err)
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("maintain partitions: %s: %w", p.name, err)
	}
	if created {
		s.logger.Info("created partition", "partition", p.name, "rows_moved_from_default", moved)
	}
	return nil
}

// dropPartition detaches and drops p's partition, discarding its rows.
func (s *Store) dropPartition(ctx context.Context, p partition) error {
	dropped := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockCheckResults(ctx, tx); err != nil {
			return err
		}
		// Another process may have dropped it while we waited.
		var attached bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits
WHERE inhparent = 'check_results'::regclass AND inhrelid = to_regclass($1))`, p.ident()).Scan(&attached); err != nil {
			return fmt.Errorf("look for partition: %w", err)
		}
		if !attached {
			return nil
		}
		if _, err := tx.Exec(ctx, "ALTER TABLE check_results DETACH PARTITION "+p.ident()); err != nil {
			return fmt.Errorf("detach partition: %w", err)
		}
		if _, err := tx.Exec(ctx, "DROP TABLE "+p.ident()); err != nil {
			return fmt.Errorf("drop partition: %w", err)
		}
		dropped = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("maintain partitions: %s: %w", p.name, err)
	}
	if dropped {
		s.logger.Info("dropped expired partition", "partition", p.name)
	}
	return nil
}

// sortedPartitions returns ps' values oldest first, so that upkeep is
// deterministic and logs read in order.
func sortedPartitions(ps map[string]partition) []partition {
	out := make([]partition, 0, len(ps))
	for _, p := range ps {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b partition) int { return a.from.Compare(b.from) })
	return out
}
