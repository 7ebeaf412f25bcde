package historytest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/history"
	"github.com/sitewatch/sitewatch/sinks"
	"github.com/sitewatch/sitewatch/web"
)

// Store is a store with its write and read sides.
type Store interface {
	sinks.IncidentStore
	web.Reader
}

// Run runs the read tests against fresh stores made by open, the same
// body for every store.
func Run(t *testing.T, open func(t *testing.T) Store) {
	seeded := func(t *testing.T) (Store, Scenario, context.Context) {
		st := open(t)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		t.Cleanup(cancel)
		return st, Seed(t, st, time.Now().Add(-time.Minute)), ctx
	}

	t.Run("Latest", func(t *testing.T) {
		st, sc, ctx := seeded(t)
		ls, err := st.Latest(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]history.Latest{}
		for _, l := range ls {
			got[l.URL] = l
		}
		if len(ls) != 3 || got[HalfURL].Failure != nil || got[HalfURL].Outcome != "up" {
			t.Errorf("latest: %+v, want 3 URLs, HalfURL up without a failure", ls)
		}
		up, down := got[UpURL], got[DownURL]
		if up.Outcome != "up" || up.Failure == nil || !up.Failure.CheckedAt.Before(sc.Now.Add(-48*time.Hour)) {
			t.Errorf("up site: %+v (failure %+v), want up, last failed in its incident 3 days ago", up, up.Failure)
		}
		want := sc.Now.Add(-5*time.Minute + 4*time.Minute + 7*time.Second)
		if down.Outcome != "down" || !down.CheckedAt.Equal(want) || down.ErrorKind != codecs.ErrConnect {
			t.Errorf("down site: %+v, want down at %s with connect", down, want)
		}
		if down.Failure == nil || down.Failure.ErrorMessage != DownMessage || !down.Failure.CheckedAt.Equal(want) {
			t.Errorf("down site's last failure: %+v", down.Failure)
		}
		if down.IncidentSince == nil || !down.IncidentSince.Equal(sc.DownSince.Add(7*time.Second)) || up.IncidentSince != nil {
			t.Errorf("open incidents: down since %v, up since %v; want down since %s, up none", down.IncidentSince, up.IncidentSince, sc.DownSince.Add(7*time.Second))
		}
		// The certificate expiry of the latest check comes for given URLs
		// (one query for both), not for the overview's every URL.
		certs, err := st.Latest(ctx, []string{UpURL, DownURL})
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 2 || certs[1].URL != UpURL || certs[1].TLSNotAfter == nil || !certs[1].TLSNotAfter.Equal(sc.CertNotAfter) || certs[0].TLSNotAfter != nil {
			t.Errorf("certificate expiry: %+v, want %s for the up site and none for the down one (no TLS)", certs, sc.CertNotAfter)
		}
		// One URL, and an older check arriving late changes nothing.
		late := &codecs.Result{EventID: "late", URL: DownURL, ScheduledAt: sc.Now.Add(-2 * time.Hour), CheckedAt: sc.Now.Add(-2 * time.Hour),
			Outcome: codecs.OutcomeUp, StatusCode: 200, ResponseTimeMS: f(1), Checker: "late"}
		if _, err := st.WriteResults(ctx, []*codecs.Result{late}); err != nil {
			t.Fatal(err)
		}
		ls, err = st.Latest(ctx, []string{DownURL})
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != 1 || ls[0].Outcome != "down" || !ls[0].CheckedAt.Equal(want) {
			t.Errorf("after a late up check: %+v, want still down at %s", ls, want)
		}
	})

	t.Run("Stats", func(t *testing.T) {
		st, sc, ctx := seeded(t)
		stats, err := st.Stats(ctx, nil, sc.Now)
		if err != nil {
			t.Fatal(err)
		}
		up := stats[UpURL]
		// The 24 h run from the hour holding now−24h: the seeded 24 h.
		if up.Last24h.Checks != sc.ChecksUp24h || up.Last24h.Failures != 0 {
			t.Errorf("up 24h: %+v, want %d checks, 0 failures", up.Last24h, sc.ChecksUp24h)
		}
		if p, ok := up.Last24h.P95(); !ok || p != 40 {
			t.Errorf("up p95 24h: %v %v, want 40", p, ok)
		}
		// 7 d: the 24 h and the incident's 90 minutes (18 windows).
		if up.Last7d.Checks != sc.ChecksUp24h+90 || up.Last7d.Failures != 30 {
			t.Errorf("up 7d: %+v, want %d checks, the incident's 30 failures", up.Last7d, sc.ChecksUp24h+90)
		}
		if up.Last30d.Checks <= up.Last7d.Checks {
			t.Errorf("up 30d %+v should hold more checks than 7d %+v (the older days)", up.Last30d, up.Last7d)
		}
		down := stats[DownURL]
		if down.Last24h.Failures != int64(sc.DownFailures) {
			t.Errorf("down 24h failures: %d, want %d", down.Last24h.Failures, sc.DownFailures)
		}
		half := stats[HalfURL]
		if u, ok := half.Last7d.Uptime(); !ok || u != 50 {
			t.Errorf("half 7d: %v %v, want 50", u, ok)
		}
		if _, ok := half.Last24h.Uptime(); ok {
			t.Errorf("half 24h: %+v, want no data", half.Last24h)
		}
		one, err := st.Stats(ctx, []string{HalfURL}, sc.Now)
		if err != nil || len(one) != 1 {
			t.Fatalf("stats of one URL: %v %v", one, err)
		}
	})

	t.Run("Daily", func(t *testing.T) {
		st, sc, ctx := seeded(t)
		today := time.Date(sc.Now.Year(), sc.Now.Month(), sc.Now.Day(), 0, 0, 0, 0, time.UTC)
		days, err := st.Daily(ctx, []string{UpURL, HalfURL}, today.AddDate(0, 0, -89), today.AddDate(0, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]map[time.Time]history.Counts{}
		for _, d := range days {
			if got[d.URL] == nil {
				got[d.URL] = map[time.Time]history.Counts{}
			}
			got[d.URL][d.Day] = d.Counts
		}
		for _, d := range sc.UpOldDays {
			if c := got[UpURL][d]; c.Checks != 5 || c.Failures != 0 {
				t.Errorf("up day %s: %+v, want 5 checks", d.Format(time.DateOnly), c)
			}
		}
		if c := got[HalfURL][today.AddDate(0, 0, -2)]; c.Checks != 16 || c.Failures != 8 {
			t.Errorf("half day: %+v, want 16 checks, 8 failures", c)
		}
		if len(got[HalfURL]) != 1 {
			t.Errorf("half: %d days, want 1 (no rows for days without data)", len(got[HalfURL]))
		}
		if _, ok := got[DownURL]; ok {
			t.Errorf("daily of two URLs returned a third")
		}
	})

	t.Run("RevisionReplacesRollup", func(t *testing.T) {
		st, sc, ctx := seeded(t)
		ws := sc.Now.Add(-time.Hour)
		w := &codecs.Window{V: 1, URL: HalfURL, WindowStart: ws, WindowEnd: ws.Add(5 * time.Minute), Checks: 5, Failures: 5, StatusCounts: map[string]int64{}, Revision: 1}
		if _, err := st.WriteWindows(ctx, []*codecs.Window{w}); err != nil {
			t.Fatal(err)
		}
		w2 := *w
		w2.Checks, w2.Failures, w2.Responses, w2.Revision = 6, 1, 5, 2
		w2.ResponseP95MS = f(30)
		if _, err := st.WriteWindows(ctx, []*codecs.Window{&w2}); err != nil {
			t.Fatal(err)
		}
		stats, err := st.Stats(ctx, []string{HalfURL}, sc.Now)
		if err != nil {
			t.Fatal(err)
		}
		c := stats[HalfURL].Last24h
		if c.Checks != 6 || c.Failures != 1 {
			t.Errorf("after a higher revision: %+v, want the new window's 6 checks, 1 failure, counted once", c)
		}
		if p, _ := c.P95(); p != 30 {
			t.Errorf("p95 %v, want 30", p)
		}
	})

	t.Run("TwoRegions", func(t *testing.T) {
		// A second region's view of UpURL for one window: its checks add
		// to the rollups; the site's windows stay one per window, with
		// both regions' checks and the worst region's percentiles.
		st, sc, ctx := seeded(t)
		checks, failures := SeedSecondRegion(t, st, sc)
		checkTwoRegions(t, st, sc, checks, failures)
		ws, err := st.Windows(ctx, UpURL, sc.Now.Add(-24*time.Hour), sc.Now)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != sc.WindowsUp {
			t.Fatalf("windows with two regions: %d, want %d (one per window)", len(ws), sc.WindowsUp)
		}
		for _, w := range ws {
			if !w.Start.Equal(SecondRegionWindow(sc)) {
				continue
			}
			if w.Checks != 5+checks || w.Failures != failures || w.Responses != 5+2 || w.P95MS == nil || *w.P95MS != 80 ||
				w.MaxMS == nil || *w.MaxMS != 80 || w.AvgMS == nil || *w.AvgMS != (22*5+80*2)/7.0 {
				t.Errorf("the window of two regions: %+v (p95 %v), want %d checks, %d failures, 7 responses, the worst p95 80, max 80, mean over both",
					w, deref(w.P95MS), 5+checks, failures)
			}
		}
		rr, ok := st.(history.RegionReader)
		if !ok {
			t.Fatalf("%T reads no region's windows", st)
		}
		per, err := rr.RegionWindows(ctx, UpURL, SecondRegionWindow(sc), SecondRegionWindow(sc).Add(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(per) != 2 || per[0].Region != codecs.DefaultRegion || per[0].Checks != 5 || per[1].Region != SecondRegion ||
			per[1].Checks != checks || per[1].P95MS == nil || *per[1].P95MS != 80 {
			t.Errorf("the window per region: %+v, want default's 5 checks, then eu's %d with p95 80", per, checks)
		}
		// Each region's latest check: default's is up (its newest seeded
		// check), eu's the timeout that ended its window; a since after
		// eu's last check leaves eu out.
		latest, err := rr.RegionLatest(ctx, UpURL, sc.Now.Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		euAt := SecondRegionWindow(sc).Add(2*time.Minute + 7*time.Second)
		if len(latest) != 2 || latest[0].Region != codecs.DefaultRegion || latest[0].Outcome != "up" || !latest[0].CheckedAt.After(euAt) ||
			latest[1].Region != SecondRegion || latest[1].Outcome != "down" || !latest[1].CheckedAt.Equal(euAt) ||
			latest[1].ErrorKind != codecs.ErrTimeout || latest[1].ErrorMessage != "timeout" || latest[1].StatusCode != 0 {
			t.Errorf("each region's latest check: %+v, want default up after %s, then eu down (timeout) at %s", latest, euAt, euAt)
		}
		if latest, err = rr.RegionLatest(ctx, UpURL, euAt.Add(time.Second)); err != nil || len(latest) != 1 || latest[0].Region != codecs.DefaultRegion {
			t.Errorf("latest checks since after eu's last: %+v %v, want default's only", latest, err)
		}
		days, err := st.Daily(ctx, []string{UpURL}, sc.Now.Add(-48*time.Hour), sc.Now.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var daily int64
		for _, d := range days {
			daily += d.Checks
		}
		if daily < sc.ChecksUp24h+checks {
			t.Errorf("daily rollups count %d checks, want at least %d (both regions)", daily, sc.ChecksUp24h+checks)
		}
	})

	t.Run("WindowsAndPhases", func(t *testing.T) {
		st, sc, ctx := seeded(t)
		ws, err := st.Windows(ctx, UpURL, sc.Now.Add(-24*time.Hour), sc.Now)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != sc.WindowsUp {
			t.Fatalf("windows: %d, want %d", len(ws), sc.WindowsUp)
		}
		if w := ws[0]; !w.Start.Equal(sc.Now.Add(-24*time.Hour)) || w.P95MS == nil || *w.P95MS != 40 || w.Checks != 5 {
			t.Errorf("first window: %+v", w)
		}
		for i := 1; i < len(ws); i++ {
			if !ws[i].Start.After(ws[i-1].Start) {
				t.Fatalf("windows out of order at %d", i)
			}
		}
		ps, err := st.Phases(ctx, UpURL, sc.Now.Add(-24*time.Hour), sc.Now)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != sc.PhaseBucketsUp {
			t.Fatalf("phase buckets: %d, want %d", len(ps), sc.PhaseBucketsUp)
		}
		p := ps[len(ps)-1]
		if p.Checks != 5 || p.DNSMS == nil || *p.DNSMS != 1 || p.TLSMS == nil || *p.TLSMS != 5 || !p.Start.Equal(sc.Now.Add(-5*time.Minute)) {
			t.Errorf("last bucket: %+v", p)
		}
		dp, err := st.Phases(ctx, DownURL, sc.Now.Add(-10*time.Minute), sc.Now)
		if err != nil {
			t.Fatal(err)
		}
		if len(dp) != 2 || dp[1].TLSMS != nil || dp[1].ConnectMS == nil {
			t.Errorf("down site's phases: %+v, want no TLS (never reached), a connect time", dp)
		}
	})

	t.Run("Failures", func(t *testing.T) {
		st, sc, ctx := seeded(t)
		fs, err := st.Failures(ctx, DownURL, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != sc.DownFailures {
			t.Fatalf("failures: %d, want %d", len(fs), sc.DownFailures)
		}
		if fs[0].ErrorMessage != DownMessage || fs[0].ErrorKind != codecs.ErrConnect || !fs[0].CheckedAt.After(fs[1].CheckedAt) {
			t.Errorf("newest failure: %+v (next %+v)", fs[0], fs[1])
		}
		few, err := st.Failures(ctx, DownURL, 3)
		if err != nil || len(few) != 3 {
			t.Errorf("limit 3: %d, %v", len(few), err)
		}
	})

	t.Run("Incidents", func(t *testing.T) {
		st, sc, ctx := seeded(t)
		all, err := st.Incidents(ctx, history.IncidentQuery{From: sc.Now.AddDate(0, 0, -90), To: sc.Now.Add(time.Hour), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 {
			t.Fatalf("incidents: %+v, want the down site's open one and the up site's ended one", all)
		}
		open, ended := all[0], all[1]
		if open.URL != DownURL || open.EndedAt != nil || !open.StartedAt.Equal(sc.DownSince.Add(7*time.Second)) ||
			open.FailedChecks != int64(sc.DownFailures) || open.CauseKind != codecs.ErrConnect || open.CauseMessage != DownMessage {
			t.Errorf("open incident: %+v (want started %s)", open, sc.DownSince.Add(7*time.Second))
		}
		if ended.URL != UpURL || ended.EndedAt == nil || !ended.EndedAt.Equal(sc.IncidentEnd) || !ended.StartedAt.Equal(sc.IncidentStart) || ended.FailedChecks != 30 {
			t.Errorf("ended incident: %+v, want %s to %s, 30 failed", ended, sc.IncidentStart, sc.IncidentEnd)
		}
		onlyOpen, err := st.Incidents(ctx, history.IncidentQuery{From: sc.Now.AddDate(0, 0, -90), To: sc.Now.Add(time.Hour), OpenOnly: true, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(onlyOpen) != 1 || onlyOpen[0].URL != DownURL {
			t.Errorf("open only: %+v", onlyOpen)
		}
		one, err := st.Incidents(ctx, history.IncidentQuery{URL: UpURL, From: sc.Now.AddDate(0, 0, -90), To: sc.Now.Add(time.Hour), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != 1 || one[0].URL != UpURL {
			t.Errorf("one URL: %+v", one)
		}
		// An incident open before the range still overlaps it.
		recent, err := st.Incidents(ctx, history.IncidentQuery{From: sc.Now.Add(-time.Minute), To: sc.Now.Add(time.Hour), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(recent) != 1 || recent[0].URL != DownURL {
			t.Errorf("incidents of the last minute: %+v, want the one open for 30 minutes", recent)
		}
		// A good check alone does not end it (the alerts part wants its
		// successes in a row): the site stays down while it is open.
		back := &codecs.Result{EventID: "back", URL: DownURL, ScheduledAt: sc.Now.Add(2 * time.Minute), CheckedAt: sc.Now.Add(2 * time.Minute),
			Outcome: codecs.OutcomeUp, StatusCode: 200, ResponseTimeMS: f(1), Checker: "back"}
		if _, err := st.WriteResults(ctx, []*codecs.Result{back}); err != nil {
			t.Fatal(err)
		}
		ls, err := st.Latest(ctx, []string{DownURL})
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != 1 || ls[0].Outcome != "up" || ls[0].IncidentSince == nil || !ls[0].IncidentSince.Equal(open.StartedAt) {
			t.Errorf("after one up check: %+v, want the latest check up and the incident open since %s", ls, open.StartedAt)
		}
		// The up change closes it.
		WriteChanges(t, st, &codecs.StatusChange{V: 1, ChangeID: "back-up", URL: DownURL, Kind: codecs.ChangeUp, State: "up",
			PreviousState: "down", Since: back.CheckedAt, ChangedAt: back.CheckedAt, Consecutive: 1, EventID: "back", StatusCode: 200})
		onlyOpen, err = st.Incidents(ctx, history.IncidentQuery{From: sc.Now.AddDate(0, 0, -90), To: sc.Now.Add(time.Hour), OpenOnly: true, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(onlyOpen) != 0 {
			t.Errorf("after the up change, open incidents: %+v", onlyOpen)
		}
		ls, err = st.Latest(ctx, []string{DownURL})
		if err != nil || len(ls) != 1 || ls[0].IncidentSince != nil {
			t.Errorf("after the up change: %+v %v, want no open incident", ls, err)
		}
		closed, err := st.Incidents(ctx, history.IncidentQuery{URL: DownURL, From: sc.Now.AddDate(0, 0, -90), To: sc.Now.Add(time.Hour), Limit: 100})
		if err != nil || len(closed) != 1 || closed[0].EndedAt == nil || !closed[0].EndedAt.Equal(back.CheckedAt) || closed[0].FailedChecks != int64(sc.DownFailures) {
			t.Errorf("closed incident: %+v %v, want ended at %s with %d failed checks", closed, err, back.CheckedAt, sc.DownFailures)
		}
	})
}

// Counting counts the reads made through it, each of which is one query:
// the tests and bench/web show that a page's count does not grow with the
// number of sites.
type Counting struct {
	web.Reader
	n atomic.Int64
}

// Reset zeroes the count and returns what it was.
func (c *Counting) Reset() int64 { return c.n.Swap(0) }

func (c *Counting) Latest(ctx context.Context, urls []string) ([]history.Latest, error) {
	c.n.Add(1)
	return c.Reader.Latest(ctx, urls)
}
func (c *Counting) Stats(ctx context.Context, urls []string, now time.Time) (map[string]history.Stats, error) {
	c.n.Add(1)
	return c.Reader.Stats(ctx, urls, now)
}
func (c *Counting) Daily(ctx context.Context, urls []string, from, to time.Time) ([]history.Day, error) {
	c.n.Add(1)
	return c.Reader.Daily(ctx, urls, from, to)
}
func (c *Counting) Windows(ctx context.Context, url string, from, to time.Time) ([]history.Window, error) {
	c.n.Add(1)
	return c.Reader.Windows(ctx, url, from, to)
}
func (c *Counting) Phases(ctx context.Context, url string, from, to time.Time) ([]history.Phases, error) {
	c.n.Add(1)
	return c.Reader.Phases(ctx, url, from, to)
}
func (c *Counting) Failures(ctx context.Context, url string, limit int) ([]history.Failure, error) {
	c.n.Add(1)
	return c.Reader.Failures(ctx, url, limit)
}
func (c *Counting) RegionWindows(ctx context.Context, url string, from, to time.Time) ([]history.Window, error) {
	c.n.Add(1)
	return c.Reader.RegionWindows(ctx, url, from, to)
}
func (c *Counting) RegionLatest(ctx context.Context, url string, since time.Time) ([]history.RegionCheck, error) {
	c.n.Add(1)
	return c.Reader.RegionLatest(ctx, url, since)
}
func (c *Counting) Incidents(ctx context.Context, q history.IncidentQuery) ([]history.Incident, error) {
	c.n.Add(1)
	return c.Reader.Incidents(ctx, q)
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
