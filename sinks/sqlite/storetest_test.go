package sqlite_test

import (
	"database/sql"
	"testing"

	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/sinks/storetest"
)

// TestStore runs the test body shared with the PostgreSQL store.
func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) (sinks.Store, *sql.DB) {
		s, _ := openStore(t)
		return s, s.DB()
	})
}
