package codecs_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sitewatch/sitewatch/codecs"
)

func TestCheckRegion(t *testing.T) {
	for _, ok := range []string{"default", "eu", "eu-west-1", "1", "9a-", strings.Repeat("a", 32)} {
		if err := codecs.CheckRegion(ok); err != nil {
			t.Errorf("CheckRegion(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-eu", "EU", "eu_west", "eu west", "é", "eu.1", strings.Repeat("a", 33)} {
		if err := codecs.CheckRegion(bad); err == nil {
			t.Errorf("CheckRegion(%q) = nil, want an error", bad)
		}
	}
}

// The default region keeps the names it had before regions, so that an
// upgraded emitter reads the same topic and group.
func TestRegionNames(t *testing.T) {
	for _, tc := range []struct{ region, topic, group string }{
		{codecs.DefaultRegion, "status_request_created", "url_checker"},
		{"eu-west", "status_request_created_eu-west", "url_checker_eu-west"},
	} {
		if got := codecs.RequestsTopic(tc.region); got != tc.topic {
			t.Errorf("RequestsTopic(%q) = %q, want %q", tc.region, got, tc.topic)
		}
		if got := codecs.CheckerGroup(tc.region); got != tc.group {
			t.Errorf("CheckerGroup(%q) = %q, want %q", tc.region, got, tc.group)
		}
	}
}

// A result written before regions has no "region": it is the default
// region's; every result written now carries one, and a bad one is refused.
func TestResultRegion(t *testing.T) {
	r := sampleResult()
	old, err := codecs.ResultCodec{}.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(old, []byte(`"region":"default"`)) {
		t.Fatalf("a result without a region is encoded without the default one: %s", old)
	}
	legacy := bytes.Replace(old, []byte(`"region":"default",`), nil, 1)
	for _, data := range [][]byte{legacy, append([]byte(" "), legacy...)} { // fast and strict paths
		got, err := codecs.DecodeResult(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if got.Region != codecs.DefaultRegion {
			t.Errorf("region of a result without one: %q, want default", got.Region)
		}
	}
	r.Region = "eu-west-1"
	data, _ := codecs.ResultCodec{}.Encode(r)
	if got, err := codecs.DecodeResult(data); err != nil || got.Region != "eu-west-1" {
		t.Fatalf("round trip of region: %+v, %v (%s)", got, err, data)
	}
	bad := bytes.Replace(data, []byte(`"eu-west-1"`), []byte(`"EU West"`), 1)
	if _, err := codecs.DecodeResult(bad); err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("a bad region: %v, want an error naming region", err)
	}
}

func TestWindowRegion(t *testing.T) {
	legacy := []byte(`{"v":1,"url":"https://a/","window_start":"2026-01-01T00:00:00Z","window_end":"2026-01-01T00:05:00Z","checks":1,"failures":0,"regexp_failures":0,"responses":1,"response_min_ms":1,"response_avg_ms":1,"response_max_ms":1,"response_p50_ms":1,"response_p95_ms":1,"response_p99_ms":1,"status_counts":{"200":1},"revision":1}`)
	w, err := codecs.DecodeWindow(legacy)
	if err != nil || w.Region != codecs.DefaultRegion {
		t.Fatalf("window without a region: %+v, %v", w, err)
	}
	w.Region = "ap-1"
	data, _ := codecs.WindowCodec{}.Encode(w)
	if got, err := codecs.DecodeWindow(data); err != nil || got.Region != "ap-1" {
		t.Fatalf("round trip of a window's region: %+v, %v (%s)", got, err, data)
	}
}
