package report

import (
	"testing"
	"time"
)

func TestTableCells(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Alpha", "Alpha                   "},
		{"http://127.0.0.1:8099/content", "http://127.…8099/content"},
		{"évènement\x1b[31m rouge", "évènement?[31m rouge    "},
		{"ünïcödé-ünïcödé-ünïcödé-ünïcödé", "ünïcödé-ünï…cödé-ünïcödé"}, // runes, not bytes
	} {
		if got := cell(c.in); got != c.want {
			t.Errorf("cell(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {300 * time.Microsecond, "<0.01s"}, {480 * time.Millisecond, "0.48s"}, {59500 * time.Millisecond, "59.5s"},
		{270 * time.Second, "4m30s"}, {2 * time.Minute, "2m"}, {125 * time.Minute, "2h5m"}, {76 * time.Hour, "3d4h"}, {-24 * time.Second, "-24s"},
	} {
		if got := human(c.d); got != c.want {
			t.Errorf("human(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		p    *float64
		want string
	}{{nil, "-"}, {f(45), "45.0%"}, {f(-25.55), "-25.5%"}, {f(-1090.5), "-1090%"}, {f(-99900), "<-9999%"}} {
		if got := pct1(c.p); got != c.want || len([]rune(got)) > 8 {
			t.Errorf("pct1(%v) = %q, want %q in 8 columns", c.p, got, c.want)
		}
	}
	if got := pct(f(99.99969)); got != "99.999%" {
		t.Errorf("pct(99.99969) = %q: rounded up", got)
	}
}
