package dashboard

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func ptr(v float64) *float64 { return &v }

// sample is a snapshot of four sites: one up, one down with a response,
// one down without one, one not checked yet.
func sampleSnapshot() Snapshot {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return Snapshot{At: now, Window: 5 * time.Minute, Rows: []Row{
		{URL: "https://example.com/", Name: "Example", Checked: true, Up: true, StatusCode: 200,
			ResponseMS: ptr(123.456), CheckedAt: now.Add(-3 * time.Second), Checks: 10, Failures: 1, P95MS: ptr(150.04),
			LastFailure: now.Add(-(4*time.Minute + 2*time.Second)), LastError: "timeout: context deadline exceeded"},
		{URL: "https://api.example.com/health", Name: "https://api.example.com/health", Checked: true, StatusCode: 503,
			ResponseMS: ptr(80), CheckedAt: now.Add(-1500 * time.Millisecond), Checks: 5, Failures: 5, P95MS: ptr(95),
			LastFailure: now.Add(-1500 * time.Millisecond), LastError: "status 503, expected 2xx or 3xx"},
		{URL: "https://down.example/", Name: "Down", Checked: true, CheckedAt: now.Add(-2 * time.Hour),
			LastFailure: now.Add(-2 * time.Hour), LastError: "dns: lookup down.example:\n  no such host"},
		{URL: "https://new.example/", Name: "New"},
	}}
}

func TestRenderFullWidth(t *testing.T) {
	got := Render(sampleSnapshot(), Layout{Title: "sitewatch · logs: data/sitewatch.log"})
	want := strings.Join([]string{
		"sitewatch · logs: data/sitewatch.log",
		"4 sites: 1 up, 2 down, 1 not checked yet · UP% and P95 over the last 5m · 12:00:00",
		"SITE                            STATUS   CODE   RESP ms     AGE      UP%    P95 ms  LAST FAILURE",
		"https://api.example.com/health  DOWN      503      80.0      1s     0.0%      95.0  1s ago status 503, expected 2xx or 3xx",
		"Down                            DOWN        -         -   2h00m        -         -  2h00m ago dns: lookup down.example: no such host",
		"New                             -           -         -       -        -         -  -",
		"Example                         up        200     123.5      3s    90.0%     150.0  4m02s ago timeout: context deadline exceeded",
		"",
	}, "\n")
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderFitsWidth(t *testing.T) {
	s := sampleSnapshot()
	long := "https://a-very-long-host-name.example.com/some/deep/path/that/goes/on/site-0042"
	s.Rows = append(s.Rows, Row{URL: long, Name: long, Checked: true, Up: true, StatusCode: 200, CheckedAt: s.At})
	for _, width := range []int{60, 80, 100, 132, 200} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			out := Render(s, Layout{Width: width, Title: strings.Repeat("t", 200)})
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range lines {
				if n := utf8.RuneCountInString(l); n > width {
					t.Errorf("line of %d runes exceeds width %d: %q", n, width, l)
				}
			}
			// Columns stay aligned: CODE ends at the same place on every
			// row.
			header := []rune(lines[2])
			end := strings.Index(lines[2], "CODE") + len("CODE")
			for _, l := range lines[3:] {
				rs := []rune(l)
				if len(rs) <= end || rs[end] != ' ' || rs[end-1] == ' ' {
					t.Errorf("row not aligned with header at %d:\n%s\n%s", end, string(header), l)
				}
			}
			// The long URL keeps its start, cut at the end.
			var row string
			for _, l := range lines {
				if strings.HasPrefix(l, "https://a-very") || strings.HasPrefix(l, "a-very") {
					row = l
				}
			}
			if width >= 200 {
				if !strings.Contains(row, long) {
					t.Errorf("long URL cut although it fits: %q", row)
				}
			} else if row == "" || strings.Contains(row, "0042") || !strings.Contains(row, "…") {
				t.Errorf("long URL not cut at its end: %q", row)
			}
		})
	}
}

// TestRenderReasonReadsAt80: the failure reason, the point of the table
// when a site is down, still reads at 80 columns, and a long data-dir
// path is shortened from its start on a line of its own.
func TestRenderReasonReadsAt80(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 3, 10, 0, time.UTC)
	s := Snapshot{At: now, Window: 5 * time.Minute, Rows: []Row{
		{Name: "local 500", Checked: true, StatusCode: 500, ResponseMS: ptr(0.5), CheckedAt: now.Add(-time.Second),
			Checks: 12, Failures: 12, P95MS: ptr(0.6), LastFailure: now.Add(-time.Second), LastError: "status 500, expected 2xx or 3xx"},
		{Name: "a rather long site name that goes on", Checked: true, StatusCode: 0, CheckedAt: now.Add(-2 * time.Second),
			Checks: 3, Failures: 3, LastFailure: now.Add(-2 * time.Second), LastError: "connect: connection refused"},
		{Name: "slow", Checked: true, Up: true, StatusCode: 200, ResponseMS: ptr(12345.6), CheckedAt: now,
			Checks: 3, P95MS: ptr(12400)},
	}}
	dataDir := "/home/someone/projects/monitoring/checkouts/for-the-demo/sitewatch/sitewatch-data"
	l := Layout{Width: 80, Title: "sitewatch · Kafka 127.0.0.1:9092 · Ctrl-C to stop",
		Paths: []Path{{"data", dataDir}, {"logs", dataDir + "/sitewatch.log"}}, Grace: time.Minute}
	out := Render(s, l)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, line := range lines {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("line of %d runes exceeds 80: %q", n, line)
		}
	}
	if lines[0] != l.Title {
		t.Errorf("title %q, want %q", lines[0], l.Title)
	}
	if !strings.HasPrefix(lines[1], "data: …/") || !strings.HasSuffix(lines[1], "/sitewatch/sitewatch-data") {
		t.Errorf("data-dir line %q: want the path shortened from its start, at a slash", lines[1])
	}
	if !strings.HasPrefix(lines[2], "logs: …/") || !strings.HasSuffix(lines[2], "/sitewatch-data/sitewatch.log") {
		t.Errorf("log line %q: want the path shortened from its start, at a slash", lines[2])
	}
	if lines[3] != "window 12:00:00–12:05:00 stored after 12:05:00, final at 12:06:00 (1m grace)" {
		t.Errorf("window line %q: want when the window in progress is stored", lines[3])
	}
	for _, wantIn := range []string{"status 500, expected", "connection refused", "12346", "a rather long…"} {
		if !strings.Contains(out, wantIn) {
			t.Errorf("80 columns lack %q:\n%s", wantIn, out)
		}
	}

	// At 200 columns everything is on one line each, in full.
	wide := Render(s, Layout{Width: 200, Paths: l.Paths})
	for _, wantIn := range []string{"data: " + dataDir + " · logs: " + dataDir + "/sitewatch.log", "status 500, expected 2xx or 3xx",
		"a rather long site name that goes on", "12345.6", "RESP ms"} {
		if !strings.Contains(wide, wantIn) {
			t.Errorf("200 columns lack %q:\n%s", wantIn, wide)
		}
	}
}

func TestRenderHeightKeepsDownSitesVisible(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	s := Snapshot{At: now, Window: time.Minute}
	for i := range 1000 {
		r := Row{URL: fmt.Sprintf("http://127.0.0.1:8080/site/%04d", i), Checked: true, Up: i%250 != 7, StatusCode: 200, CheckedAt: now}
		r.Name = r.URL
		s.Rows = append(s.Rows, r)
	}
	out := Render(s, Layout{Width: 100, Height: 20, Title: "title"})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 20 {
		t.Fatalf("%d lines, want exactly the height 20:\n%s", len(lines), out)
	}
	for i, id := range []string{"0007", "0257", "0507", "0757"} {
		if !strings.Contains(lines[3+i], "/site/"+id) || !strings.Contains(lines[3+i], "DOWN") {
			t.Errorf("line %d = %q, want down site %s first", 3+i, lines[3+i], id)
		}
	}
	if want := "… 984 more sites not shown (0 of them down)"; !strings.HasPrefix(lines[19], want) {
		t.Errorf("last line %q, want it to start with %q", lines[19], want)
	}
	if !strings.HasPrefix(lines[1], "1000 sites: 996 up, 4 down") {
		t.Errorf("summary %q", lines[1])
	}
}

func TestRenderColor(t *testing.T) {
	out := Render(sampleSnapshot(), Layout{Color: true})
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(l, "DOWN"):
			if !strings.HasPrefix(l, ansiRed) || !strings.HasSuffix(l, ansiReset) {
				t.Errorf("down row not red: %q", l)
			}
		case strings.Contains(l, "Example  "):
			if !strings.HasPrefix(l, ansiGreen) {
				t.Errorf("up row not green: %q", l)
			}
		}
	}
	if strings.Contains(Render(sampleSnapshot(), Layout{}), "\x1b") {
		t.Error("escape codes without Color")
	}
}

func TestCompactDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                   "0ms",
		850 * time.Millisecond:         "850ms",
		42 * time.Second:               "42s",
		3*time.Minute + 12*time.Second: "3m12s",
		5 * time.Minute:                "5m",
		2*time.Hour + 5*time.Minute:    "2h05m",
		76 * time.Hour:                 "3d04h",
	} {
		if got := compactDuration(d); got != want {
			t.Errorf("compactDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestTruncation(t *testing.T) {
	cases := []struct {
		fn   func(string, int) string
		s    string
		w    int
		want string
	}{
		{truncEnd, "abcdef", 10, "abcdef"},
		{truncEnd, "abcdef", 4, "abc…"},
		{truncEnd, "abcdef", 1, "a"},
		{truncEnd, "abcdef", 0, ""},
		{truncStart, "/home/u/sitewatch-data", 16, "…/sitewatch-data"},
		{truncStart, "abcdef", 10, "abcdef"},
		{truncStart, "ünïcödé-ünïcödé", 5, "…cödé"},
		{truncStart, "abcdef", 1, "f"},
	}
	for _, c := range cases {
		if got := c.fn(c.s, c.w); got != c.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.s, c.w, got, c.want)
		}
	}
}

// regionsSnapshot is sampleSnapshot with Example checked from two
// regions that disagree.
func regionsSnapshot() Snapshot {
	s := sampleSnapshot()
	s.Rows[0].Regions = []RegionState{{"eu", true, s.At.Add(-3 * time.Second)}, {"us", false, s.At.Add(-5 * time.Second)}}
	return s
}

func TestRenderRegions(t *testing.T) {
	got := Render(regionsSnapshot(), Layout{})
	want := strings.Join([]string{
		"4 sites: 1 up, 2 down, 1 not checked yet · UP% and P95 over the last 5m · 12:00:00",
		"SITE                            STATUS   CODE   RESP ms     AGE      UP%    P95 ms  REGIONS        LAST FAILURE",
		"https://api.example.com/health  DOWN      503      80.0      1s     0.0%      95.0  -              1s ago status 503, expected 2xx or 3xx",
		"Down                            DOWN        -         -   2h00m        -         -  -              2h00m ago dns: lookup down.example: no such host",
		"New                             -           -         -       -        -         -  -              -",
		"Example                         up        200     123.5      3s    90.0%     150.0  eu:up us:DOWN  4m02s ago timeout: context deadline exceeded",
		"",
	}, "\n")
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// At 80 columns (and narrower) every line fits, the column stays,
	// and each region's state reads at 80.
	for _, width := range []int{40, 60, 80, 100} {
		out := Render(regionsSnapshot(), Layout{Width: width})
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > width {
				t.Errorf("width %d: line of %d runes: %q", width, n, l)
			}
		}
		if width >= 80 && (!strings.Contains(lines[1], "REGIONS") || !strings.Contains(out, "eu:up us:DOWN")) {
			t.Errorf("width %d: no REGIONS column with each region's state:\n%s", width, out)
		}
	}
	// Many regions at 80 columns: the list is cut, the line fits.
	many := regionsSnapshot()
	many.Rows[0].Regions = append(many.Rows[0].Regions, RegionState{"ap-southeast", true, many.At}, RegionState{"sa-east", true, many.At})
	out := Render(many, Layout{Width: 80})
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if utf8.RuneCountInString(l) > 80 {
			t.Errorf("four regions at 80 columns: line %q", l)
		}
	}
	if !strings.Contains(out, "eu:up us:DOWN ap…") && !strings.Contains(out, "eu:up us:DOWN…") {
		t.Errorf("four regions at 80 columns: the list is not cut at its end:\n%s", out)
	}
	// One region everywhere: no column (as before regions).
	if out := Render(sampleSnapshot(), Layout{Width: 80}); strings.Contains(out, "REGIONS") {
		t.Errorf("a REGIONS column without regions:\n%s", out)
	}
}
