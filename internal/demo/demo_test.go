package demo_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/internal/demo"
)

// TestDemoSites: the demo's sites file is valid, and each site answers as
// the demo describes it: three up (the flapping one in its up phase), an
// error 500, and a page that misses its site's regexp. The checks
// themselves are the all-in-one's end-to-end test.
func TestDemoSites(t *testing.T) {
	t.Parallel()
	var clock time.Time
	srv := httptest.NewServer(demo.Handler(func() time.Time { return clock }))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(path, demo.SitesFile(srv.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("demo sites file: %v", err)
	}
	if len(f.Sites) != len(demo.Sites) {
		t.Fatalf("%d sites, want %d", len(f.Sites), len(demo.Sites))
	}
	get := func(url string) (int, string, time.Duration) {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), time.Since(start)
	}
	clock = time.Unix(0, 0) // the start of a flapping cycle: up
	for i, want := range []int{200, 200, 200, 500, 200} {
		s := f.Sites[i]
		code, body, took := get(s.URL)
		if code != want {
			t.Errorf("%s: status %d, want %d", s.Name, code, want)
		}
		if s.Regexp != nil && s.Regexp.MatchString(body) {
			t.Errorf("%s: body %q matches %s, want a miss", s.Name, body, s.Regexp)
		}
		if s.Name == "demo slow" && took < demo.SlowDelay {
			t.Errorf("slow site answered in %s, want at least %s", took, demo.SlowDelay)
		}
		if took >= s.Timeout {
			t.Errorf("%s took %s, not under its timeout %s", s.Name, took, s.Timeout)
		}
	}
	clock = time.Unix(0, 0).Add(demo.FlapPeriod - time.Second) // the last third: down
	if code, _, _ := get(f.Sites[2].URL); code != http.StatusServiceUnavailable {
		t.Errorf("flapping site in its down phase: status %d, want 503", code)
	}
}
