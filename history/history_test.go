package history

import (
	"strings"
	"testing"
)

// Site ids are part of every link and badge URL people paste elsewhere:
// these values must never change.
func TestSiteIDIsStable(t *testing.T) {
	for url, want := range map[string]string{
		"https://example.com/health":       "example-com-health-efd948f7",
		"http://example.com/health":        "example-com-health-33e49eeb", // another site
		"https://Example.com/Health?x=1#y": "example-com-health-x-1-y-81ccf604",
		"https://%%%/":                     "9fe5ae5b",
	} {
		if got := SiteID(url); got != want {
			t.Errorf("SiteID(%q) = %q, want %q", url, got, want)
		}
	}
	long := SiteID("https://example.com/" + strings.Repeat("a", 500))
	if len(long) > 48+9 || !strings.HasPrefix(long, "example-com-aaa") {
		t.Errorf("long URL: %q", long)
	}
}

func TestCountsWithoutData(t *testing.T) {
	if _, ok := (Counts{}).Uptime(); ok {
		t.Error("no checks must be no data, not an uptime")
	}
	if p, ok := (Counts{Checks: 4, Failures: 1}).Uptime(); !ok || p != 75 {
		t.Errorf("uptime %v %v", p, ok)
	}
	if v, ok := (Counts{Responses: 2, P95SumMS: 60}).P95(); !ok || v != 30 {
		t.Errorf("p95 %v %v", v, ok)
	}
}
