package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/history"
	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/web"
)

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// Every API answer, good and bad, matches docs/openapi.yaml, on both
// stores; the figures are the seeded ones.
func TestAPIMatchesOpenAPI(t *testing.T) {
	t.Parallel()
	_, router := openAPI(t)
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			sc := historytest.Seed(t, st, time.Now().Add(-time.Minute))
			ts := serve(t, st, seededSites(), sc.Now)
			up, down := history.SiteID(historytest.UpURL), history.SiteID(historytest.DownURL)
			from := url.QueryEscape(sc.Now.Add(-time.Hour).Format(time.RFC3339))
			for _, c := range []struct {
				path      string
				status    int
				field     string
				wantInAns string
			}{
				{"/api/v1/sites", 200, "", `"state":"down"`},
				{"/api/v1/sites/" + up, 200, "", `"uptime_24h":100`},
				{"/api/v1/sites/" + up, 200, "", `"cert_days_left":10,`},
				{"/api/v1/sites/" + down, 200, "", `"tls_not_after":null,"cert_days_left":null`},
				{"/api/v1/sites/" + down, 200, "", `"open":true`},
				{"/api/v1/sites/" + history.SiteID(historytest.HalfURL), 200, "", `"uptime":50`},
				{"/api/v1/sites/nope", 404, "id", ""},
				{"/api/v1/sites/" + up + "/windows", 200, "", `"response_p95_ms":40`},
				{"/api/v1/sites/" + up + "/windows?from=" + from, 200, "", `"checks":5`},
				{"/api/v1/sites/" + up + "/windows?from=yesterday", 400, "from", ""},
				{"/api/v1/sites/" + up + "/windows?from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z", 400, "to", ""},
				{"/api/v1/incidents?open=true", 200, "", `"cause_kind":"connect"`},
				{"/api/v1/incidents?from=" + url.QueryEscape(sc.Now.AddDate(0, 0, -10).Format(time.RFC3339)), 200, "", `"url":"https://up.example/"`},
				{"/api/v1/incidents?open=maybe", 400, "open", ""},
				{"/api/v1/incidents?site=nope", 404, "site", ""},
				{"/badge/" + up + "/uptime.svg?period=1y", 400, "period", ""},
				{"/badge/" + up + "/status.svg", 200, "", ">up<"},
				{"/badge/" + down + "/status.svg", 200, "", ">down<"},
				{"/badge/" + up + "/uptime.svg?period=24h", 200, "", ">100%<"},
				{"/badge/" + up + "/latency.svg", 200, "", ">40.0 ms<"},
			} {
				req, _ := http.NewRequest(http.MethodGet, ts.URL+c.path, nil)
				resp, body := get(t, req.URL.String())
				if resp.StatusCode != c.status {
					t.Errorf("%s: status %d, want %d: %s", c.path, resp.StatusCode, c.status, body)
					continue
				}
				if c.wantInAns != "" && !strings.Contains(string(body), c.wantInAns) {
					t.Errorf("%s: answer lacks %s: %.600s", c.path, c.wantInAns, body)
				}
				if c.field != "" && !strings.Contains(string(body), fmt.Sprintf(`"field":%q`, c.field)) {
					t.Errorf("%s: error does not name field %q: %s", c.path, c.field, body)
				}
				matchesDoc(t, router, req, c.path, resp, body)
			}
		})
	}
}

// Every page costs the same number of queries with 3 sites as with 300:
// no query per site.
func TestQueriesBoundedWhateverTheSites(t *testing.T) {
	t.Parallel()
	st := stores(t)["sqlite"]
	sc := historytest.Seed(t, st, time.Now().Add(-time.Minute))
	many := seededSites()
	for i := range 300 {
		many = append(many, web.Site{URL: fmt.Sprintf("https://s%d.example/", i), Name: fmt.Sprintf("site %d", i)})
	}
	paths := []string{"/", "/?fragment=live", "/sites/" + history.SiteID(historytest.UpURL), "/api/v1/sites",
		"/api/v1/sites/" + history.SiteID(historytest.UpURL), "/api/v1/incidents?open=true", "/badge/" + history.SiteID(historytest.UpURL) + "/uptime.svg"}
	count := func(sites []web.Site) map[string]int64 {
		c := &historytest.Counting{Reader: st}
		ts := serve(t, c, sites, sc.Now)
		out := map[string]int64{}
		for _, p := range paths {
			c.Reset()
			if resp, body := get(t, ts.URL+p); resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
			}
			out[p] = c.Reset()
		}
		return out
	}
	few, lots := count(seededSites()), count(many)
	for _, p := range paths {
		if few[p] != lots[p] || few[p] > 8 {
			t.Errorf("%s: %d queries with 2 configured sites, %d with 302 (want the same, at most 8)", p, few[p], lots[p])
		}
	}
}

// Hostile names and error messages reach the HTML escaped, and neither a
// DSN nor a password is ever shown.
func TestEscapedAndNoSecrets(t *testing.T) {
	t.Parallel()
	st := stores(t)["sqlite"]
	sc := historytest.Seed(t, st, time.Now().Add(-time.Minute))
	ts := serve(t, st, seededSites(), sc.Now)
	for _, p := range []string{"/", "/?fragment=live", "/sites/" + history.SiteID(historytest.DownURL), "/?q=%3Cscript%3E"} {
		_, body := get(t, ts.URL+p)
		b := string(body)
		for _, raw := range []string{"<script>window.__pwned", `<img src=x`, `<script>alert("x")`} {
			if strings.Contains(b, raw) {
				t.Errorf("%s: unescaped %q in the page", p, raw)
			}
		}
		if !strings.Contains(b, "&lt;script&gt;") {
			t.Errorf("%s: the hostile text is not shown escaped", p)
		}
	}
	// The store's errors are logged, not shown: close it and look.
	resp, body := get(t, ts.URL+"/api/v1/sites")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	_ = body
	bad := &failing{}
	ts2 := serve(t, bad, nil, sc.Now)
	for _, p := range []string{"/", "/api/v1/sites"} {
		resp, body := get(t, ts2.URL+p)
		if resp.StatusCode != 500 || strings.Contains(string(body), "secret") || strings.Contains(string(body), "postgres://") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}

// failing is a store that is down; its error names a DSN with a password.
type failing struct{ web.Reader }

func (failing) Latest(context.Context, []string) ([]history.Latest, error) {
	return nil, fmt.Errorf("connect postgres://sw:secret@db.internal/sitewatch: refused")
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// A site is down while its incident is open, even when its latest check
// is up (the alerts part waits for its successes in a row), and up once
// the up change closes the incident: on the API, the badge and the page.
func TestStateFromOpenIncident(t *testing.T) {
	t.Parallel()
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			sc := historytest.Seed(t, st, time.Now().Add(-time.Minute))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			at := sc.Now.Add(-10 * time.Second)
			good := &codecs.Result{EventID: "good", URL: historytest.DownURL, ScheduledAt: at, CheckedAt: at,
				Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "test"}
			if _, err := st.WriteResults(ctx, []*codecs.Result{good}); err != nil {
				t.Fatal(err)
			}
			ts := serve(t, st, seededSites(), sc.Now)
			id := history.SiteID(historytest.DownURL)
			state := func() (api, badge string, downFirst bool) {
				_, b := get(t, ts.URL+"/api/v1/sites/"+id)
				var s struct{ State string }
				if err := json.Unmarshal(b, &s); err != nil {
					t.Fatal(err)
				}
				_, svg := get(t, ts.URL+"/badge/"+id+"/status.svg")
				_, page := get(t, ts.URL+"/api/v1/sites")
				var all struct{ Sites []struct{ URL, State string } }
				if err := json.Unmarshal(page, &all); err != nil {
					t.Fatal(err)
				}
				return s.State, string(svg), len(all.Sites) > 0 && all.Sites[0].URL == historytest.DownURL && all.Sites[0].State == "down"
			}
			if api, svg, first := state(); api != "down" || !strings.Contains(svg, ">down<") || !first {
				t.Errorf("open incident, latest check up: state %q, badge down %v, listed first as down %v", api, strings.Contains(svg, ">down<"), first)
			}
			historytest.WriteChanges(t, st, &codecs.StatusChange{V: 1, ChangeID: "closed", URL: historytest.DownURL, Kind: codecs.ChangeUp,
				State: "up", PreviousState: "down", Since: at, ChangedAt: at, Consecutive: 1, EventID: "good", StatusCode: 200})
			if api, svg, _ := state(); api != "up" || !strings.Contains(svg, ">up<") {
				t.Errorf("incident closed: state %q, badge %s", api, svg)
			}
		})
	}
}
