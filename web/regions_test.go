package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/history"
	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/web"
)

// seedRegions seeds the scenario, region eu's window of UpURL an hour
// ago (three checks, one failed), and eu's latest check of UpURL 20 s
// before Now: down (a timeout), while the default region's is up.
func seedRegions(t *testing.T, st historytest.Store) historytest.Scenario {
	t.Helper()
	sc := historytest.Seed(t, st, time.Now().Add(-time.Minute))
	historytest.SeedSecondRegion(t, st, sc)
	at := sc.Now.Add(-20 * time.Second)
	down := &codecs.Result{EventID: "eu-now", URL: historytest.UpURL, Region: historytest.SecondRegion, ScheduledAt: at, CheckedAt: at,
		Outcome: codecs.OutcomeDown, ErrorKind: ptr(codecs.ErrTimeout), ErrorMessage: ptr("timeout after 10s"), Checker: "eu-1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := st.WriteResults(ctx, []*codecs.Result{down}); err != nil {
		t.Fatal(err)
	}
	return sc
}

type regionAnswer struct {
	Region           string
	State            string
	LastCheckedAt    *time.Time `json:"last_checked_at"`
	LastErrorKind    *string    `json:"last_error_kind"`
	LastErrorMessage *string    `json:"last_error_message"`
	Uptime24h        *float64   `json:"uptime_24h"`
	P9524hMS         *float64   `json:"p95_24h_ms"`
	Checks24h        int64      `json:"checks_24h"`
	Failures24h      int64      `json:"failures_24h"`
}

// A site checked from two regions shows each region's view side by side
// on its API answer (as docs/openapi.yaml says) and its page, while a
// site checked from one looks as before; the queries stay a constant.
func TestRegionsSideBySide(t *testing.T) {
	t.Parallel()
	_, router := openAPI(t)
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			sc := seedRegions(t, st)
			ts := serve(t, st, seededSites(), sc.Now)
			up, down := history.SiteID(historytest.UpURL), history.SiteID(historytest.DownURL)
			regions := func(id string) []regionAnswer {
				path := "/api/v1/sites/" + id
				req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
				resp, body := get(t, req.URL.String())
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
				}
				matchesDoc(t, router, req, path, resp, body)
				var a struct{ Regions []regionAnswer }
				if err := json.Unmarshal(body, &a); err != nil {
					t.Fatal(err)
				}
				return a.Regions
			}
			rs := regions(up)
			if len(rs) != 2 {
				t.Fatalf("two regions' site: regions %+v, want default and eu", rs)
			}
			d, eu := rs[0], rs[1]
			if d.Region != codecs.DefaultRegion || d.State != "up" || d.Uptime24h == nil || *d.Uptime24h != 100 ||
				d.P9524hMS == nil || *d.P9524hMS != 40 || d.Checks24h != sc.ChecksUp24h || d.LastErrorKind != nil {
				t.Errorf("default's view: %+v, want up, 100 %% over %d checks, p95 40", d, sc.ChecksUp24h)
			}
			if eu.Region != historytest.SecondRegion || eu.State != "down" || eu.LastErrorKind == nil || *eu.LastErrorKind != codecs.ErrTimeout ||
				eu.LastErrorMessage == nil || *eu.LastErrorMessage != "timeout after 10s" || eu.LastCheckedAt == nil ||
				!eu.LastCheckedAt.Equal(sc.Now.Add(-20*time.Second)) || eu.Checks24h != 3 || eu.Failures24h != 1 ||
				eu.P9524hMS == nil || *eu.P9524hMS != 80 || eu.Uptime24h == nil || fmt.Sprintf("%.2f", *eu.Uptime24h) != "66.67" {
				t.Errorf("eu's view: %+v, want down (timeout) 20 s ago, 3 checks, 1 failed, p95 80", eu)
			}
			if rs := regions(down); len(rs) != 1 || rs[0].Region != codecs.DefaultRegion || rs[0].State != "down" {
				t.Errorf("one region's site: regions %+v, want default's alone, down", rs)
			}

			_, page := get(t, ts.URL+"/sites/"+up)
			if !strings.Contains(string(page), `id="regions"`) || !strings.Contains(string(page), `id="chart-regions"`) {
				t.Errorf("two regions' page lacks the regions table or chart")
			}
			_, page = get(t, ts.URL+"/sites/"+down)
			if strings.Contains(string(page), `id="regions"`) || strings.Contains(string(page), `id="chart-regions"`) {
				t.Errorf("one region's page shows a regions table or chart; it should look as before regions")
			}

			// Two queries more than with one region, whatever the sites.
			many := seededSites()
			for i := range 300 {
				many = append(many, web.Site{URL: fmt.Sprintf("https://s%d.example/", i)})
			}
			for _, sites := range [][]web.Site{seededSites(), many} {
				c := &historytest.Counting{Reader: st}
				ts := serve(t, c, sites, sc.Now)
				for _, p := range []string{"/sites/", "/api/v1/sites/"} {
					n := map[string]int64{}
					for _, id := range []string{up, down} {
						c.Reset()
						if resp, body := get(t, ts.URL+p+id); resp.StatusCode != 200 {
							t.Fatalf("%s%s: %d %s", p, id, resp.StatusCode, body)
						}
						n[id] = c.Reset()
					}
					if n[up] != n[down]+2 || n[down] > 8 {
						t.Errorf("%s{id} with %d sites: %d queries with two regions, %d with one; want two more, at most 8 with one", p, len(sites), n[up], n[down])
					}
				}
			}
		})
	}
}

// In a browser, the two regions' site page shows a row per region with
// its state, and one p95 line per region.
func TestBrowserRegions(t *testing.T) {
	t.Parallel()
	st := stores(t)["sqlite"]
	sc := seedRegions(t, st)
	ts := serve(t, st, seededSites(), sc.Now)
	ctx := browser(t)
	type regionRow struct{ Region, State, Uptime, P95, Error string }
	type info struct {
		Rows   []regionRow
		Lines  map[string]int
		Legend []string
		Colors map[string]string
		Dots   int
	}
	do(t, ctx, chromedp.Navigate(ts.URL+"/sites/"+history.SiteID(historytest.UpURL)), chromedp.WaitVisible(chromedp.CSS("#chart-regions")))
	got := eval[info](t, ctx, `(() => {
  const rows = [...document.querySelectorAll('#regions tr.region')].map(tr => ({Region: tr.querySelector('.region-name').textContent,
    State: tr.querySelector('.state').textContent, Uptime: tr.querySelector('.uptime').textContent,
    P95: tr.querySelector('.p95').textContent, Error: tr.querySelector('.reason').textContent}));
  const lines = {};
  document.querySelectorAll('#chart-regions polyline').forEach(p => {
    const s = p.dataset.series; lines[s] = (lines[s] || 0) + p.getAttribute('points').trim().split(/\s+/).length; });
  const fig = document.querySelector('#chart-regions').closest('figure');
  return {Rows: rows, Lines: lines, Legend: [...fig.querySelectorAll('.legend span')].map(s => s.textContent),
    Dots: document.querySelectorAll('#chart-regions circle.pt').length,
    Colors: Object.fromEntries([...document.querySelectorAll('#chart-regions polyline')].map(p => [p.dataset.series, getComputedStyle(p).stroke]))};
})()`)
	screenshot(t, ctx, "site-regions.png")
	want := []regionRow{{"default", "up", "100 %", "40.0 ms", ""}, {"eu", "down", "66.66 %", "80.0 ms", "timeout: timeout after 10s"}}
	if fmt.Sprint(got.Rows) != fmt.Sprint(want) {
		t.Errorf("regions table: %+v, want %+v", got.Rows, want)
	}
	if got.Lines["default"] != sc.WindowsUp || got.Lines["eu"] != 1 || strings.Join(got.Legend, ",") != "default,eu" {
		t.Errorf("regions chart: points %v, legend %q; want %d for default, 1 for eu", got.Lines, got.Legend, sc.WindowsUp)
	}
	if got.Dots != 1 {
		t.Errorf("regions chart: %d dots, want 1 (eu's lone window)", got.Dots)
	}
	if c := got.Colors; c["default"] == c["eu"] || c["default"] == "none" || c["eu"] == "none" {
		t.Errorf("region lines' colours %v: want one visible colour per region", c)
	}
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
		chromedp.Navigate(ts.URL+"/sites/"+history.SiteID(historytest.UpURL)), chromedp.WaitVisible(chromedp.CSS("#chart-regions")))
	phone := eval[[]float64](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`)
	screenshot(t, ctx, "site-regions-phone.png")
	if phone[0] > phone[1]+1 {
		t.Errorf("regions page on a 390 px phone: %.0f px wide in a %.0f px window", phone[0], phone[1])
	}
}
