package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

// The all-in-one command serves the status page on -http-addr, prints its
// address at start, and the page shows the configured sites by name with
// the state their checks gave, read back from the embedded store.
func TestStatusPageServed(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	sitesFile, sites := sitesFixture(t)
	_, stdout, stderr := startSitewatch(t, "-sites", sitesFile, "-data-dir", filepath.Join(t.TempDir(), "d"),
		"-window-size", windowSize.String(), "-table", "off", "-http-addr", "127.0.0.1:0")
	addr := regexp.MustCompile(`status page at (http://127\.0\.0\.1:\d+/)`)
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" && time.Now().Before(deadline) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
		time.Sleep(50 * time.Millisecond)
	}
	if base == "" {
		t.Fatalf("no status page address printed; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	type apiSite struct {
		ID, URL, Name, State string
		Interval             *string
	}
	want := map[string]string{}
	for _, s := range sites {
		want[s.url] = map[bool]string{true: "up", false: "down"}[s.up]
	}
	var got map[string]apiSite
	for time.Now().Before(deadline.Add(30 * time.Second)) {
		resp, err := http.Get(base + "api/v1/sites")
		if err == nil {
			var body struct{ Sites []apiSite }
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			got = map[string]apiSite{}
			for _, s := range body.Sites {
				got[s.URL] = s
			}
			done := err == nil
			for u, st := range want {
				done = done && got[u].State == st
			}
			if done {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for u, st := range want {
		g := got[u]
		if g.State != st || g.ID != history.SiteID(u) || g.Interval == nil || *g.Interval != "1s" {
			t.Errorf("%s: %+v, want state %s, id %s, interval 1s", u, g, st, history.SiteID(u))
		}
	}
	if g := got[sites[0].url]; g.Name != "fast and fine" {
		t.Errorf("configured name: %q", g.Name)
	}
	resp, err := http.Get(base)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /: %v %v", resp, err)
	}
	resp.Body.Close()
}
