package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/history"
	"github.com/sitewatch/sitewatch/history/historytest"
)

// chromiumPath is Debian's chromium (.ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts a fresh headless Chromium for the test, or skips loudly
// when there is none (fails under CI=true).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		} else if os.Getenv("CI") == "true" {
			t.Fatalf("no chromium at %s under CI=true (apt-get install chromium)", chromiumPath)
		} else {
			t.Skipf("SKIPPING: no chromium at %s; apt-get install chromium to run the browser tests", chromiumPath)
		}
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// screenshotDir is $SITEWATCH_SCREENSHOT_DIR, else the test's own.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SITEWATCH_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

type overviewRow struct {
	Name, URL, State, Uptime24h string
	Bars                        int
	Classes                     map[string]int
	TodayClass                  string
	HalfDayClass                string
	Hidden                      bool
	NameHasElements             bool
}

const readRows = `(() => [...document.querySelectorAll('tr.site')].map(tr => {
  const rects = [...tr.querySelectorAll('svg.strip rect')];
  const classes = {};
  rects.forEach(r => { const c = r.getAttribute('class'); classes[c] = (classes[c] || 0) + 1; });
  const a = tr.querySelector('a.name');
  const half = rects.find(r => r.dataset.day === %q);
  return {Name: a.textContent, URL: tr.querySelector('.url').textContent, State: tr.querySelector('.state').textContent,
    Uptime24h: tr.querySelector('.uptime-24h').textContent, Bars: rects.length, Classes: classes,
    TodayClass: rects.length ? rects[rects.length-1].getAttribute('class') : '',
    HalfDayClass: half ? half.getAttribute('class') : '',
    Hidden: tr.hidden || getComputedStyle(tr).display === 'none', NameHasElements: a.children.length > 0};
}))()`

// A person opening the overview sees every seeded site, the down one
// first, with its state, uptime and 90 daily bars (grey where there is no
// data); the hostile name is text; the filter and the refresh work.
func TestBrowserOverviewAndSitePage(t *testing.T) {
	t.Parallel()
	st := stores(t)["sqlite"]
	sc := historytest.Seed(t, st, time.Now().Add(-time.Minute))
	ts := serve(t, st, seededSites(), sc.Now)
	ctx := browser(t)
	today := time.Date(sc.Now.Year(), sc.Now.Month(), sc.Now.Day(), 0, 0, 0, 0, time.UTC)
	halfDay := today.AddDate(0, 0, -2).Format(time.DateOnly)

	do(t, ctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("table#sites")))
	rows := eval[[]overviewRow](t, ctx, fmt.Sprintf(readRows, halfDay))
	pwned := eval[any](t, ctx, `window.__pwned === undefined ? null : window.__pwned`)
	summary := eval[string](t, ctx, `document.querySelector('#summary').textContent`)
	screenshot(t, ctx, "overview.png")
	if len(rows) != 3 {
		t.Fatalf("overview shows %d sites, want 3: %+v", len(rows), rows)
	}
	down, half, up := rows[0], rows[1], rows[2]
	if down.Name != HostileName || down.NameHasElements || pwned != nil {
		t.Errorf("hostile name: shown as %q (elements inside: %v, script ran: %v), want the text %q", down.Name, down.NameHasElements, pwned, HostileName)
	}
	if down.State != "down" || down.URL != historytest.DownURL {
		t.Errorf("first row: %+v, want the down site first", down)
	}
	if half.Name != historytest.HalfURL || half.State != "unknown" || half.HalfDayClass != "u-bad" || half.Classes["nodata"] != 89 {
		t.Errorf("half site: %+v, want its URL as name, unknown, a red day and 89 days without data", half)
	}
	// Today's bar has data unless the seed's now is midnight.
	todayClass := "nodata"
	if sc.UpDays[today] {
		todayClass = "u-good"
	}
	if up.Name != "Up site" || up.State != "up" || up.Uptime24h != "100 %" || up.TodayClass != todayClass {
		t.Errorf("up site: %+v, want today's bar %s", up, todayClass)
	}
	// 16 older days, the incident's day (or two, near midnight), yesterday
	// and today have data; only the incident's days may be other than good.
	if d := len(sc.UpDays); up.Classes["nodata"] != 90-d || up.Classes["u-good"] < d-2 {
		t.Errorf("up site's bars: %v, want %d days with data, all but the incident's good", up.Classes, d)
	}
	for _, r := range rows {
		if r.Bars != 90 {
			t.Errorf("%s: %d bars, want 90", r.URL, r.Bars)
		}
	}
	if !strings.Contains(summary, "3 sites: 1 down, 1 up, 1 unknown") {
		t.Errorf("summary: %q", summary)
	}

	// The filter, as one types.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#filter"), "up sit"))
	rows = eval[[]overviewRow](t, ctx, fmt.Sprintf(readRows, halfDay))
	shown := eval[string](t, ctx, `document.querySelector('#shown').textContent`)
	var visible []string
	for _, r := range rows {
		if !r.Hidden {
			visible = append(visible, r.Name)
		}
	}
	if len(visible) != 1 || visible[0] != "Up site" || shown != "1" {
		t.Errorf("filter \"up sit\": visible %q (count %q), want only Up site", visible, shown)
	}

	// The refresh swaps in new data without reloading the page: the up
	// site goes down (a timeout after the TLS handshake: the check has the
	// certificate's expiry).
	fail := &codecs.Result{EventID: "now-down", URL: historytest.UpURL, ScheduledAt: sc.Now, CheckedAt: sc.Now,
		Outcome: codecs.OutcomeDown, ErrorKind: ptr(codecs.ErrTimeout), ErrorMessage: ptr("timeout after 10s"), Checker: "t",
		TLSNotAfter: &sc.CertNotAfter}
	if _, err := st.WriteResults(context.Background(), []*codecs.Result{fail}); err != nil {
		t.Fatal(err)
	}
	eval[int](t, ctx, `window.__marker = true; window.sitewatchRefresh(); 0`)
	if _, err := chromedp.Run(ctx, chromedp.Poll[any](`window.sitewatchRefreshed`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	rows = eval[[]overviewRow](t, ctx, fmt.Sprintf(readRows, halfDay))
	marker := eval[bool](t, ctx, `window.__marker === true`)
	states := map[string]string{}
	for _, r := range rows {
		states[r.URL] = r.State
	}
	if !marker || states[historytest.UpURL] != "down" {
		t.Errorf("after refresh: states %v, page kept (no reload): %v; want the up site down", states, marker)
	}

	// The up site's page: both charts drawn with every seeded point.
	type chartInfo struct {
		P95, P50, PhaseRects, Buckets int
		Width                         float64
		Incidents, Failures           int
		Name, Cert, CertColor         string
	}
	do(t, ctx, chromedp.Navigate(ts.URL+"/sites/"+history.SiteID(historytest.UpURL)), chromedp.WaitVisible(chromedp.CSS("#chart-latency")))
	chart := eval[chartInfo](t, ctx, `(() => {
  const pts = s => [...document.querySelectorAll('#chart-latency polyline[data-series="'+s+'"]')]
    .reduce((n, p) => n + p.getAttribute('points').trim().split(/\s+/).length, 0);
  const lines = document.querySelectorAll('#chart-latency polyline');
  let minX = 1e9, maxX = -1e9;
  lines.forEach(l => { const b = l.getBBox(); minX = Math.min(minX, b.x); maxX = Math.max(maxX, b.x + b.width); });
  return {P95: pts('p95'), P50: pts('p50'), PhaseRects: document.querySelectorAll('#chart-phases rect').length,
    Buckets: +document.querySelector('#chart-phases').dataset.points, Width: maxX - minX,
    Incidents: document.querySelectorAll('tr.incident').length, Failures: document.querySelectorAll('tr.failure').length,
    Name: document.querySelector('#site-name').textContent,
    Cert: document.querySelector('#cert').textContent, CertColor: getComputedStyle(document.querySelector('#cert')).color};
})()`)
	screenshot(t, ctx, "site.png")
	if chart.P95 != sc.WindowsUp || chart.P50 != sc.WindowsUp {
		t.Errorf("latency chart: %d p95 and %d p50 points, want %d each", chart.P95, chart.P50, sc.WindowsUp)
	}
	if chart.Width < 600 {
		t.Errorf("latency lines span %.0f of 672 units: not drawn over the 24 h", chart.Width)
	}
	// Five phases per bucket, one failure (the one just written) among them without any.
	if chart.Buckets != sc.PhaseBucketsUp || chart.PhaseRects < 5*(sc.PhaseBucketsUp-1) {
		t.Errorf("phase chart: %d buckets, %d bars; want %d buckets of 5 phases", chart.Buckets, chart.PhaseRects, sc.PhaseBucketsUp)
	}
	if chart.Incidents != 1 || chart.Name != "Up site" {
		t.Errorf("site page: %d incidents, name %q", chart.Incidents, chart.Name)
	}
	// The certificate expires in ten days: its date and days left, in the
	// warning colour (--bad, under 14 days).
	if want := sc.CertNotAfter.Format(time.DateOnly) + " (10 days left)"; chart.Cert != want || chart.CertColor != "rgb(217, 48, 37)" {
		t.Errorf("certificate expiry: %q in %s, want %q in the warning colour rgb(217, 48, 37)", chart.Cert, chart.CertColor, want)
	}

	// On a phone: the page itself does not scroll sideways (the table may,
	// inside its wrapper), and the charts shrink to the screen.
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
		chromedp.Navigate(ts.URL+"/sites/"+history.SiteID(historytest.UpURL)), chromedp.WaitVisible(chromedp.CSS("#chart-latency")))
	phone := eval[[]float64](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth, document.querySelector('#chart-latency').getBoundingClientRect().width]`)
	screenshot(t, ctx, "site-phone.png")
	if phone[0] > phone[1]+1 || phone[2] > phone[1] || phone[2] < 300 {
		t.Errorf("on a 390 px phone: page %.0f px wide in a %.0f px window, chart %.0f px", phone[0], phone[1], phone[2])
	}
	do(t, ctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("table#sites")))
	phone = eval[[]float64](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth, 0]`)
	screenshot(t, ctx, "overview-phone.png")
	if phone[0] > phone[1]+1 {
		t.Errorf("overview on a 390 px phone: page %.0f px wide in a %.0f px window", phone[0], phone[1])
	}
	do(t, ctx, chromedp.ResetViewport())

	// The hostile site's page: its name and its error messages are text.
	do(t, ctx, chromedp.Navigate(ts.URL+"/sites/"+history.SiteID(historytest.DownURL)), chromedp.WaitVisible(chromedp.CSS("#site-name")))
	name := eval[string](t, ctx, `document.querySelector('#site-name').textContent`)
	failures := eval[int](t, ctx, `document.querySelectorAll('tr.failure').length`)
	firstMsg := eval[string](t, ctx, `document.querySelector('tr.failure td.reason').textContent`)
	if cert := eval[string](t, ctx, `document.querySelector('#cert').textContent`); cert != "unknown" {
		t.Errorf("certificate expiry of a site without TLS data: %q, want unknown", cert)
	}
	pwned = eval[any](t, ctx, `window.__pwned === undefined ? null : window.__pwned`)
	screenshot(t, ctx, "site-hostile.png")
	if strings.TrimSpace(name) != strings.TrimSpace(HostileName) || pwned != nil || failures != sc.DownFailures || firstMsg != historytest.DownMessage {
		t.Errorf("hostile site page: name %q, script ran %v, %d failures, first message %q", name, pwned, failures, firstMsg)
	}
}

func ptr[T any](v T) *T { return &v }

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %.80s: %v", expr, err)
	}
	return v
}
