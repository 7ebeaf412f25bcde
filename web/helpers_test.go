package web_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/sinks/postgres"
	"github.com/sitewatch/sitewatch/sinks/sqlite"
	"github.com/sitewatch/sitewatch/web"
)

var (
	_ web.Reader = (*postgres.Store)(nil)
	_ web.Reader = (*sqlite.Store)(nil)
)

// HostileName is the down site's configured name.
const HostileName = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> Down & "co"`

// stores opens one fresh store of each kind.
func stores(t *testing.T) map[string]historytest.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "web.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	url := testkit.Postgres(t)
	if err := postgres.Migrate(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	pg, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return map[string]historytest.Store{"sqlite": lite, "postgres": pg}
}

// seededSites is the configuration of the seeded scenario: HalfURL is not
// configured, so it is listed under its URL.
func seededSites() []web.Site {
	return []web.Site{
		{URL: historytest.UpURL, Name: "Up site", Interval: time.Minute, Timeout: 10 * time.Second, Owner: "file:sites.yaml"},
		{URL: historytest.DownURL, Name: HostileName, Interval: time.Minute, Timeout: 5 * time.Second, Owner: "file:sites.yaml"},
	}
}

// serve starts the web server over r with sites, its clock at now.
func serve(t *testing.T, r web.Reader, sites []web.Site, now time.Time) *httptest.Server {
	t.Helper()
	srv, err := web.New(web.Config{Reader: r, Sites: func() []web.Site { return sites }, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}
