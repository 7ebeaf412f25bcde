package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
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

// The all-in-one command runs without a sites file: it says how to add a
// site, and a site added with `sitewatch sites -brokers` is checked and
// listed on the status page under its name at once (the processor follows
// the registry), then leaves the page when it is removed. Before the
// processor followed the registry, the page listed no configured site
// without -sites and the command refused to start.
func TestAllInOneWithoutSitesFile(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	t.Cleanup(target.Close)
	_, stdout, stderr := startSitewatch(t, "-data-dir", filepath.Join(t.TempDir(), "d"),
		"-window-size", windowSize.String(), "-table", "off", "-http-addr", "127.0.0.1:0")
	hint := waitLine(t, stdout, "no -sites file")
	m := regexp.MustCompile(`sitewatch sites -brokers (\S+) add`).FindStringSubmatch(hint)
	if m == nil {
		t.Fatalf("the hint names no command to add a site: %q", hint)
	}
	base := regexp.MustCompile(`status page at (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(waitLine(t, stdout, "status page at"))[1]

	kafka := []string{"-brokers", m[1]}
	if code, out, errOut := sitesCmd(t, append(kafka, "add", target.URL+"/", "-interval", "1s", "-name", "Added by the API")...); code != 0 {
		t.Fatalf("sites add: %d %q %q", code, out, errOut)
	}
	type apiSite struct{ URL, Name, State, Owner string }
	sites := func() map[string]apiSite {
		resp, err := http.Get(base + "api/v1/sites")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var body struct{ Sites []apiSite }
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return nil
		}
		out := map[string]apiSite{}
		for _, s := range body.Sites {
			out[s.URL] = s
		}
		return out
	}
	url := target.URL + "/"
	waitUntil := func(what string, cond func(map[string]apiSite) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := sites()
			if cond(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: never; last /api/v1/sites: %+v\nstderr:\n%s", what, got, stderr.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitUntil("the added site listed by name, owner api, and checked up", func(got map[string]apiSite) bool {
		s := got[url]
		return s.Name == "Added by the API" && s.Owner == "api" && s.State == "up"
	})
	if code, out, errOut := sitesCmd(t, append(kafka, "rm", url)...); code != 0 {
		t.Fatalf("sites rm: %d %q %q", code, out, errOut)
	}
	waitUntil("the removed site named no more (listed by URL at most, from its stored checks)", func(got map[string]apiSite) bool {
		s, ok := got[url]
		return got != nil && (!ok || (s.Name != "Added by the API" && s.Owner == ""))
	})
}
