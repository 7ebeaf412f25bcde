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
	for _, width := range []int{60, 80, 100, 132} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			out := Render(s, Layout{Width: width, Title: strings.Repeat("t", 200)})
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range lines {
				if n := utf8.RuneCountInString(l); n > width {
					t.Errorf("line of %d runes exceeds width %d: %q", n, width, l)
				}
			}
			// Columns stay aligned: STATUS starts at the same place on
			// every row.
			header := lines[2]
			at := strings.Index(header, "STATUS")
			for _, l := range lines[3:] {
				rs := []rune(l)
				if len(rs) < at || rs[at-1] != ' ' || rs[at-2] != ' ' {
					t.Errorf("row not aligned with header at %d:\n%s\n%s", at, header, l)
				}
			}
			// The long URL keeps its host and its distinguishing end.
			var row string
			for _, l := range lines {
				if strings.Contains(l, "0042") {
					row = l
				}
			}
			if row == "" || !strings.HasPrefix(row, "https") || !strings.Contains(row, "…") {
				t.Errorf("long URL not cut in the middle: %q", row)
			}
		})
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
		{truncMiddle, "abcdefghij", 7, "abc…hij"},
		{truncMiddle, "abcdefghij", 6, "ab…hij"},
		{truncMiddle, "ünïcödé-ünïcödé", 5, "ün…dé"},
	}
	for _, c := range cases {
		if got := c.fn(c.s, c.w); got != c.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.s, c.w, got, c.want)
		}
	}
}
