package checker

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The two benchmarks fetch the same local 4 KiB page on a fresh connection
// each time, so their ratio is the cost of what a check adds to a bare
// net/http GET: a transport per check, tracing, classification, the result.

func benchServer(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(text(200, strings.Repeat("x", 4096)))
	b.Cleanup(srv.Close)
	return srv
}

func BenchmarkCheck(b *testing.B) {
	srv := benchServer(b)
	c := New(Options{})
	target := Target{URL: srv.URL}
	b.ReportAllocs()
	for b.Loop() {
		if res := c.Check(b.Context(), target); !res.Up {
			b.Fatalf("check down: %s", res.ErrorMessage)
		}
	}
}

func BenchmarkBareNetHTTP(b *testing.B) {
	srv := benchServer(b)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, srv.URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, body error %v", resp.StatusCode, err)
		}
	}
}
