package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/sinks/postgres"
)

// The read side passes the same tests as SQLite's (sinks/sqlite).
func TestRead(t *testing.T) {
	t.Parallel()
	historytest.Run(t, func(t *testing.T) historytest.Store {
		url := testkit.Postgres(t)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := postgres.Migrate(ctx, url, nil); err != nil {
			t.Fatal(err)
		}
		st, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	})
}
