package siterules

import (
	"testing"
	"time"
)

func TestStatusExpected(t *testing.T) {
	cases := []struct {
		code   int
		expect []int
		want   bool
	}{
		{200, nil, true}, {301, nil, true}, {399, nil, true}, {199, nil, false}, {404, nil, false},
		{404, []int{404}, true}, {200, []int{404}, false}, {204, []int{200, 204}, true},
	}
	for _, c := range cases {
		if got := StatusExpected(c.code, c.expect); got != c.want {
			t.Errorf("StatusExpected(%d, %v) = %v, want %v", c.code, c.expect, got, c.want)
		}
	}
	for expect, want := range map[string]string{"": "2xx or 3xx", "200": "200", "200,204": "200 or 204", "200,204,301": "one of 200, 204, 301"} {
		var codes []int
		switch expect {
		case "200":
			codes = []int{200}
		case "200,204":
			codes = []int{200, 204}
		case "200,204,301":
			codes = []int{200, 204, 301}
		}
		if got := DescribeExpected(codes); got != want {
			t.Errorf("DescribeExpected(%v) = %q, want %q", codes, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://example.com/":  "",
		"http://127.0.0.1:8080": "",
		"":                      "empty; want an http or https URL",
		" https://example.com":  "has spaces around it",
		"example.com/x":         "not an absolute URL; want one starting with http:// or https://",
		"ftp://example.com/":    `scheme "ftp" is not http or https`,
		"https:///path":         "no host",
		"http://[::1":           `not a valid URL: missing ']' in host`,
	} {
		got := ""
		if err := CheckURL(raw); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("CheckURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	if Method("") != "GET" || Method("HEAD") != "HEAD" {
		t.Errorf("Method: %q %q", Method(""), Method("HEAD"))
	}
	if Timeout(0) != 10*time.Second || Timeout(time.Second) != time.Second {
		t.Errorf("Timeout: %v %v", Timeout(0), Timeout(time.Second))
	}
}
