package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestLoadBad checks the exact one-line message of every bad case in
// testdata/: what the user reads is the feature.
func TestLoadBad(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"alert_list":                     `:3: site "https://a.example/": alert: want a mapping such as {failures: 3, successes: 2}, got a list`,
		"alert_unknown":                  `:4: site "https://a.example/": alert.failure: unknown field; did you mean failures?`,
		"alert_string":                   `:4: site "https://a.example/": alert.failures: want a number of consecutive checks (1..100), got the string "3"`,
		"alert_zero":                     `:5: site "https://a.example/": alert.successes: 0 is out of range; want 1..100 consecutive checks`,
		"alert_huge":                     `:4: site "https://a.example/": alert.failures: 1000 is out of range; want 1..100 consecutive checks`,
		"alert_float":                    `:4: site "https://a.example/": alert.failures: want a number of consecutive checks (1..100), got the number 2.5`,
		"alert_twice":                    `:5: site "https://a.example/": alert.failures: set twice (first at line 4)`,
		"comments_only":                  ":1: sites: missing; the file is empty",
		"control_char":                   `:3: invalid YAML: control characters are not allowed`,
		"defaults_bad_interval":          `:2: defaults.interval: "soon" is not a duration (e.g. 30s, 5m)`,
		"defaults_not_mapping":           `:1: defaults: want a mapping with interval and timeout, got the string "30s"`,
		"defaults_timeout_over_interval": `:3: defaults.timeout: "10s" is longer than the interval (5s); a check must end before the next one starts`,
		"duplicate_key":                  `:4: site "https://a.example/": interval: set twice (first at line 3)`,
		"duplicate_top":                  `:3: sites: set twice (first at line 1)`,
		"duplicate_url":                  `:4: site "https://a.example/": url: listed twice (first at line 2)`,
		"duration":                       `:3: site "https://a.example/": interval: "5x" is not a duration (e.g. 30s, 5m)`,
		"duration_list":                  `:3: site "https://a.example/": interval: want a duration (e.g. 30s, 5m), got a list`,
		"duration_no_unit":               `:3: site "https://a.example/": timeout: "30" is not a duration (e.g. 30s, 5m)`,
		"empty":                          `:1: sites: missing; the file is empty`,
		"field_before_url":               `:2: site "https://a.example/": interval: "5x" is not a duration (e.g. 30s, 5m)`,
		"first_error_wins":               `:4: site "https://a.example/": timeout: "5x" is not a duration (e.g. 30s, 5m)`,
		"header_name":                    `:4: site "https://a.example/": headers: "User Agent" is not a valid header name`,
		"header_null":                    `:4: site "https://a.example/": headers: want a value for "X-Empty" ("" for an empty one), got no value`,
		"header_twice":                   `:5: site "https://a.example/": headers: "user-agent" is set twice (first as "User-Agent" at line 4; header names ignore case)`,
		"header_value":                   `:4: site "https://a.example/": headers: the value of "X-Note" has a control character (such as a line break)`,
		"headers_list":                   `:3: site "https://a.example/": headers: want a mapping of header names to values (e.g. {User-Agent: sitewatch}), got a list`,
		"interval_negative":              `:3: site "https://a.example/": interval: "-5s" is under the minimum of 1s`,
		"interval_short":                 `:3: site "https://a.example/": interval: "500ms" is under the minimum of 1s`,
		"invalid_utf8":                   `:3: invalid YAML: incomplete UTF-8 octet sequence`,
		"merge_in_site":                  `:3: site "https://b.example/": <<: merge keys are not supported; write the fields out`,
		"method":                         `:3: site "https://a.example/": method: "POST" is not GET or HEAD`,
		"method_lower":                   `:3: site "https://a.example/": method: "get" is not GET or HEAD`,
		"no_sites_key":                   `:1: sites: missing; list the websites to check under "sites:"`,
		"regexp":                         `:3: site "https://a.example/": regexp: "Example (Domain" is not valid RE2 syntax: missing closing )`,
		"regexp_empty":                   `:3: site "https://a.example/": regexp: empty; it would match every body, remove the field instead`,
		"regexp_perl":                    `:3: site "https://a.example/": regexp: "(?<=x)y" is not valid RE2 syntax: RE2 has no lookahead or lookbehind`,
		"site_string":                    `:2: site #1: want a mapping, got the string "https://a.example/"; write "- url: https://a.example/"`,
		"sites_empty":                    `:1: sites: the list is empty; add at least one site`,
		"sites_mapping":                  `:2: sites: want a list of sites ("- url: https://example.com/"), got a mapping`,
		"sites_null":                     `:1: sites: want a list of sites ("- url: https://example.com/"), got no value`,
		"status_range":                   `:3: site "https://a.example/": expect_status: 600 is not an HTTP status code (100..599)`,
		"status_scalar":                  `:3: site "https://a.example/": expect_status: want a list of status codes (e.g. [200, 301]), got the number 200`,
		"status_string":                  `:3: site "https://a.example/": expect_status: want a status code (100..599), got the string "200"`,
		"status_twice":                   `:3: site "https://a.example/": expect_status: 200 is listed twice`,
		"syntax":                         `:2: invalid YAML: did not find expected '-' indicator (at or after this line)`,
		"syntax_colon":                   `:3: invalid YAML: mapping values are not allowed in this context`,
		"syntax_flow":                    `:2: invalid YAML: did not find expected ',' or ']' (at or after this line)`,
		"syntax_quote":                   `:3: invalid YAML: found unexpected end of stream`,
		"syntax_tab":                     `:2: invalid YAML: found character that cannot start any token`,
		"timeout_over_default_interval":  `:5: site "https://a.example/": timeout: "25s" is longer than the interval (20s); a check must end before the next one starts`,
		"timeout_over_interval":          `:4: site "https://a.example/": timeout: "45s" is longer than the interval (30s); a check must end before the next one starts`,
		"timeout_zero":                   `:3: site "https://a.example/": timeout: "0s" must be more than zero`,
		"top_list":                       `:1: want a mapping with a "sites:" list at the top, got a list`,
		"two_documents":                  `:3: a second YAML document (after ---); keep every site in one document`,
		"unknown_alias":                  `:3: invalid YAML: alias *common refers to no anchor &common before it`,
		"unknown_defaults":               `:3: defaults.retries: unknown field; known fields: interval, timeout`,
		"unknown_field":                  `:3: site "https://a.example/": intervall: unknown field; did you mean interval?`,
		"unknown_field_far":              `:3: site "https://a.example/": colour: unknown field; known fields: url, name, interval, timeout, regexp, expect_status, method, headers, tls, alert`,
		"unknown_top":                    `:1: site: unknown field; did you mean sites?`,
		"unknown_top_anchor":             `:1: common: unknown field; known fields: defaults, sites`,
		"url_ftp":                        `:2: site "ftp://a.example/file": url: scheme "ftp" is not http or https`,
		"url_invalid":                    `:2: site "https://a.example:port/": url: not a valid URL: invalid port ":port" after host`,
		"url_list":                       `:2: site #1: url: want an http or https URL, got a list`,
		"url_missing":                    `:3: site #2: url: missing; every site needs an http or https URL`,
		"url_no_host":                    `:2: site "https:///path": url: no host`,
		"url_null":                       `:2: site #1: url: want an http or https URL, got no value`,
		"url_relative":                   `:2: site "/health": url: not an absolute URL; want one starting with http:// or https://`,
		"url_spaces":                     `:2: site " https://a.example/": url: has spaces around it`,
		"tls_not_mapping":                `:3: site "https://a.example/": tls: want a mapping with ca_file, server_name or insecure_skip_verify, got the boolean true`,
		"tls_unknown_field":              `:4: site "https://a.example/": tls.ca_fil: unknown field; did you mean ca_file?`,
		"tls_ca_missing":                 `:3: site "https://a.example/": tls.ca_file: testdata/no-such-ca.pem does not exist`,
		"tls_ca_not_pem":                 `:4: site "https://a.example/": tls.ca_file: testdata/bad_tls_ca_not_pem.yaml has no PEM certificate (want -----BEGIN CERTIFICATE-----)`,
		"tls_insecure_string":            `:4: site "https://a.example/": tls.insecure_skip_verify: want true or false, got the string "yes"`,
		"tls_insecure_with_ca":           `:4: site "https://a.example/": tls.ca_file: has no use with insecure_skip_verify: true, which accepts any certificate; remove one of them`,
		"tls_server_name":                `:4: site "https://a.example/": tls.server_name: "https://b.example/" is not a host name (no scheme, port or path)`,
		"tls_http":                       `:4: site "http://a.example/": tls: the site is http://; tls settings apply to https sites only`,
	}

	// A bad file without an expected message would be a case nobody checks.
	files, err := filepath.Glob("testdata/bad_*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "bad_"), ".yaml")
		if _, ok := tests[name]; !ok {
			t.Errorf("%s has no expected error in the table", f)
		}
	}

	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "bad_"+name+".yaml")
			want = path + want
			f, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) = %d sites, want error %q", path, len(f.Sites), want)
			}
			if got := err.Error(); got != want {
				t.Errorf("Load(%s) error\n got: %s\nwant: %s", path, got, want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load(%s) error %T is not a *config.Error", path, err)
			}
			if ce.File != path || ce.Line < 1 {
				t.Errorf("Error{File: %q, Line: %d}, want File %q and a line", ce.File, ce.Line, path)
			}
		})
	}
}

// TestErrorFields checks what callers read with errors.As, beyond the text.
func TestErrorFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want Error
	}{
		{"bad_duration.yaml", Error{Line: 3, Site: "https://a.example/", Index: 1, Field: "interval"}},
		{"bad_url_missing.yaml", Error{Line: 3, Site: "", Index: 2, Field: "url"}},
		{"bad_unknown_defaults.yaml", Error{Line: 3, Field: "defaults.retries"}},
		{"bad_duplicate_url.yaml", Error{Line: 4, Site: "https://a.example/", Index: 3, Field: "url"}},
		{"bad_unknown_field.yaml", Error{Line: 3, Site: "https://a.example/", Index: 1, Field: "intervall"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", tt.file)
			_, err := Load(path)
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("Load(%s) = %v, want a *config.Error", path, err)
			}
			tt.want.File, tt.want.Msg = path, got.Msg
			if *got != tt.want {
				t.Errorf("Load(%s) error = %+v, want %+v", path, *got, tt.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"site by url", Error{File: "s.yaml", Line: 12, Site: "https://x/", Index: 3, Field: "interval", Msg: "bad"}, `s.yaml:12: site "https://x/": interval: bad`},
		{"site by index", Error{File: "s.yaml", Line: 5, Index: 3, Field: "url", Msg: "missing"}, `s.yaml:5: site #3: url: missing`},
		{"no site", Error{File: "s.yaml", Line: 2, Field: "defaults.timeout", Msg: "bad"}, `s.yaml:2: defaults.timeout: bad`},
		{"no line", Error{File: "s.yaml", Msg: "bad"}, `s.yaml: bad`},
		{"line breaks stay on one line", Error{File: "s.yaml", Line: 1, Field: "a\nb", Msg: "x\r\ny"}, `s.yaml:1: a\nb: x\r\ny`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s: Error() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestLoadGood checks every field of a file that sets every field, and the
// defaults of a site that sets none.
func TestLoadGood(t *testing.T) {
	t.Parallel()
	f, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile("testdata/tls_ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != "testdata/good.yaml" {
		t.Errorf("Path = %q", f.Path)
	}
	want := []Site{
		{
			URL: "https://example.com/", Name: "Example", Method: "GET",
			Interval: 30 * time.Second, Timeout: 5 * time.Second,
			ExpectStatus: []int{200, 301},
			Headers:      map[string]string{"User-Agent": "sitewatch", "X-Trace": "1"},
			Line:         6,
		},
		{
			// Only a URL: the name is the URL, the file's defaults apply.
			URL: "http://example.org/health", Name: "http://example.org/health", Method: "GET",
			Interval: 2 * time.Minute, Timeout: 15 * time.Second,
			Line: 16,
		},
		{
			URL: "https://example.net:8443/status?verbose=1", Name: "https://example.net:8443/status?verbose=1", Method: "HEAD",
			Interval: 2 * time.Minute, Timeout: 15 * time.Second,
			ExpectStatus: []int{204},
			Headers:      map[string]string{"Accept": "application/json", "Authorization": "Bearer abc.def"},
			Line:         19,
		},
		{
			// The default timeout (15s) is clamped to the short interval.
			URL: "https://fast.example.com/", Name: "https://fast.example.com/", Method: "GET",
			Interval: 5 * time.Second, Timeout: 5 * time.Second,
			Alert: Alert{Failures: 5, Successes: 1},
			Line:  28,
		},
		{
			// ca_file is relative to the sites file and read at load.
			URL: "https://internal.example.com/", Name: "https://internal.example.com/", Method: "GET",
			Interval: 2 * time.Minute, Timeout: 15 * time.Second,
			TLS:  &TLS{CAFile: "tls_ca.pem", CAPEM: caPEM, ServerName: "internal.corp"},
			Line: 34,
		},
		{
			URL: "https://self-signed.example.com/", Name: "https://self-signed.example.com/", Method: "GET",
			Interval: 2 * time.Minute, Timeout: 15 * time.Second,
			TLS:  &TLS{InsecureSkipVerify: true},
			Line: 36,
		},
	}
	wantRegexps := []string{"Example Domain", "", "", `(?i)ok\s*$`, "", ""}
	if len(f.Sites) != len(want) {
		t.Fatalf("got %d sites, want %d", len(f.Sites), len(want))
	}
	for i, got := range f.Sites {
		re := ""
		if got.Regexp != nil {
			re = got.Regexp.String()
		}
		if re != wantRegexps[i] {
			t.Errorf("site %d: Regexp = %q, want %q", i+1, re, wantRegexps[i])
		}
		got.Regexp = nil
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("site %d:\n got %+v\nwant %+v", i+1, got, want[i])
		}
	}
	if !f.Sites[0].Regexp.MatchString("<h1>Example Domain</h1>") {
		t.Error("regexp of site 1 does not match its page")
	}
}

func TestBuiltInDefaults(t *testing.T) {
	t.Parallel()
	f, err := Parse("s.yaml", []byte("sites:\n  - url: https://a.example/\n  - url: https://b.example/\n    interval: 3s\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.Sites[0], f.Sites[1]
	if a.Interval != DefaultInterval || a.Timeout != DefaultTimeout || a.Method != "GET" || a.ExpectStatus != nil || a.Headers != nil || a.Regexp != nil {
		t.Errorf("site without options = %+v, want built-in defaults", a)
	}
	if b.Interval != 3*time.Second || b.Timeout != 3*time.Second {
		t.Errorf("3s site: interval %v timeout %v, want the timeout clamped to 3s", b.Interval, b.Timeout)
	}
	if DefaultInterval != 60*time.Second || DefaultTimeout != 10*time.Second {
		t.Errorf("defaults changed: interval %v timeout %v, the contract says 60s and 10s", DefaultInterval, DefaultTimeout)
	}
}

func TestEdgeValuesAccepted(t *testing.T) {
	t.Parallel()
	f, err := Parse("s.yaml", []byte(`
sites:
  - url: HTTPS://A.example/        # scheme case does not matter
    interval: 1s                    # the minimum
    timeout: 1s                     # equal to the interval
    expect_status: [100, 599]       # both ends of the range
    headers: {}
  - url: http://[::1]:8080/x
    expect_status: []               # empty means the default
    name: 42                        # a number is a name like any other
`))
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Sites[0]; s.Interval != time.Second || s.Timeout != time.Second || !s.StatusExpected(599) || s.Headers != nil {
		t.Errorf("site 1 = %+v", s)
	}
	if s := f.Sites[1]; s.ExpectStatus != nil || !s.StatusExpected(204) || s.Name != "42" {
		t.Errorf("site 2 = %+v", s)
	}
}

func TestAliases(t *testing.T) {
	t.Parallel()
	f, err := Parse("s.yaml", []byte(`
sites:
  - url: https://a.example/
    headers: &common {User-Agent: sitewatch}
    regexp: &re "ok"
  - url: https://b.example/
    headers: *common
    regexp: *re
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Sites[1].Headers["User-Agent"]; got != "sitewatch" {
		t.Errorf("aliased header = %q", got)
	}
	if f.Sites[1].Regexp == nil || f.Sites[1].Regexp.String() != "ok" {
		t.Errorf("aliased regexp = %v", f.Sites[1].Regexp)
	}

	// A site that is its own alias, and a list that contains itself, are
	// errors, not endless loops.
	for _, src := range []string{"sites: &s [*s]\n", "sites:\n  - &a {url: https://a.example/, headers: *a}\n"} {
		if _, err := Parse("s.yaml", []byte(src)); err == nil {
			t.Errorf("Parse(%q) succeeded", src)
		}
	}
}

// TestAliasBomb checks that a small file expanding to huge data through
// aliases is refused instead of eating the memory.
func TestAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("sites:\n  - url: https://a.example/\n    headers: &h\n")
	for i := range 2_000 {
		fmt.Fprintf(&b, "      X-H%d: v\n", i)
	}
	for i := range 2_000 {
		fmt.Fprintf(&b, "  - {url: https://s%d.example/, headers: *h}\n", i)
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too much data through YAML aliases") {
		t.Fatalf("Parse(alias bomb) = %v, want the alias expansion error", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("error %q does not name the file", err)
	}
}

// TestExample keeps the sample shipped to users loadable and sensible.
func TestExample(t *testing.T) {
	t.Parallel()
	f, err := Load("../examples/sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sites) < 5 {
		t.Errorf("example has %d sites, want a realistic handful", len(f.Sites))
	}
	var regexps, statuses, heads, clamped int
	for _, s := range f.Sites {
		if s.Name == s.URL {
			t.Errorf("%s: example sites should show a name", s.URL)
		}
		if s.Regexp != nil {
			regexps++
		}
		if s.ExpectStatus != nil {
			statuses++
		}
		if s.Method == "HEAD" {
			heads++
		}
		if s.Timeout == s.Interval {
			clamped++
		}
	}
	if regexps == 0 || statuses == 0 || heads == 0 || clamped == 0 {
		t.Errorf("example should show regexps (%d), expect_status (%d), HEAD (%d) and a clamped timeout (%d)", regexps, statuses, heads, clamped)
	}
}

func TestStatusExpected(t *testing.T) {
	t.Parallel()
	def := Site{}
	listed := Site{ExpectStatus: []int{200, 404}}
	tests := []struct {
		site Site
		code int
		want bool
	}{
		{def, 0, false},
		{def, 199, false},
		{def, 200, true},
		{def, 301, true},
		{def, 399, true},
		{def, 400, false},
		{def, 503, false},
		{listed, 200, true},
		{listed, 404, true},
		{listed, 301, false},
		{listed, 500, false},
	}
	for _, tt := range tests {
		if got := tt.site.StatusExpected(tt.code); got != tt.want {
			t.Errorf("Site{ExpectStatus: %v}.StatusExpected(%d) = %v, want %v", tt.site.ExpectStatus, tt.code, got, tt.want)
		}
	}
}

// sitesFile returns a sites file with n distinct sites.
func sitesFile(n int) []byte {
	var b strings.Builder
	b.WriteString("defaults:\n  interval: 60s\nsites:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - url: https://site%d.example.com/health\n    name: Site %d\n    interval: %ds\n    regexp: \"ok|healthy\"\n    expect_status: [200, 204]\n    headers: {User-Agent: sitewatch}\n", i, i, 30+i%60)
	}
	return []byte(b.String())
}

func TestManySites(t *testing.T) {
	t.Parallel()
	const n = 10_000
	data := sitesFile(n)
	f, err := Parse("many.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sites) != n {
		t.Fatalf("got %d sites, want %d", len(f.Sites), n)
	}
	last := f.Sites[n-1]
	if last.URL != fmt.Sprintf("https://site%d.example.com/health", n-1) || last.Line != 3+(n-1)*6+1 {
		t.Errorf("last site = %s at line %d", last.URL, last.Line)
	}
}

func TestDuplicateFarApart(t *testing.T) {
	t.Parallel()
	const n = 2_000
	dup := append(sitesFile(n), "  - url: https://site17.example.com/health\n"...)
	_, err := Parse("many.yaml", dup)
	want := fmt.Sprintf(`many.yaml:%d: site "https://site17.example.com/health": url: listed twice (first at line %d)`, 3+n*6+1, 3+17*6+1)
	if err == nil || err.Error() != want {
		t.Errorf("duplicate in a big file: got %v, want %s", err, want)
	}
}

func BenchmarkParse10k(b *testing.B) {
	data := sitesFile(10_000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("many.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
