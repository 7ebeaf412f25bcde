package alerts

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/binform"
)

// regionCheck is the i-th check (one a minute) of url from region; a
// region's checks run a few seconds after the slot, as a real region's
// would, so that two regions' checks of a slot are not simultaneous.
func regionCheck(url, region string, i int, up bool) *codecs.Result {
	r := check(url, i, up)
	r.Region = region
	r.EventID += "@" + region
	if region != "eu" {
		r.CheckedAt = r.CheckedAt.Add(3 * time.Second)
	}
	return r
}

// slots consumes, slot by slot, each region's check as its pattern says
// ('u' up, 'd' down, '-' no check that slot), starting at slot first.
func (h *harness) slots(url string, first int, patterns map[string]string) {
	h.t.Helper()
	regions := make([]string, 0, len(patterns))
	n := 0
	for r, p := range patterns {
		regions = append(regions, r)
		n = max(n, len(p))
	}
	slices.Sort(regions)
	for i := range n {
		for _, r := range regions {
			if p := patterns[r]; i < len(p) && p[i] != '-' {
				h.consume(regionCheck(url, r, first+i, p[i] == 'u'))
			}
		}
	}
}

// TestQuorumOneRegionDown: one region sees the site down, the other up:
// no down (the default quorum of two regions is both).
func TestQuorumOneRegionDown(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{Rules: map[string]Rule{site: {Interval: time.Minute}}})
	h.slots(site, 0, map[string]string{"eu": "uudddddddd", "us": "uuuuuuuuuu"})
	if got := kinds(h.emitted()); got != "" {
		t.Errorf("one region of two down: changes %q, want none", got)
	}
}

// TestQuorumBothDownThenUp: both regions down → one down listing both;
// both up again → one up listing both.
func TestQuorumBothDownThenUp(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{Rules: map[string]Rule{site: {Interval: time.Minute}}})
	// eu fails from slot 2, us from slot 3: us's third failure (slot 5)
	// makes the quorum.
	h.slots(site, 0, map[string]string{"eu": "uuddddddduuu", "us": "uuudddddduuu"})
	cs := h.emitted()
	if got := kinds(cs); got != "down up" {
		t.Fatalf("both regions down then up: changes %q, want down up", got)
	}
	down, up := cs[0], cs[1]
	if !slices.Equal(down.Regions, []string{"eu", "us"}) || down.EventID != site+"#5@us" ||
		!down.Since.Equal(t0.Add(2*time.Minute)) || down.Consecutive != 3 || down.PreviousState != codecs.StateUp {
		t.Errorf("down: regions %q event %s since %s consecutive %d previous %s",
			down.Regions, down.EventID, down.Since, down.Consecutive, down.PreviousState)
	}
	// eu is up again from slot 9, us from slot 9 too: us's second good
	// check (slot 10) is the second region up.
	if !slices.Equal(up.Regions, []string{"eu", "us"}) || up.EventID != site+"#10@us" || up.Consecutive != 2 {
		t.Errorf("up: regions %q event %s consecutive %d", up.Regions, up.EventID, up.Consecutive)
	}
	if cs := h.emitted(); len(cs) != 0 {
		t.Errorf("more changes: %q", kinds(cs))
	}
	// The changes pass the strict codec, regions included.
	for _, c := range []*codecs.StatusChange{down, up} {
		data, err := codecs.StatusChangeCodec{}.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := codecs.DecodeStatusChange(data); err != nil || !slices.Equal(back.Regions, c.Regions) {
			t.Errorf("%s change through the codec: %v, regions %q", c.Kind, err, back.Regions)
		}
	}
}

// TestQuorumDownNeedsQuorumUpToRecover: a down site whose down quorum is
// lost (one region recovers) stays down until a quorum of regions is up.
func TestQuorumDownNeedsQuorumUpToRecover(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{Rules: map[string]Rule{site: {Interval: time.Minute}}})
	h.slots(site, 0, map[string]string{"eu": "uudddduuuu", "us": "uuddddddddd"})
	if got := kinds(h.emitted()); got != "down" {
		t.Errorf("one region recovered, the other still down: changes %q, want down only", got)
	}
}

// TestQuorumStaleRegion: a region that stops checking no longer counts:
// once its newest check is more than 1.5 intervals older than the
// other's, the other region alone is the majority.
func TestQuorumStaleRegion(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{Rules: map[string]Rule{site: {Interval: time.Minute}}})
	// us checks slots 0 and 1 (up) and then stops; eu fails from slot 2.
	h.slots(site, 0, map[string]string{"eu": "uuddd", "us": "uu"})
	cs := h.emitted()
	if len(cs) != 1 || cs[0].Kind != codecs.ChangeDown {
		t.Fatalf("us stale, eu down: changes %q, want down", kinds(cs))
	}
	if !slices.Equal(cs[0].Regions, []string{"eu"}) || cs[0].EventID != site+"#4@eu" {
		t.Errorf("down: regions %q event %s, want eu's third failure", cs[0].Regions, cs[0].EventID)
	}

	// With a long interval us's up view is still recent: no down.
	const slow = "https://slow.example/"
	h.p.SetRules(map[string]Rule{slow: {Interval: 10 * time.Minute}})
	h.slots(slow, 0, map[string]string{"eu": "uuddd", "us": "uu"})
	if got := kinds(h.emitted()); got != "" {
		t.Errorf("us recent (interval 10m), eu down: changes %q, want none", got)
	}
}

// TestQuorumExplicit: -alert-quorum 1 makes one region's view enough;
// -alert-quorum 3 with two regions never alerts.
func TestQuorumExplicit(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{Quorum: 1, Rules: map[string]Rule{site: {Interval: time.Minute}}})
	h.slots(site, 0, map[string]string{"eu": "uudddduuu", "us": "uuuuuuuuu"})
	cs := h.emitted()
	if got := kinds(cs); got != "down up" {
		t.Fatalf("quorum 1, eu down: changes %q, want down up", got)
	}
	// eu's view stays down through one good check (successes 2): the
	// site is up at its second.
	if !slices.Equal(cs[0].Regions, []string{"eu"}) || !slices.Equal(cs[1].Regions, []string{"eu", "us"}) || cs[1].EventID != site+"#7@eu" {
		t.Errorf("regions: down %q up %q", cs[0].Regions, cs[1].Regions)
	}

	h3 := newHarness(t, Config{Quorum: 3})
	h3.slots(site, 0, map[string]string{"eu": "uudddddd", "us": "uudddddd"})
	if got := kinds(h3.emitted()); got != "" {
		t.Errorf("quorum 3 of 2 regions: changes %q, want none", got)
	}
}

// TestQuorumRegionsOutOfOrder: a region's check older than another
// region's newest is applied (regions' emitters produce independently);
// only one older than its own region's newest is late.
func TestQuorumRegionsOutOfOrder(t *testing.T) {
	t.Parallel()
	const site = "https://shop.example/"
	h := newHarness(t, Config{Rules: map[string]Rule{site: {Interval: time.Minute}}})
	for i := range 5 {
		// us's check of each slot (3 s after eu's) arrives before eu's.
		h.consume(regionCheck(site, "us", i, i < 2), regionCheck(site, "eu", i, i < 2))
	}
	if got := kinds(h.emitted()); got != "down" {
		t.Errorf("regions' checks out of order: changes %q, want down", got)
	}
	if n := counter(t, h.reg, "sitewatch_alerts_late_events_total"); n != 0 {
		t.Errorf("late events = %v, want 0", n)
	}
}

// TestStateFromVersion2: a value written before regions decodes as the
// default region's run, its held events as the default region's.
func TestStateFromVersion2(t *testing.T) {
	st := fullState(t)
	v2 := encodeV2(t, st)
	v, err := stateCodec{}.Decode(v2)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*state)
	want := []regionRun{{Region: codecs.DefaultRegion, View: st.State, RunUp: st.RunUp, RunCount: st.RunCount, RunSince: st.RunSince, Newest: st.Newest}}
	if !reflect.DeepEqual(got.Runs, want) || got.RunCount != st.RunCount || got.State != st.State {
		t.Errorf("runs %+v, want %+v", got.Runs, want)
	}
	if e := got.oldestHeld(); e.Result.Region != codecs.DefaultRegion || e.Result.EventID != st.URL+"#8" || e.Offset != -1 {
		t.Errorf("held: %+v %+v", e, e.Result)
	}
	// Re-encoded it is this version, and reads back the same.
	data, _ := stateCodec{}.Encode(got)
	if data[0] != stateVersion {
		t.Fatalf("re-encoded as version %d", data[0])
	}
	back, err := stateCodec{}.Decode(data)
	if err != nil || !sameState(back, got) {
		t.Errorf("read back: %v\n got %+v\nwant %+v", err, back, got)
	}
	// The decoded state goes on as before regions: the default region's
	// next check with the run's outcome continues the run.
	r := rules{failures: 3, successes: 2, certWarning: 14 * 24 * time.Hour}
	if v, _ := r.apply(got, check(st.URL, 10, st.RunUp), Rule{}); v != applied || got.RunCount != st.RunCount+1 || len(got.Runs) != 1 {
		t.Errorf("next check: verdict %v, run %d (was %d), %d runs", v, got.RunCount, st.RunCount, len(got.Runs))
	}
}

// encodeV2 writes st as version 2 did: no runs, held events without a
// region.
func encodeV2(t *testing.T, st *state) []byte {
	t.Helper()
	data, err := stateCodec{}.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	// Everything before the held list is as in version 2; rebuild the
	// held items without their trailing region.
	var held itemList
	st.held.list.each(func(item []byte) bool {
		e, err := decodeHeld(item, st.URL)
		if err != nil {
			t.Fatal(err)
		}
		full := appendHeld(nil, e)
		region := binform.AppendString(nil, e.Result.Region)
		if !bytes.HasSuffix(full, region) {
			t.Fatal("held event does not end with its region")
		}
		held.add(full[:len(full)-len(region)])
		return true
	})
	tail := st.held.list.appendTo(nil)
	tail = binary.AppendUvarint(tail, uint64(len(st.Runs)))
	for _, run := range st.Runs {
		tail = binform.AppendString(tail, run.Region)
		tail = binform.AppendString(tail, run.View)
		tail = append(tail, 0)
		if run.RunUp {
			tail[len(tail)-1] = 1
		}
		tail = binary.AppendUvarint(tail, uint64(run.RunCount))
		tail = binform.AppendTime(tail, run.RunSince)
		tail = binform.AppendTime(tail, run.Newest)
	}
	if !bytes.HasSuffix(data, tail) {
		t.Fatal("encoding does not end with the held events and the runs")
	}
	out := append([]byte(nil), data[:len(data)-len(tail)]...)
	out[0] = stateVersion2
	return held.appendTo(out)
}

// TestStateCodecRegions: a state with several regions' runs round-trips.
func TestStateCodecRegions(t *testing.T) {
	const site = "https://shop.example/"
	r := rules{failures: 3, successes: 2, certWarning: 14 * 24 * time.Hour}
	st := &state{URL: site}
	for i := range 5 {
		r.apply(st, regionCheck(site, "eu", i, i < 2), Rule{})
		r.apply(st, regionCheck(site, "us", i, true), Rule{})
	}
	st.hold(&pending{Result: regionCheck(site, "us", 9, false), Topic: "status_request_failed", Offset: 3, HeldAt: t0})
	if len(st.Runs) != 2 {
		t.Fatalf("runs %+v", st.Runs)
	}
	data, err := stateCodec{}.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	v, err := stateCodec{}.Decode(data)
	if err != nil || !sameState(v, st) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, v, st)
	}
	if e := v.(*state).oldestHeld(); e.Result.Region != "us" {
		t.Errorf("held event's region %q, want us", e.Result.Region)
	}
	for n := range data {
		if _, err := (stateCodec{}).Decode(data[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: decoded", n, len(data))
		}
	}
}
