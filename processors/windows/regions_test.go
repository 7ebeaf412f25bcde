package windows

import (
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/codecs"
)

func inRegion(region string) func(*codecs.Result) {
	return func(r *codecs.Result) { r.Region = region }
}

// Two regions' checks of one URL are two windows, each equal to what SQL
// computes from check_results for that region, in the one state of the
// URL (the table key); a repeat of a region's event is still a duplicate.
func TestTwoRegionsTwoWindowsPerURL(t *testing.T) {
	h := newHarness(t, at(12, 0, 0))
	def := []*codecs.Result{
		result(site, "d1", at(12, 1, 0), responseMS(10)),
		result(site, "d2", at(12, 2, 0), responseMS(20)),
	}
	eu := []*codecs.Result{
		result(site, "e1", at(12, 1, 1), responseMS(100), inRegion("eu")),
		result(site, "e2", at(12, 2, 1), failed(codecs.ErrTimeout, 0, nil), inRegion("eu")),
		result(site, "e3", at(12, 3, 1), responseMS(300), inRegion("eu")),
	}
	for i := range 3 {
		if i < len(def) {
			h.consume(def[i])
		}
		h.consume(eu[i])
	}
	h.consume(eu[0]) // a repeat
	h.consume(result(site, "next", at(12, 5, 0)))
	got := h.emitted()
	want := expectedWindows(append(append([]*codecs.Result{}, def...), eu...), DefaultWindowSize)
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("emitted %d windows (%+v), want one per region", len(got), got)
	}
	for _, g := range got {
		w := want[windowKey{site, g.WindowStart, g.Region}]
		if w == nil {
			t.Fatalf("window of region %q at %v not expected", g.Region, g.WindowStart)
		}
		if d := diffWindow(g, w); d != "" {
			t.Errorf("region %s: %s", g.Region, d)
		}
	}
	if n := h.counter("sitewatch_windows_duplicate_events_total"); n != 1 {
		t.Errorf("duplicate counter %v, want 1", n)
	}
	// And the state keeps both regions through the codec.
	st, _ := reloaded(t, h.tt.TableValue(goka.GroupTable(DefaultGroup), site).(*state))
	regions := map[string]int64{}
	for _, w := range st.Windows {
		regions[w.Region] += w.Checks
	}
	if regions[codecs.DefaultRegion] != 3 || regions["eu"] != 3 { // "next" is default's
		t.Errorf("checks by region in the reloaded state: %v", regions)
	}
}

// A group table written before regions (binary version 2: windows without
// a region) decodes, its windows as the default region's, and goes on:
// a running table upgrades in place.
func TestStateFromVersion2(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	st := &state{}
	for i, r := range []*codecs.Result{result(site, "a", at(12, 1, 0), responseMS(10)), result(site, "b", at(12, 6, 0), responseMS(20))} {
		if v, _ := rules.apply(st, r, r.CheckedAt, time.Time{}); v != applied {
			t.Fatalf("%d: %v", i, v)
		}
	}
	// Version 2's bytes: without the windows' regions and slots, the
	// response times in 8 bytes, no dropped slots.
	b := olderState(st, stateVersionNoRegion, func(w window) window {
		w.Region = ""
		return w
	})
	v, err := stateCodec{}.Decode(b)
	if err != nil {
		t.Fatalf("decode version 2: %v", err)
	}
	old := v.(*state)
	if d := stateDiff(st, old); d != "" {
		t.Fatalf("version-2 state decoded differently: %s", d)
	}
	if v, _ := rules.apply(old, result(site, "c", at(12, 2, 0), responseMS(30)), at(12, 7, 0), time.Time{}); v != applied {
		t.Fatalf("an event on a version-2 state: %v", v)
	}
	if w := old.Windows[0]; w.Region != codecs.DefaultRegion || w.Checks != 2 {
		t.Errorf("window of a version-2 state after one more event: region %q, %d checks", w.Region, w.Checks)
	}
}
