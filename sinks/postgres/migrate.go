package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sitewatch/sitewatch/migrations"
)

// migrateLockID names the session advisory lock that serializes sitewatch
// migrations on one database. golang-migrate takes its own advisory lock
// too, but waits for it without a context (and gives up after 15 s), so
// Migrate first waits for this one, cancellably and without a deadline:
// a second processor starting during a long migration waits for it to
// finish, then finds nothing left to do.
const migrateLockID int64 = 0x7369746577617463 // "sitewatc"

// Migrate brings the database schema up to the newest migration embedded
// in the binary. It is safe to call from several processes at once: they
// take turns, and all but the first find the schema current.
//
// Cancelling ctx while waiting for another process's migration returns at
// once; cancelling it during a migration stops after the current file (each
// file is one transaction), so the schema is never left half-applied.
func Migrate(ctx context.Context, databaseURL string, logger *slog.Logger) error {
	return runMigrations(ctx, databaseURL, logger, func(m *migrate.Migrate) error {
		// One file at a time, ctx checked between files. golang-migrate's
		// own way, GracefulStop, races with itself: its reading and its
		// applying goroutines both write the flag it sets (seen under
		// -race when a test stopped a processor mid-migration).
		for applied := false; ; applied = true {
			if ctx.Err() != nil {
				return nil // runMigrations reports the stop
			}
			err := m.Steps(1)
			if errors.Is(err, os.ErrNotExist) { // no file left
				if !applied {
					return migrate.ErrNoChange
				}
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

// runMigrations opens golang-migrate on databaseURL with the embedded files
// and runs step under the sitewatch migration lock.
func runMigrations(ctx context.Context, databaseURL string, logger *slog.Logger, step func(*migrate.Migrate) error) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}

	lockConn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	// Closing the session releases the advisory lock as well, whatever
	// happened; the explicit unlock below just releases it sooner.
	defer lockConn.Close(context.WithoutCancel(ctx))
	if _, err := lockConn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockID); err != nil {
		return fmt.Errorf("migrate: wait for other migrations: %w", err)
	}
	defer func() {
		_, _ = lockConn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockID)
	}()

	db := stdlib.OpenDB(*cfg)
	drv, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{})
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("migrate: open database driver: %w", err)
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		_ = drv.Close()
		return fmt.Errorf("migrate: read embedded migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		_ = src.Close()
		_ = drv.Close()
		return fmt.Errorf("migrate: %w", err)
	}
	defer m.Close()
	m.Log = migrateLogger{logger}

	before, dirty, err := m.Version()
	if err != nil && !errors.Is(err, migrate.ErrNilVersion) {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if dirty {
		return dirtyError(before)
	}

	err = step(m)
	var dirtyErr migrate.ErrDirty
	switch {
	case errors.Is(err, migrate.ErrNoChange):
		err = nil
	case errors.As(err, &dirtyErr):
		return dirtyError(uint(dirtyErr.Version))
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("migrate: stopped before the last migration: %w", err)
	}
	after, _, err := m.Version()
	if err != nil && !errors.Is(err, migrate.ErrNilVersion) {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if after != before {
		logger.Info("database schema migrated", "from_version", before, "to_version", after)
	} else {
		logger.Debug("database schema is current", "version", after)
	}
	return nil
}

// dirtyError explains the one state Migrate cannot repair by itself: a
// migration that was cut off (the process killed or the connection lost
// mid-file). Every sitewatch migration file runs in one transaction, so the
// schema is almost certainly still at the previous version.
func dirtyError(version uint) error {
	fix := fmt.Sprintf("UPDATE schema_migrations SET version = %d, dirty = false", version-1)
	if version <= 1 {
		fix = "DELETE FROM schema_migrations"
	}
	return fmt.Errorf("migrate: migration %d was interrupted and schema_migrations is marked dirty; "+
		"each migration runs in one transaction, so the schema is still at the previous version: "+
		"check it, run %q, and start again", version, fix)
}

// migrateLogger routes golang-migrate's progress lines into slog.
type migrateLogger struct{ l *slog.Logger }

func (m migrateLogger) Printf(format string, v ...any) {
	m.l.Debug("migrate: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (m migrateLogger) Verbose() bool { return false }
