package dashboard

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// result builds a check result; a down one with no response when ms < 0.
func result(id, url string, at time.Time, up bool, ms float64) *codecs.Result {
	r := &codecs.Result{EventID: id, URL: url, CheckedAt: at, ScheduledAt: at, Outcome: codecs.OutcomeUp, StatusCode: 200, Checker: "t"}
	if ms >= 0 {
		r.ResponseTimeMS = &ms
	}
	if !up {
		kind, msg := codecs.ErrStatus, "status 503, expected 2xx or 3xx"
		if ms < 0 {
			kind, msg = codecs.ErrConnect, "connect: connection refused"
			r.StatusCode = 0
		} else {
			r.StatusCode = 503
		}
		r.Outcome, r.ErrorKind, r.ErrorMessage = codecs.OutcomeDown, &kind, &msg
	}
	return r
}

func rowOf(t *testing.T, s Snapshot, url string) Row {
	t.Helper()
	i := slices.IndexFunc(s.Rows, func(r Row) bool { return r.URL == url })
	if i < 0 {
		t.Fatalf("no row for %s in %+v", url, s.Rows)
	}
	return s.Rows[i]
}

func TestBoardListsConfiguredSitesBeforeResults(t *testing.T) {
	b := NewBoard([]Site{{URL: "https://a/", Name: "A"}, {URL: "https://b/"}, {URL: "https://a/", Name: "dup"}}, time.Minute)
	s := b.Snapshot(t0)
	if len(s.Rows) != 2 {
		t.Fatalf("rows %+v, want the two distinct sites", s.Rows)
	}
	if s.Rows[0].Name != "A" || s.Rows[1].Name != "https://b/" {
		t.Errorf("names %q, %q: want the configured name, else the URL", s.Rows[0].Name, s.Rows[1].Name)
	}
	if s.Rows[0].Checked || s.Rows[0].Checks != 0 || s.Rows[0].P95MS != nil {
		t.Errorf("unchecked site has data: %+v", s.Rows[0])
	}
	// A URL only seen in results (a site added by a reload) is appended.
	b.Add(result("1", "https://c/", t0, true, 5))
	s = b.Snapshot(t0)
	if len(s.Rows) != 3 || s.Rows[2].URL != "https://c/" || !s.Rows[2].Checked {
		t.Errorf("rows %+v: want https://c/ appended and checked", s.Rows)
	}
}

// The table follows the sites registry: a site added through the API is
// listed before its first check, a renamed one takes its new name, a
// removed one leaves, keeping its history nowhere; a site seen only in
// results stays, since its results keep arriving.
func TestBoardSetSitesFollowsTheRegistry(t *testing.T) {
	b := NewBoard([]Site{{URL: "https://a/", Name: "A"}, {URL: "https://b/", Name: "B"}}, time.Minute)
	b.Add(result("1", "https://a/", t0, false, 5))
	b.Add(result("2", "https://x/", t0, true, 5))
	b.SetSites([]Site{{URL: "https://b/", Name: "B renamed"}, {URL: "https://c/"}})
	s := b.Snapshot(t0)
	var got []string
	for _, r := range s.Rows {
		got = append(got, r.URL+"="+r.Name)
	}
	want := []string{"https://b/=B renamed", "https://x/=https://x/", "https://c/=https://c/"}
	if !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	// A removed site that comes back is new: none of its old checks.
	b.SetSites([]Site{{URL: "https://a/", Name: "A again"}})
	if r := rowOf(t, b.Snapshot(t0), "https://a/"); r.Checked || r.Name != "A again" {
		t.Errorf("re-added site: %+v, want unchecked and the new name", r)
	}
}

func TestBoardWindowStatistics(t *testing.T) {
	const url = "https://a/"
	b := NewBoard([]Site{{URL: url}}, time.Minute)
	// 40 checks one second apart: 1..40 ms; 5, 15 and 25 are down with a
	// 503 (a response), and 35 got no response at all.
	var samples []float64
	var up, total int
	for i := 1; i <= 40; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		ms, ok := float64(i), i%10 != 5
		if i == 35 {
			ms, ok = -1, false
		} else {
			samples = append(samples, ms)
		}
		total++
		if ok {
			up++
		}
		b.Add(result(fmt.Sprint(i), url, at, ok, ms))
	}
	now := t0.Add(41 * time.Second)
	r := rowOf(t, b.Snapshot(now), url)
	if r.Checks != total || r.Failures != total-up {
		t.Errorf("checks %d failures %d, want %d and %d", r.Checks, r.Failures, total, total-up)
	}
	if u, ok := r.Uptime(); !ok || math.Abs(u-100*float64(up)/float64(total)) > 1e-9 {
		t.Errorf("uptime %v, want %v", u, 100*float64(up)/float64(total))
	}
	want := percentileCont(samples, 0.95)
	if r.P95MS == nil || math.Abs(*r.P95MS-want) > 0.01*want {
		t.Errorf("p95 %v, want %v within 1%%", r.P95MS, want)
	}
	if !r.Up || r.StatusCode != 200 || r.ResponseMS == nil || *r.ResponseMS != 40 || !r.CheckedAt.Equal(t0.Add(40*time.Second)) {
		t.Errorf("last check %+v, want the 40th (up, 200, 40 ms)", r)
	}
	if !r.LastFailure.Equal(t0.Add(35*time.Second)) || r.LastError != "connect: connection refused" {
		t.Errorf("last failure %v %q, want check 35 with its message once", r.LastFailure, r.LastError)
	}

	// 30 s later only checks 12..40 are in (now-1m, now].
	r = rowOf(t, b.Snapshot(now.Add(30*time.Second)), url)
	if r.Checks != 29 || r.Failures != 3 {
		t.Errorf("after 30s: %d checks, %d failures in the window, want 29 and 3", r.Checks, r.Failures)
	}
	// Long after, the window is empty but the last check and failure stay.
	r = rowOf(t, b.Snapshot(now.Add(time.Hour)), url)
	if _, ok := r.Uptime(); ok || r.P95MS != nil || !r.Checked || r.LastFailure.IsZero() {
		t.Errorf("an hour later: %+v; want no window data, last check and failure kept", r)
	}
}

func TestBoardIgnoresRedeliveriesAndOrder(t *testing.T) {
	const url = "https://a/"
	b := NewBoard(nil, time.Minute)
	late := result("old", url, t0.Add(time.Second), false, 3)
	b.Add(result("new", url, t0.Add(2*time.Second), true, 7))
	// An older result arriving later (the other topic lagged) counts in
	// the window but is not the site's status.
	if _, changed := b.Add(late); changed {
		t.Error("an older result reported a change")
	}
	b.Add(late) // re-delivered
	b.Add(result("new", url, t0.Add(2*time.Second), true, 7))
	r := rowOf(t, b.Snapshot(t0.Add(3*time.Second)), url)
	if !r.Up || r.Checks != 2 || r.Failures != 1 {
		t.Errorf("row %+v: want up (newest), 2 checks, 1 failure", r)
	}
	if !r.LastFailure.Equal(late.CheckedAt) {
		t.Errorf("last failure %v, want %v", r.LastFailure, late.CheckedAt)
	}
}

func TestBoardChanges(t *testing.T) {
	const url = "https://a/"
	b := NewBoard([]Site{{URL: url, Name: "A"}}, time.Minute)
	steps := []struct {
		name string
		r    *codecs.Result
		want *Change
	}{
		{"first result up: nothing to report", result("1", url, t0.Add(1*time.Second), true, 1), nil},
		{"still up", result("2", url, t0.Add(2*time.Second), true, 1), nil},
		{"goes down", result("3", url, t0.Add(3*time.Second), false, -1),
			&Change{URL: url, Name: "A", Region: "default", Up: false, At: t0.Add(3 * time.Second), ErrorKind: "connect", ErrorMessage: "connect: connection refused"}},
		{"still down", result("4", url, t0.Add(4*time.Second), false, 2), nil},
		{"older up arrives late", result("0", url, t0.Add(500*time.Millisecond), true, 1), nil},
		{"comes back", result("5", url, t0.Add(5*time.Second), true, 1), &Change{URL: url, Name: "A", Region: "default", Up: true, At: t0.Add(5 * time.Second)}},
		{"re-delivery of the change", result("5", url, t0.Add(5*time.Second), true, 1), nil},
	}
	for _, s := range steps {
		c, ok := b.Add(s.r)
		switch {
		case s.want == nil && ok:
			t.Errorf("%s: reported %+v", s.name, c)
		case s.want != nil && (!ok || c != *s.want):
			t.Errorf("%s: got %+v (reported %v), want %+v", s.name, c, ok, *s.want)
		}
	}
	// A site whose first result is down is news.
	if c, ok := b.Add(result("x", "https://b/", t0, false, 5)); !ok || c.Up {
		t.Errorf("first result down: got %+v, %v", c, ok)
	}
}

// Two regions: each has its state in the row, a change is one region's
// (two regions that disagree are not a change of every check), and a
// region that stops checking drops out of the row.
func TestBoardRegions(t *testing.T) {
	const url = "https://a/"
	b := NewBoard([]Site{{URL: url, Name: "A"}}, time.Minute)
	in := func(r *codecs.Result, region string) *codecs.Result { r.Region = region; return r }
	if _, ok := b.Add(in(result("eu1", url, t0.Add(time.Second), true, 1), "eu")); ok {
		t.Errorf("eu's first result up: reported a change")
	}
	if r := rowOf(t, b.Snapshot(t0.Add(2*time.Second)), url); r.Regions != nil {
		t.Errorf("one region: row regions %+v, want none", r.Regions)
	}
	c, ok := b.Add(in(result("us1", url, t0.Add(2*time.Second), false, 1), "us"))
	if !ok || c.Region != "us" || c.Up {
		t.Errorf("us's first result down: %+v %v, want us going down", c, ok)
	}
	// eu up again and us down again, alternating: no change at all.
	for i := range 3 {
		at := t0.Add(time.Duration(3+2*i) * time.Second)
		if c, ok := b.Add(in(result(fmt.Sprint("eu-", i), url, at, true, 1), "eu")); ok {
			t.Errorf("eu still up: reported %+v", c)
		}
		if c, ok := b.Add(in(result(fmt.Sprint("us-", i), url, at.Add(time.Second), false, 1), "us")); ok {
			t.Errorf("us still down: reported %+v", c)
		}
	}
	r := rowOf(t, b.Snapshot(t0.Add(9*time.Second)), url)
	want := []RegionState{{"eu", true, t0.Add(7 * time.Second)}, {"us", false, t0.Add(8 * time.Second)}}
	if fmt.Sprint(r.Regions) != fmt.Sprint(want) || r.Up {
		t.Errorf("row regions %+v (site up %v), want %+v and the site as its newest check (us, down)", r.Regions, r.Up, want)
	}
	// us stops; eu checks on past a window: us drops out.
	for i := range 70 {
		b.Add(in(result(fmt.Sprint("eu-late-", i), url, t0.Add(time.Duration(10+i)*time.Second), true, 1), "eu"))
	}
	if r := rowOf(t, b.Snapshot(t0.Add(80*time.Second)), url); r.Regions != nil || !r.Up {
		t.Errorf("after us stopped for a window: regions %+v, up %v; want none (eu alone), up", r.Regions, r.Up)
	}
}

// percentileCont is PostgreSQL's percentile_cont, for comparison.
func percentileCont(vs []float64, q float64) float64 {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	pos := q * float64(len(vs)-1)
	lo := int(math.Floor(pos))
	if lo+1 >= len(vs) {
		return vs[lo]
	}
	return vs[lo] + (pos-float64(lo))*(vs[lo+1]-vs[lo])
}
