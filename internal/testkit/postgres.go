package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDatabaseURL is the local server the tests use unless
// SITEWATCH_TEST_DATABASE_URL says otherwise.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns the URL of the test server's maintenance database.
func AdminURL() string {
	if u := os.Getenv("SITEWATCH_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// Postgres creates a fresh database on the test server for this test alone
// and drops it when the test ends. When no server answers it skips the test
// loudly, except under CI=true, where a missing database is a failure.
func Postgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL test server %s unreachable under CI=true: %v", redact(admin), err)
		}
		t.Skipf("SKIPPING: no PostgreSQL at %s (%v); set SITEWATCH_TEST_DATABASE_URL to run this test", redact(admin), err)
	}
	conn.Close(ctx)
	dsn, drop, err := CreateDatabase(ctx, "sw_test_")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Log(err)
		}
	})
	return dsn
}

// CreateDatabase creates a database with a random name starting with
// prefix on the test server (AdminURL) and returns its URL and a function
// that drops it. The load programs use it as the tests use Postgres.
// options are appended to CREATE DATABASE (a template, a locale).
func CreateDatabase(ctx context.Context, prefix string, options ...string) (string, func() error, error) {
	admin := AdminURL()
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("parse %s: %w", redact(admin), err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL at %s (set SITEWATCH_TEST_DATABASE_URL): %w", redact(admin), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, strings.Join(append([]string{"CREATE DATABASE", name}, options...), " ")); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
