package postgres

import (
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for the shared test body

	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/sinks/storetest"
)

// TestStore runs the test body shared with the SQLite store.
func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) (sinks.Store, *sql.DB) {
		url, s := migratedStore(t, Options{})
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return s, db
	})
}
