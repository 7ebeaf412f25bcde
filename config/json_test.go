package config

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

// TestParseSiteJSONSameRulesAsFile checks that a site written as JSON (the
// sites API, the sitewatch_sites topic) is refused for the same reason, in
// the same words and naming the same field, as the same site in a sites
// file: there is one set of site rules.
func TestParseSiteJSONSameRulesAsFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, json, yaml, field, msg string
	}{
		{"interval short", `{"url": "https://a.example/", "interval": "500ms"}`, "url: https://a.example/\n    interval: 500ms",
			"interval", `"500ms" is under the minimum of 1s`},
		{"bad duration", `{"url": "https://a.example/", "timeout": "5x"}`, "url: https://a.example/\n    timeout: 5x",
			"timeout", `"5x" is not a duration (e.g. 30s, 5m)`},
		{"duration as number", `{"url": "https://a.example/", "interval": 30}`, "url: https://a.example/\n    interval: 30",
			"interval", `"30" is not a duration (e.g. 30s, 5m)`},
		{"timeout over interval", `{"url": "https://a.example/", "interval": "5s", "timeout": "10s"}`, "url: https://a.example/\n    interval: 5s\n    timeout: 10s",
			"timeout", `"10s" is longer than the interval (5s); a check must end before the next one starts`},
		{"scheme", `{"url": "ftp://a.example/"}`, "url: ftp://a.example/", "url", `scheme "ftp" is not http or https`},
		{"no url", `{"name": "A"}`, "name: A", "url", "missing; every site needs an http or https URL"},
		{"unknown field", `{"url": "https://a.example/", "intervall": "5s"}`, "url: https://a.example/\n    intervall: 5s",
			"intervall", "unknown field; did you mean interval?"},
		{"regexp", `{"url": "https://a.example/", "regexp": "a(b"}`, "url: https://a.example/\n    regexp: a(b",
			"regexp", `"a(b" is not valid RE2 syntax: missing closing )`},
		{"method", `{"url": "https://a.example/", "method": "POST"}`, "url: https://a.example/\n    method: POST",
			"method", `"POST" is not GET or HEAD`},
		{"status string", `{"url": "https://a.example/", "expect_status": ["200"]}`, "url: https://a.example/\n    expect_status: [\"200\"]",
			"expect_status", `want a status code (100..599), got the string "200"`},
		{"status range", `{"url": "https://a.example/", "expect_status": [600]}`, "url: https://a.example/\n    expect_status: [600]",
			"expect_status", `600 is not an HTTP status code (100..599)`},
		{"header twice", `{"url": "https://a.example/", "headers": {"X-A": "1", "x-a": "2"}}`, "url: https://a.example/\n    headers: {X-A: \"1\", x-a: \"2\"}",
			"headers", `"x-a" is set twice (first as "X-A" at line 0; header names ignore case)`},
		{"header value", `{"url": "https://a.example/", "headers": {"X-A": "a\nb"}}`, "url: https://a.example/\n    headers: {X-A: \"a\\nb\"}",
			"headers", `the value of "X-A" has a control character (such as a line break)`},
		{"url null", `{"url": null}`, "url: null", "url", "want an http or https URL, got no value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseSiteJSON("body", []byte(tc.json))
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("JSON: error %v, want a *config.Error", err)
			}
			if je.Field != tc.field || je.Msg != tc.msg || je.File != "body" || je.Line != 0 {
				t.Errorf("JSON: field %q msg %q (file %q line %d), want field %q msg %q", je.Field, je.Msg, je.File, je.Line, tc.field, tc.msg)
			}
			_, err = Parse("sites.yaml", []byte("sites:\n  - "+tc.yaml+"\n"))
			var ye *Error
			if !errors.As(err, &ye) {
				t.Fatalf("YAML: error %v, want a *config.Error", err)
			}
			// Line numbers exist only in the file (the header case quotes one).
			if ye.Field != je.Field || (ye.Msg != je.Msg && tc.name != "header twice") {
				t.Errorf("the file says %q: %q, the JSON %q: %q", ye.Field, ye.Msg, je.Field, je.Msg)
			}
		})
	}
}

func TestParseSiteJSONShape(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, json, field, msg string }{
		{"not an object", `["https://a.example/"]`, "", "want a JSON object with the site's fields (url, name, interval, …)"},
		{"key twice", `{"url": "https://a.example/", "url": "https://b.example/"}`, "url", "set twice"},
		{"trailing data", `{"url": "https://a.example/"} {}`, "", "invalid JSON: data after the object"},
		{"truncated", `{"url": "https://a.example/"`, "", "invalid JSON: unexpected end of the input"},
		{"too deep", `{"url": "https://a.example/", "headers": [[[[[[[[[[1]]]]]]]]]]}`, "headers", "invalid JSON: nested too deeply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseSiteJSON("body", []byte(tc.json))
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("error %v, want a *config.Error", err)
			}
			if je.Field != tc.field || je.Msg != tc.msg {
				t.Errorf("field %q msg %q, want %q %q", je.Field, je.Msg, tc.field, tc.msg)
			}
		})
	}
}

func TestParseSiteJSONGood(t *testing.T) {
	t.Parallel()
	site, extra, err := ParseSiteJSON("body", []byte(`{"v": 1, "url": "https://a.example/", "interval": "5s",
		"regexp": "ok\\d", "expect_status": [200, 204], "method": "HEAD", "headers": {"X-A": "1"}, "owner": "api"}`), "v", "owner")
	if err != nil {
		t.Fatal(err)
	}
	if string(extra["v"]) != "1" || string(extra["owner"]) != `"api"` {
		t.Errorf("extra %q", extra)
	}
	if site.URL != "https://a.example/" || site.Name != site.URL || site.Interval != 5*time.Second ||
		site.Timeout != 5*time.Second || site.Regexp.String() != `ok\d` || site.Method != "HEAD" ||
		!reflect.DeepEqual(site.ExpectStatus, []int{200, 204}) || site.Headers["X-A"] != "1" {
		t.Errorf("site %+v", site)
	}
	// The built-in defaults apply as in a file without a defaults section.
	site, _, err = ParseSiteJSON("body", []byte(`{"url": "https://a.example/"}`))
	if err != nil || site.Interval != DefaultInterval || site.Timeout != DefaultTimeout || site.Method != DefaultMethod {
		t.Errorf("defaults: %+v, %v", site, err)
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		30 * time.Second: "30s", 5 * time.Minute: "5m", 90 * time.Minute: "1h30m", time.Hour + time.Second: "1h1s",
		1500 * time.Millisecond: "1.5s", 250 * time.Millisecond: "250ms",
	} {
		got := FormatDuration(d)
		back, err := time.ParseDuration(got)
		if got != want || err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q (reads back as %v, %v), want %q", d, got, back, err, want)
		}
	}
}

// TestParseSiteJSONTLS: as JSON, a site carries its CA certificates as
// PEM text; a ca_file path (to be read on whichever machine decodes the
// site) is refused.
func TestParseSiteJSONTLS(t *testing.T) {
	t.Parallel()
	pem, err := os.ReadFile("testdata/tls_ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"url": "https://a.example/", "tls": map[string]any{"ca_pem": string(pem), "server_name": "internal"}})
	site, _, err := ParseSiteJSON("body", body)
	if err != nil || site.TLS == nil || string(site.TLS.CAPEM) != string(pem) || site.TLS.ServerName != "internal" {
		t.Fatalf("site %+v, %v", site.TLS, err)
	}
	for body, want := range map[string]string{
		`{"url": "https://a.example/", "tls": {"ca_file": "/etc/passwd"}}`:  "tls.ca_file: unknown field; known fields: ca_pem, server_name, insecure_skip_verify",
		`{"url": "https://a.example/", "tls": {"ca_pem": "not a cert"}}`:    "tls.ca_pem: the value has no PEM certificate (want -----BEGIN CERTIFICATE-----)",
		`{"url": "http://a.example/", "tls": {"server_name": "x"}}`:         "tls: the site is http://; tls settings apply to https sites only",
		`{"url": "https://a.example/", "tls": {"insecure_skip_verify": 1}}`: "tls.insecure_skip_verify: want true or false, got the number 1",
	} {
		_, _, err := ParseSiteJSON("body", []byte(body))
		var ce *Error
		if !errors.As(err, &ce) || ce.Field+": "+ce.Msg != want {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
