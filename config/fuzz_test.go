package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and never lies: it either
// returns sites that satisfy every rule of the contract, or one *Error on
// one line that names the file.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, "../examples/sites.yaml")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("sites: &s [*s]\n"))
	f.Add([]byte("sites:\n  - &a {url: https://a.example/, headers: *a}\n"))
	f.Add([]byte("defaults: {interval: 2s}\nsites: [{url: 'http://x', timeout: 2s, expect_status: [0x12c]}]\n"))

	const path = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(path, data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T (%v) is not a *config.Error", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+":") || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error %q is not one line starting with the file name", msg)
			}
			if ce.Line < 1 {
				t.Fatalf("error %q has no line", msg)
			}
			return
		}
		if len(file.Sites) == 0 {
			t.Fatal("no error and no sites")
		}
		seen := make(map[string]bool, len(file.Sites))
		for _, s := range file.Sites {
			switch {
			case seen[s.URL]:
				t.Fatalf("duplicate URL %q accepted", s.URL)
			case checkURL(s.URL) != "":
				t.Fatalf("bad URL %q accepted", s.URL)
			case s.Name == "":
				t.Fatalf("%s: empty name", s.URL)
			case s.Method != "GET" && s.Method != "HEAD":
				t.Fatalf("%s: method %q accepted", s.URL, s.Method)
			case s.Interval < MinInterval:
				t.Fatalf("%s: interval %v accepted", s.URL, s.Interval)
			case s.Timeout <= 0 || s.Timeout > s.Interval:
				t.Fatalf("%s: timeout %v with interval %v accepted", s.URL, s.Timeout, s.Interval)
			case s.Line < 1:
				t.Fatalf("%s: no line", s.URL)
			}
			for _, c := range s.ExpectStatus {
				if c < 100 || c > 599 {
					t.Fatalf("%s: status %d accepted", s.URL, c)
				}
			}
			for k, v := range s.Headers {
				if !validHeaderName(k) || !validHeaderValue(v) {
					t.Fatalf("%s: header %q: %q accepted", s.URL, k, v)
				}
			}
			seen[s.URL] = true
		}
	})
}
