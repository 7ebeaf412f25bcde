package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/scheduler"
)

// TestRequestIDIsStable pins the id of a slot: it is the results'
// event_id, the idempotency key of check_results, so a slot checked again
// by another build (an upgrade mid-slot) must get the same id.
func TestRequestIDIsStable(t *testing.T) {
	at := time.Unix(0, 1764417900123456789)
	for _, tc := range []struct{ url, want string }{
		{"https://example.com/ok?i=1", "b7296680e8f0e3153de599e76ee133f7"},
		// Longer than the id's stack buffer.
		{"https://example.com/" + strings.Repeat("x", 300), ""},
	} {
		got := scheduler.RequestID(tc.url, at)
		if tc.want != "" && got != tc.want {
			t.Errorf("RequestID(%q) = %s, want %s", tc.url, got, tc.want)
		}
		if len(got) != 32 || got == scheduler.RequestID(tc.url, at.Add(time.Nanosecond)) {
			t.Errorf("RequestID(%q) = %s: want 32 hex digits, distinct per slot", tc.url, got)
		}
	}
}
