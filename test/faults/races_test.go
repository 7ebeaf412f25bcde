package faults

import (
	"os"
	"strings"
	"testing"
)

// TestDataRacesKnowsOnlyGokasOwn: the race report filter drops goka's
// known visit-counter race and nothing else, so a race in sitewatch's own
// code still fails the suite.
func TestDataRacesKnowsOnlyGokasOwn(t *testing.T) {
	data, err := os.ReadFile("testdata/goka-visit-race.txt")
	if err != nil {
		t.Fatal(err)
	}
	goka := "some log line\n==================\n" + string(data)
	if got := dataRaces(goka); len(got) != 0 {
		t.Fatalf("goka's visit-counter race was reported:\n%s", got[0])
	}
	// The same report with one access in our code is ours.
	ours := strings.Replace(goka, "github.com/lovoo/goka.(*Processor).VisitAllWithStats()", "github.com/sitewatch/sitewatch/processors/alerts.(*Processor).flush()", 1)
	if got := dataRaces(ours); len(got) != 1 {
		t.Fatalf("a race in sitewatch's code was not reported (%d reports)", len(got))
	}
	// Any other race counts, alongside goka's.
	other := goka + "\n==================\nWARNING: DATA RACE\nRead at 0x00c000123456 by goroutine 9:\n  github.com/sitewatch/sitewatch/sinks.(*Sink).flush()\n      /src/sinks/sink.go:10 +0x1\n\nPrevious write at 0x00c000123456 by goroutine 8:\n  github.com/sitewatch/sitewatch/sinks.(*Sink).add()\n      /src/sinks/sink.go:20 +0x1\n==================\n"
	if got := dataRaces(other); len(got) != 1 || !strings.Contains(got[0], "sinks.(*Sink).flush") {
		t.Fatalf("want exactly the sinks race reported, got %d: %v", len(got), got)
	}
}
