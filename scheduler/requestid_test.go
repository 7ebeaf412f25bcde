package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/scheduler"
)

// TestRequestIDIsStable pins the id of a slot: it is the results'
// event_id, the idempotency key of check_results, so a slot checked again
// by another build (an upgrade mid-slot) must get the same id. The default
// region's ids are those of the builds before regions.
func TestRequestIDIsStable(t *testing.T) {
	at := time.Unix(0, 1764417900123456789)
	for _, tc := range []struct{ url, want string }{
		{"https://example.com/ok?i=1", "b7296680e8f0e3153de599e76ee133f7"},
		// Longer than the id's stack buffer.
		{"https://example.com/" + strings.Repeat("x", 300), ""},
	} {
		got := scheduler.RequestID(tc.url, at, codecs.DefaultRegion)
		if tc.want != "" && got != tc.want {
			t.Errorf("RequestID(%q) = %s, want %s", tc.url, got, tc.want)
		}
		if len(got) != 32 || got == scheduler.RequestID(tc.url, at.Add(time.Nanosecond), codecs.DefaultRegion) {
			t.Errorf("RequestID(%q) = %s: want 32 hex digits, distinct per slot", tc.url, got)
		}
	}
}

// TestRequestIDPerRegion: two regions' checks of one slot are two rows, so
// their ids differ; the id of a region is as stable as the default's.
func TestRequestIDPerRegion(t *testing.T) {
	at := time.Unix(0, 1764417900123456789)
	url := "https://example.com/ok?i=1"
	def := scheduler.RequestID(url, at, codecs.DefaultRegion)
	eu := scheduler.RequestID(url, at, "eu-west")
	us := scheduler.RequestID(url, at, "us-east")
	if eu == def || us == def || eu == us || len(eu) != 32 {
		t.Fatalf("ids per region: default %s, eu-west %s, us-east %s; want three distinct ids", def, eu, us)
	}
	if eu != "8bafe1c0c03b1a5f97147523ff8e84a0" {
		t.Errorf("RequestID(%q, eu-west) = %s: the id of a region changed", url, eu)
	}
	if got := scheduler.RequestID(url, at, ""); got != def {
		t.Errorf("an empty region is the default one: %s, want %s", got, def)
	}
	// The fast path stays allocation-free but for the id itself.
	if n := testing.AllocsPerRun(100, func() { _ = scheduler.RequestID(url, at, "eu-west") }); n > 1 {
		t.Errorf("RequestID allocates %v times per call, want at most 1 (the string)", n)
	}
}
