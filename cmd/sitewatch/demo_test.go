package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `sitewatch -demo` as a new user would, offline: within a
// minute the live table shows every demo site with what makes it
// different, says when the first window is stored, and check_results in
// the embedded SQLite database has rows for all five.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	dataDir := t.TempDir()
	stop, stdout, stderr := startSitewatch(t, "-demo", "-demo-listen", "127.0.0.1:0", "-data-dir", dataDir,
		"-table", "on", "-table-refresh", "100ms")
	want := map[string]string{ // site name → what its row must say
		"demo up":         " up ",
		"demo slow":       " up ",
		"demo flapping":   "",
		"demo error 500":  "status 500, expected 2xx or 3xx",
		"demo wrong text": `body does not match regexp "Welcome to the shop"`,
	}
	deadline := time.Now().Add(time.Minute)
	var frame string
	for {
		frame = lastFrame(stdout.String())
		missing := 0
		for name, text := range want {
			row := rowOf(frame, name)
			if row == "" || !strings.Contains(row, text) {
				missing++
			}
		}
		if missing == 0 && strings.Contains(frame, "5 sites: ") && !strings.Contains(frame, "not checked yet") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's table was not complete within a minute; last frame:\n%s\nstderr: %s", frame, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(frame, "sitewatch -demo · Kafka 127.0.0.1:") || !strings.Contains(frame, "stored after") {
		t.Errorf("the demo's table lacks its title or when windows are stored:\n%s", frame)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
	}
	db := openStore(t, "sqlite", "file:"+filepath.Join(dataDir, "sitewatch.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	byURL := map[string]int{}
	for _, r := range db.results(t) {
		byURL[r.URL]++
	}
	if len(byURL) != 5 {
		t.Errorf("check_results has rows for %d URLs, want the 5 demo sites: %v", len(byURL), byURL)
	}
}

// rowOf is the table row of the named site.
func rowOf(frame, name string) string {
	for _, l := range strings.Split(frame, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}
