package codecs

import (
	"strings"
	"testing"

	"github.com/sitewatch/sitewatch/config"
)

func TestSiteRoundTrip(t *testing.T) {
	t.Parallel()
	site, _, err := config.ParseSiteJSON("test", []byte(`{"url": "https://a.example/", "name": "A", "interval": "90s",
		"timeout": "2500ms", "regexp": "ok", "expect_status": [200], "method": "HEAD", "headers": {"X-A": "1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	value, err := EncodeSite(site, FileOwner("/etc/sites.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"url":"https://a.example/","name":"A","interval":"1m30s","timeout":"2.5s","regexp":"ok","expect_status":[200],"method":"HEAD","headers":{"X-A":"1"},"owner":"file:/etc/sites.yaml"}`
	if string(value) != want {
		t.Errorf("value\n %s\nwant\n %s", value, want)
	}
	back, owner, err := DecodeSite(site.URL, value)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeSite(back, owner)
	if string(again) != want || owner != "file:/etc/sites.yaml" {
		t.Errorf("round trip: %s, owner %q", again, owner)
	}
}

func TestDecodeSiteBad(t *testing.T) {
	t.Parallel()
	good := `"url":"https://a.example/","interval":"30s"`
	tests := []struct{ name, key, value, want string }{
		{"garbage", "https://a.example/", "\x00\xffnot json", "want a JSON object"},
		{"no version", "https://a.example/", `{` + good + `,"owner":"api"}`, "v: missing"},
		{"version 2", "https://a.example/", `{"v":2,` + good + `,"owner":"api"}`, "v: version 2, this build reads 1"},
		{"no owner", "https://a.example/", `{"v":1,` + good + `}`, "owner: missing"},
		{"bad owner", "https://a.example/", `{"v":1,` + good + `,"owner":"file:"}`, `owner: "file:" is neither`},
		{"owner number", "https://a.example/", `{"v":1,` + good + `,"owner":7}`, "owner: want a string, got 7"},
		{"key differs", "https://b.example/", `{"v":1,` + good + `,"owner":"api"}`, `differs from the record's key "https://b.example/"`},
		{"site rule", "https://a.example/", `{"v":1,"url":"https://a.example/","interval":"1ms","owner":"api"}`, `interval: "1ms" is under the minimum of 1s`},
		{"unknown field", "https://a.example/", `{"v":1,` + good + `,"owner":"api","colour":"red"}`, "colour: unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := DecodeSite(tc.key, []byte(tc.value))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sitewatch_sites value") {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
	if _, err := EncodeSite(config.Site{URL: "https://a.example/"}, "someone"); err == nil {
		t.Error("EncodeSite accepted an unknown owner")
	}
}

// TestSiteTLSRoundTrip: a site's CA certificates travel in the value, so an
// emitter without the sites file's ca_file can check the site.
func TestSiteTLSRoundTrip(t *testing.T) {
	t.Parallel()
	f, err := config.Parse("../config/sites.yaml", []byte("sites:\n  - url: https://a.example/\n    tls: {ca_file: testdata/tls_ca.pem, server_name: internal}\n"))
	if err != nil {
		t.Fatal(err)
	}
	value, err := EncodeSite(f.Sites[0], OwnerAPI)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := DecodeSite("https://a.example/", value)
	if err != nil {
		t.Fatal(err)
	}
	if back.TLS == nil || string(back.TLS.CAPEM) != string(f.Sites[0].TLS.CAPEM) || back.TLS.ServerName != "internal" || strings.Contains(string(value), "ca_file") {
		t.Errorf("tls after the round trip: %+v (value %s)", back.TLS, value)
	}
}

// A site's alert thresholds travel through the registry: without them a
// site published from a file with alert: {failures: 5} alerted at the
// processor's default once the processor took its sites from the registry.
func TestSiteAlertRoundTrip(t *testing.T) {
	t.Parallel()
	site, _, err := config.ParseSiteJSON("test", []byte(`{"url": "https://a.example/", "alert": {"failures": 5, "successes": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	value, err := EncodeSite(site, OwnerAPI)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(value), `"alert":{"failures":5,"successes":1}`) {
		t.Errorf("value %s has no alert thresholds", value)
	}
	back, _, err := DecodeSite(site.URL, value)
	if err != nil {
		t.Fatal(err)
	}
	if back.Alert != (config.Alert{Failures: 5, Successes: 1}) {
		t.Errorf("decoded thresholds %+v, want failures 5, successes 1", back.Alert)
	}
	if _, _, err := config.ParseSiteJSON("test", []byte(`{"url": "https://a.example/", "alert": {"failures": 0}}`)); err == nil || !strings.Contains(err.Error(), "alert") {
		t.Errorf("alert failures 0: %v, want an error naming alert", err)
	}
}
