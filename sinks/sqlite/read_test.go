package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
)

// The read side passes the same tests as PostgreSQL's (sinks/postgres).
func TestRead(t *testing.T) {
	t.Parallel()
	historytest.Run(t, func(t *testing.T) historytest.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}
