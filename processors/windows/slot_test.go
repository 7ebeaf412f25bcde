package windows

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/binform"
	"github.com/sitewatch/sitewatch/internal/testkit"
)

// again is the same slot as r checked again after a crash: the url_checker
// re-checks a redelivered request, so the result has r's event_id and
// scheduled_at, a later checked_at and maybe another outcome.
func again(r *codecs.Result, after time.Duration) *codecs.Result {
	c := *r
	c.CheckedAt = r.CheckedAt.Add(after)
	c.Outcome, c.StatusCode, c.ErrorKind, c.ErrorMessage = codecs.OutcomeDown, 503, ptr(codecs.ErrStatus), ptr("503")
	c.ResponseTimeMS = ptr(999.0)
	return &c
}

// A slot checked twice counts once, in the window of its first check (the
// row the store keeps), even when the repeat's checked_at falls in the
// next window: the windows then equal the stored rows.
func TestRepeatedSlotCountedOnceInFirstWindow(t *testing.T) {
	h := newHarness(t, at(12, 0, 0))
	a := result(site, "a", at(12, 4, 50), responseMS(10))
	b := result(site, "b", at(12, 5, 20), responseMS(20))
	h.consume(result(site, "x", at(12, 1, 0), responseMS(30)))
	h.consume(a)
	h.consume(again(a, 25*time.Second)) // 12:05:15, the next window
	h.consume(b)
	h.consume(again(b, 5*time.Second)) // same window
	h.consume(result(site, "y", at(12, 10, 0)))
	// A duplicate re-sends the windows already emitted (in case a crash
	// lost them); the last emission of each window is what a sink keeps.
	got := map[time.Time]*codecs.Window{}
	for _, w := range h.emitted() {
		got[w.WindowStart] = w
	}
	for _, want := range []*codecs.Window{
		expectedWindows([]*codecs.Result{result(site, "x", at(12, 1, 0), responseMS(30)), a}, DefaultWindowSize)[windowKey{site, at(12, 0, 0), codecs.DefaultRegion}],
		expectedWindows([]*codecs.Result{b}, DefaultWindowSize)[windowKey{site, at(12, 5, 0), codecs.DefaultRegion}],
	} {
		w := got[want.WindowStart]
		if w == nil {
			t.Errorf("window %v not emitted", want.WindowStart)
			continue
		}
		if d := diffWindow(w, want); d != "" {
			t.Errorf("window %v: %s", want.WindowStart, d)
		}
	}
	if len(got) != 2 {
		t.Errorf("emitted windows %v, want 12:00 and 12:05", got)
	}
	if n := h.counter("sitewatch_windows_duplicate_events_total"); n != 2 {
		t.Errorf("duplicate counter %v, want 2", n)
	}
}

// The event_ids that recognise a repeat survive the group table: encoded
// and decoded (a restart recovering the table), and after the first
// check's window was dropped, for a site checked every minute.
//
// Both for an emitter's events, kept by slot, and for events of a producer
// with ids of its own, kept by id.
func TestRepeatedSlotRecognisedAfterRestoreAndDrop(t *testing.T) {
	for _, bySlot := range []bool{true, false} {
		t.Run("by slot "+strconv.FormatBool(bySlot), func(t *testing.T) { testRepeatedSlotAfterRestoreAndDrop(t, bySlot) })
	}
}

func testRepeatedSlotAfterRestoreAndDrop(t *testing.T, bySlot bool) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	st := &state{}
	var slots []*codecs.Result
	for i := range 9 { // one a minute, 12:00:30 to 12:08:30
		r := result(site, "m"+strconv.Itoa(i), at(12, i, 30))
		if bySlot {
			r = slotResult(site, codecs.DefaultRegion, at(12, i, 30))
		}
		slots = append(slots, r)
		if v, _ := rules.apply(st, r, r.CheckedAt, time.Time{}); v != applied {
			t.Fatalf("%s: %v", r.EventID, v)
		}
		st, _ = reloaded(t, st)
	}
	if st.Horizon.IsZero() {
		t.Fatalf("test bug: no window was dropped yet: %+v", st)
	}
	if kept := keptBy(st); kept != map[bool]string{true: "slots", false: "ids"}[bySlot] {
		t.Fatalf("events kept by %s", kept)
	}
	// Slot m6 (12:06:30) is in a window still kept, m4 (12:04:30) in the
	// window dropped; each is checked again within two intervals.
	for _, r := range []*codecs.Result{slots[6], slots[4]} {
		rep := again(r, 75*time.Second)
		if start := rules.windowStart(rep.CheckedAt); start.Before(st.Horizon) {
			t.Fatalf("test bug: repeat of %s at %v is simply too late", r.EventID, rep.CheckedAt)
		}
		if v, _ := rules.apply(st, rep, rep.CheckedAt, time.Time{}); v != duplicate {
			t.Errorf("repeat of %s (first check's window dropped: %v): %v, want duplicate", r.EventID, r.CheckedAt.Before(st.Horizon), v)
		}
	}
}

// slotResult is an emitter's result: its event_id is its slot's.
func slotResult(url, region string, scheduledAt time.Time, opts ...func(*codecs.Result)) *codecs.Result {
	r := result(url, codecs.SlotEventID(url, scheduledAt, region), scheduledAt, opts...)
	r.Region = region
	return r
}

// keptBy says how st keeps its events: "slots", "ids", "both" or "none",
// windows and dropped ones alike.
func keptBy(st *state) string {
	slots, ids := len(st.DroppedSlots), len(st.Dropped)
	for _, w := range st.Windows {
		slots, ids = slots+len(w.Slots), ids+len(w.EventIDs)
	}
	switch {
	case slots > 0 && ids > 0:
		return "both"
	case slots > 0:
		return "slots"
	case ids > 0:
		return "ids"
	}
	return "none"
}

// A slot is one region's: another region's check of the same slot (its
// own event_id, its own row) is applied, and each is a duplicate of
// itself only.
func TestSlotIsPerRegion(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	st := &state{}
	def, eu := slotResult(site, codecs.DefaultRegion, at(12, 1, 0)), slotResult(site, "eu", at(12, 1, 0))
	for _, step := range []struct {
		r    *codecs.Result
		want verdict
	}{{def, applied}, {eu, applied}, {again(def, time.Second), duplicate}, {again(eu, time.Second), duplicate}} {
		if v, _ := rules.apply(st, step.r, step.r.CheckedAt, time.Time{}); v != step.want {
			t.Errorf("%s's check: %v, want %v", step.r.Region, v, step.want)
		}
		st, _ = reloaded(t, st)
	}
	// An event of another producer whose id is not its slot's is its own
	// event, though its slot is def's.
	other := result(site, "other", at(12, 1, 0))
	if v, _ := rules.apply(st, other, other.CheckedAt, time.Time{}); v != applied {
		t.Errorf("an event with an id of its own in an emitter's slot: %v, want applied", v)
	}
	if kept := keptBy(st); kept != "both" {
		t.Errorf("events kept by %s, want both", kept)
	}
}

// A group table written before slots (version 3: every event kept by its
// event_id) decodes and goes on: a repeat of an event it holds is still
// a duplicate, though new events are kept by slot.
func TestStateFromVersion3(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	var rs []*codecs.Result
	for i := range 9 { // one a minute, as above: a window is dropped
		rs = append(rs, slotResult(site, codecs.DefaultRegion, at(12, i, 30)))
	}
	// Version 3 kept every event by id: the ids in EventIDs and Dropped.
	st := &state{}
	for _, r := range rs {
		if v, _ := rules.apply(st, r, r.CheckedAt, time.Time{}); v != applied {
			t.Fatalf("%v", v)
		}
	}
	if st.Horizon.IsZero() || len(st.DroppedSlots) == 0 {
		t.Fatalf("test bug: no window was dropped yet: %+v", st)
	}
	for _, s := range st.DroppedSlots {
		st.Dropped = append(st.Dropped, codecs.SlotEventID(site, time.Unix(0, s.At), s.Region))
	}
	st.DroppedSlots = nil
	b := olderState(st, stateVersionNoSlots, func(c window) window {
		c.EventIDs = slices.Clone(c.EventIDs)
		for _, s := range c.Slots {
			c.EventIDs = append(c.EventIDs, codecs.SlotEventID(site, time.Unix(0, s), c.Region))
		}
		slices.Sort(c.EventIDs)
		c.Slots = nil
		return c
	})
	v, err := stateCodec{}.Decode(b)
	if err != nil {
		t.Fatalf("decode version 3: %v", err)
	}
	old := v.(*state)
	if kept := keptBy(old); kept != "ids" {
		t.Fatalf("version-3 state keeps its events by %s", kept)
	}
	// rs[6] is in a window kept, rs[4] in the one dropped.
	for _, r := range []*codecs.Result{rs[6], rs[4]} {
		rep := again(r, 75*time.Second)
		if v, _ := rules.apply(old, rep, rep.CheckedAt, time.Time{}); v != duplicate {
			t.Errorf("repeat of %v on a version-3 state: %v, want duplicate", r.ScheduledAt, v)
		}
	}
	next := slotResult(site, codecs.DefaultRegion, at(12, 9, 30))
	if v, _ := rules.apply(old, next, next.CheckedAt, time.Time{}); v != applied {
		t.Fatalf("a new event on a version-3 state: %v", v)
	}
	again3, _ := reloaded(t, old)
	if kept := keptBy(again3); kept != "both" {
		t.Errorf("upgraded state keeps its events by %s, want both", kept)
	}
	if v, _ := rules.apply(again3, again(next, time.Second), next.CheckedAt.Add(time.Second), time.Time{}); v != duplicate {
		t.Errorf("repeat of a new event on an upgraded state: %v, want duplicate", v)
	}
}

// A window's percentiles are percentile_cont of its response times up to
// MaxExactResponses, and the sketch's above, flagged in the window.
func TestExactPercentilesUpToCap(t *testing.T) {
	rules := params{size: time.Hour, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 300, MaxExactResponses, MaxExactResponses + 1, 2 * MaxExactResponses} {
		st := &state{}
		var rs []*codecs.Result
		for i := range n {
			ms := math.Round(math.Exp(3+rnd.NormFloat64())*1e6) / 1e6 // lognormal around 20 ms, ns resolution
			r := result(site, "p"+strconv.Itoa(i), at(12, 0, 0).Add(time.Duration(i)*time.Second/4), responseMS(ms))
			rs = append(rs, r)
			rules.apply(st, r, r.CheckedAt, time.Time{})
		}
		w := rules.snapshot(st.Windows[0])
		w.URL = site
		want := expectedWindows(rs, time.Hour)[windowKey{site, at(12, 0, 0), codecs.DefaultRegion}]
		if exact := n <= MaxExactResponses; w.PercentilesExact != exact {
			t.Errorf("%d responses: percentiles_exact %v, want %v", n, w.PercentilesExact, exact)
		}
		if d := diffWindow(w, want); d != "" {
			t.Errorf("%d responses: %s", n, d)
		}
		if n > MaxExactResponses && st.Windows[0].Times != nil {
			t.Errorf("%d responses: %d response times still kept", n, len(st.Windows[0].Times))
		}
	}
}

// A window from a table written before the response times were kept (JSON,
// version 1) goes on with its sketch; one without responses yet becomes
// exact.
func TestStateFromVersion1(t *testing.T) {
	v1 := `{"v":1,"watermark":"2026-03-02T12:03:00Z","horizon":"0001-01-01T00:00:00Z","last_arrival":"2026-03-02T12:03:00Z",
"windows":[{"start":"2026-03-02T12:00:00Z","checks":2,"failures":0,"regexp_failures":0,
"response":{"count":2,"sum":30,"min":10,"max":20,"index":[232,302],"counts":[1,1]},
"status_counts":{"200":2},"event_ids":["a","b"],"revision":0,"dirty":true},
{"start":"2026-03-02T12:05:00Z","checks":1,"failures":1,"regexp_failures":0,"response":{"count":0,"sum":0,"min":0,"max":0},
"status_counts":{"0":1},"event_ids":["c"],"revision":0,"dirty":true}]}`
	v, err := stateCodec{}.Decode([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	st := v.(*state)
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	for _, r := range []*codecs.Result{result(site, "d", at(12, 4, 0), responseMS(30)), result(site, "e", at(12, 6, 0), responseMS(40))} {
		if v, _ := rules.apply(st, r, r.CheckedAt, time.Time{}); v != applied {
			t.Fatalf("%s: %v", r.EventID, v)
		}
	}
	old, fresh := rules.snapshot(st.Windows[0]), rules.snapshot(st.Windows[1])
	if old.PercentilesExact || old.Responses != 3 || *old.ResponseMaxMS != 30 {
		t.Errorf("version-1 window: %+v", old)
	}
	if !fresh.PercentilesExact || fresh.Responses != 1 || *fresh.ResponseP50MS != 40 {
		t.Errorf("version-1 window without responses: %+v", fresh)
	}
	if _, err := (stateCodec{}).Decode([]byte(`{"v":7}`)); err == nil {
		t.Error("JSON state of version 7 decoded")
	}
}

// Every state survives the binary codec unchanged, and a damaged value is
// an error, never a panic or a half-read state.
func TestStateCodecRoundTrip(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	st := &state{LastArrival: time.Date(2026, 3, 2, 12, 0, 0, 123456789, time.UTC)}
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		t := at(12, 0, 0).Add(time.Duration(i)*3*time.Second + time.Duration(rnd.IntN(1e9)))
		r := result(site, "ev-"+strconv.Itoa(i), t, responseMS(rnd.Float64()*100))
		if i%3 != 0 { // most by slot, of two regions
			r = slotResult(site, []string{codecs.DefaultRegion, "eu"}[i%2], t, responseMS(rnd.Float64()*100))
		}
		switch i % 7 {
		case 3:
			failed(codecs.ErrConnect, 0, nil)(r)
		case 5:
			failed(codecs.ErrStatus, 404, ptr(0.0))(r)
		}
		rules.apply(st, r, r.CheckedAt, time.Time{})
	}
	st.Windows[0].Exact, st.Windows[0].Times = false, nil // a sketched window
	for _, v := range []float64{0, 1.5, 1e6} {
		st.Windows[0].Response.Add(v)
	}
	st.Windows[0].EmitTopic, st.Windows[0].EmitOffset = "status_request_failed", 1<<40
	v, data := reloaded(t, st)
	if d := stateDiff(st, v); d != "" {
		t.Fatalf("decoded state differs: %s", d)
	}
	if again, _ := (stateCodec{}).Encode(v); string(again) != string(data) {
		t.Error("the same state encodes to other bytes")
	}
	for n := range len(data) {
		if _, err := (stateCodec{}).Decode(data[:n]); err == nil {
			t.Fatalf("value cut to %d of %d bytes decoded", n, len(data))
		}
	}
	for _, bad := range [][]byte{nil, {3}, append(append([]byte{}, data...), 0)} {
		if _, err := (stateCodec{}).Decode(bad); err == nil {
			t.Errorf("%x decoded", bad[:min(len(bad), 8)])
		}
	}
}

// reloaded is st as the group table gives it back (a restart recovering
// the table): encoded and decoded. It also returns the encoding.
func reloaded(t *testing.T, st *state) (*state, []byte) {
	t.Helper()
	return testkit.Stored(t, stateCodec{}, st)
}

// stateDiff compares two states field by field ("" when equal), times by
// instant.
func stateDiff(a, b *state) string {
	if !a.Watermark.Equal(b.Watermark) || !a.Horizon.Equal(b.Horizon) || !a.LastArrival.Equal(b.LastArrival) {
		return "times"
	}
	if len(a.Windows) != len(b.Windows) || !slices.Equal(a.Dropped, b.Dropped) || !slices.Equal(a.DroppedSlots, b.DroppedSlots) {
		return "lengths or dropped"
	}
	for i, w := range a.Windows {
		x := *b.Windows[i]
		if !w.Start.Equal(x.Start) {
			return "start of window " + strconv.Itoa(i)
		}
		x.Start = w.Start
		y := *w
		if d := deepDiff(&y, &x); d != "" {
			return "window " + strconv.Itoa(i) + ": " + d
		}
	}
	return ""
}

func deepDiff(a, b *window) string {
	if a.Region != b.Region || a.Checks != b.Checks || a.Failures != b.Failures || a.RegexpFailures != b.RegexpFailures ||
		a.Exact != b.Exact || a.Dirty != b.Dirty || a.Revision != b.Revision || a.EmitTopic != b.EmitTopic || a.EmitOffset != b.EmitOffset {
		return "scalars"
	}
	if len(a.Times) != len(b.Times) || len(a.EventIDs) != len(b.EventIDs) || len(a.StatusCounts) != len(b.StatusCounts) {
		return "lengths"
	}
	for i := range a.Times {
		if math.Float64bits(a.Times[i]) != math.Float64bits(b.Times[i]) {
			return "times"
		}
	}
	if !slices.Equal(a.EventIDs, b.EventIDs) || !slices.Equal(a.Slots, b.Slots) {
		return "event ids or slots"
	}
	for k, v := range a.StatusCounts {
		if b.StatusCounts[k] != v {
			return "status counts"
		}
	}
	ra, rb := a.Response, b.Response
	if ra.Count != rb.Count || ra.Sum != rb.Sum || ra.Min != rb.Min || ra.Max != rb.Max || ra.Zeros != rb.Zeros ||
		len(ra.Index) != len(rb.Index) {
		return "sketch"
	}
	for i := range ra.Index {
		if ra.Index[i] != rb.Index[i] || ra.Counts[i] != rb.Counts[i] {
			return "sketch buckets"
		}
	}
	return ""
}

// Response times read back with the same bits, those of a check (whole
// nanoseconds in milliseconds, kept in a few bytes) and any other float a
// producer may send alike.
func TestResponseTimesKeepTheirBits(t *testing.T) {
	checks := []float64{0, 0.1, 1, 12.345678, 999.999999, float64(2*time.Second) / float64(time.Millisecond)}
	others := []float64{math.Copysign(0, -1), 0.1234567891, 1.0 / 3, -5, 1e300, math.NaN(), math.Inf(1), math.SmallestNonzeroFloat64}
	for i, v := range slices.Concat(checks, others) {
		b := appendResponseTime(nil, v)
		d := &stateDecoder{Reader: binform.Reader[string]{Data: string(b)}, version: stateVersion}
		if got := d.responseTime(); d.Err != nil || math.Float64bits(got) != math.Float64bits(v) || d.Pos != len(b) {
			t.Errorf("%v read back as %v (%v)", v, got, d.Err)
		}
		if compact := i < len(checks); compact != (len(b) < 9) {
			t.Errorf("%v in %d bytes", v, len(b))
		}
	}
}
