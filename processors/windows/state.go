package windows

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/processors/windows/hist"
)

// stateVersion is the version of the group-table value this build writes
// (see stateCodec, which also reads versions 1 to 4). A value of an unknown
// version stops the processor (goka panics on a decode error) rather than
// being misread.
const stateVersion = 5

// MaxExactResponses is how many response times a window keeps to compute
// exact percentiles (percentile_cont, as check_windows_recomputed does);
// above it the window falls back to the histogram sketch, within 1 %, and
// says so in percentiles_exact. 4096 values are 32 KiB of state.
const MaxExactResponses = codecs.MaxExactResponses

// maxDroppedIDs bounds the event_ids kept from the window last dropped
// (state.Dropped): at the default size and grace, a window with more
// checks belongs to a site checked at least every 19 s, whose repeats come
// well within the grace.
const maxDroppedIDs = 16

// state is one URL's value in the group table: the windows of every
// region that checks the URL (the table is keyed by URL, the Kafka key of
// the results), each window being one region's.
type state struct {
	V int `json:"v"`
	// Watermark is the newest checked_at applied for the URL (event time,
	// capped a little ahead of the wall clock, see params.apply).
	Watermark time.Time `json:"watermark"`
	// Horizon is the end of the newest window dropped from state: an event
	// before it would re-open a finished window, so it is too late.
	Horizon time.Time `json:"horizon"`
	// LastArrival is the wall time at which the last event for the URL was
	// processed; the idle close waits for the URL to go quiet.
	LastArrival time.Time `json:"last_arrival"`
	// Windows are the windows kept for late events, ordered by start, then
	// region.
	Windows []*window `json:"windows"`
	// Dropped are the event_ids of the windows last dropped (those of one
	// advance, a window per region), of each that had at most
	// maxDroppedIDs, so that a slot checked again after a crash is
	// recognised even when its first check's window is gone; see
	// state.seen. DroppedSlots are the same for events identified by
	// their slot (see window.Slots), Dropped for the others.
	Dropped      []string     `json:"dropped,omitempty"`
	DroppedSlots []regionSlot `json:"-"`
}

// regionSlot is one region's check of one slot of the URL: the event whose
// event_id is codecs.SlotEventID(URL, At, Region).
type regionSlot struct {
	Region string
	At     int64 // scheduled_at, Unix nanoseconds
}

// window is the running aggregate of one URL's checks by one region in
// [Start, Start+size).
type window struct {
	Start time.Time `json:"start"`
	// Region is the region whose checks the window counts (states written
	// before regions decode as codecs.DefaultRegion).
	Region         string `json:"region,omitempty"`
	Checks         int64  `json:"checks"`
	Failures       int64  `json:"failures"`
	RegexpFailures int64  `json:"regexp_failures"`
	// Exact is true while the window keeps its response times in Times
	// (at most MaxExactResponses); then Response is empty. Once more
	// arrive, or for a window written before Times existed, Exact is false
	// and Response holds the count, sum, min, max and histogram of the
	// non-null response_time_ms values.
	Exact    bool        `json:"exact,omitempty"`
	Times    []float64   `json:"times,omitempty"`
	Response hist.Sketch `json:"response"`
	// StatusCounts counts checks by status code.
	StatusCounts map[string]int64 `json:"status_counts"`
	// Slots and EventIDs are the events applied, sorted, so that a
	// re-delivered event is recognised. An event whose event_id is its
	// slot's (codecs.SlotEventID of its URL, scheduled_at and the window's
	// region: every check by an emitter) is kept as its scheduled_at in
	// Unix nanoseconds, in Slots, an eighth of the bytes of the id, which
	// the processor decodes and encodes with the state for every event;
	// any other (a producer of its own ids) by its event_id, in EventIDs.
	// Both name an event exactly: the slot is the id's preimage. A window
	// holds at most a few hundred checks of one URL (one per second at the
	// shortest interval), so this is bounded.
	Slots    []int64  `json:"-"`
	EventIDs []string `json:"event_ids"`
	// Revision is the revision of the last emission (0: never emitted).
	Revision int64 `json:"revision"`
	// Dirty is true when the window changed since its last emission.
	Dirty bool `json:"dirty"`
	// EmitTopic and EmitOffset are the input message whose processing
	// made the last emission; empty for the idle close (and in states
	// written before they existed): nothing to wait for. See advance.
	EmitTopic  string `json:"emit_topic,omitempty"`
	EmitOffset int64  `json:"emit_offset,omitempty"`

	// enc is the encoding of Times and Slots as far as it was written
	// last, never stored; see listCache.
	enc listCache
}

// params are the windowing rules, shared by the goka callbacks and the
// benchmarks.
type params struct {
	size  time.Duration
	grace time.Duration
	// idleAfter is how long (wall time) a URL must have been silent, and
	// how long after a window's end plus grace, before the clock closes it.
	idleAfter time.Duration
	// forgetAfter is how long (wall time) a URL must have been silent
	// before its state is deleted.
	forgetAfter time.Duration
}

// verdict says what became of one event.
type verdict int

const (
	applied verdict = iota
	duplicate
	tooLate
)

// Triggers of an emission, the label of the windows-emitted metric.
const (
	triggerWatermark = "watermark" // the URL's watermark reached the window's end
	triggerLate      = "late"      // a late event changed an emitted window
	triggerIdle      = "idle"      // the URL went silent and the clock closed the window
	// triggerRedelivery re-sends an emitted window unchanged, same revision.
	triggerRedelivery = "redelivery"
)

// emission is one window to send to status_windows.
type emission struct {
	window  *codecs.Window
	trigger string
}

// windowStart returns the start of the window holding t: windows are
// aligned to the Unix epoch in UTC, so every instance and every replay cuts
// the same windows.
func (p params) windowStart(t time.Time) time.Time {
	ns := t.UnixNano()
	size := p.size.Nanoseconds()
	rem := ns % size
	if rem < 0 { // before 1970: floor, not truncation toward zero
		rem += size
	}
	return time.Unix(0, ns-rem).UTC()
}

// position is the input message being processed, and how to tell whether
// an earlier one is done: processed with every write it made acknowledged
// by Kafka. A nil done treats every message as done (goka's tester, the
// benchmarks).
type position struct {
	topic  string
	offset int64
	done   func(topic string, offset int64) bool
}

// emitted reports whether w's last emission is known to be in Kafka.
func (pos position) emitted(w *window) bool {
	return w.EmitTopic == "" || pos.done == nil || pos.done(w.EmitTopic, w.EmitOffset)
}

// apply is applyAt for a message whose position does not matter: every
// earlier message counts as done.
func (p params) apply(st *state, r *codecs.Result, now, low time.Time) (verdict, []emission) {
	return p.applyAt(st, r, now, low, position{})
}

// applyAt adds one result, read at pos, to st (the URL's state) at wall
// time now and returns what became of it and the windows to emit. low is how far (in
// event time) every input topic of the URL's partition has been consumed,
// zero when unknown (see progress).
//
// Closing is driven by event time: once the URL's watermark (newest
// checked_at) reaches a window's end, the window is emitted (revision 1).
// It stays in state until the drop mark passes end+grace, and a late event
// in that time updates it and re-emits it with the next revision. The drop
// mark is the watermark held back to low: the two input topics are
// consumed side by side, and while one lags (a processor catching up on a
// backlog reads the sparse failed topic faster in event time than the
// dense succeeded one) its events must still find their windows. An event
// for a window already dropped is too late and is not applied.
//
// The watermark never runs more than one window size ahead of the wall
// clock, so one event from a checker whose clock is far in the future
// cannot make every later event of its URL too late.
func (p params) applyAt(st *state, r *codecs.Result, now, low time.Time, pos position) (verdict, []emission) {
	// A repeat of an event applied before is a duplicate whatever its
	// checked_at: a slot checked again after a crash carries the same
	// event_id and a later checked_at, maybe in another window, and the
	// store keeps the first row of the slot, which is the one counted here
	// (both read the partition in order).
	region := codecs.RegionOrDefault(r.Region)
	bySlot := codecs.IsSlotEventID(r.EventID, r.URL, r.ScheduledAt, region)
	slot := r.ScheduledAt.UnixNano()
	if st.seen(r.EventID, bySlot, region, slot) {
		return duplicate, p.resend(st, pos)
	}
	t := r.CheckedAt
	start := p.windowStart(t)
	w, at := st.find(start, region)
	if w == nil {
		end := start.Add(p.size)
		if start.Before(st.Horizon) || dropMark(st.Watermark, low).After(end.Add(p.grace)) {
			return tooLate, nil
		}
		w = &window{Start: start, Region: region, StatusCounts: map[string]int64{}, Exact: true}
		st.Windows = slices.Insert(st.Windows, at, w)
	}
	if bySlot {
		i, _ := slices.BinarySearch(w.Slots, slot)
		if i < len(w.Slots) {
			w.enc.resetSlots() // the encoded prefix moves (see listCache)
		}
		w.Slots = slices.Insert(w.Slots, i, slot)
	} else {
		i, _ := slices.BinarySearch(w.EventIDs, r.EventID)
		w.EventIDs = slices.Insert(w.EventIDs, i, r.EventID)
	}
	w.add(r)
	st.LastArrival = now
	if capped := earliest(t, now.Add(p.size)); capped.After(st.Watermark) {
		st.Watermark = capped
	}
	return applied, p.advance(st, low, pos)
}

// dropMark is the event time up to which a URL's windows may be dropped:
// its watermark, held back to low when low is known.
func dropMark(watermark, low time.Time) time.Time {
	if low.IsZero() {
		return watermark
	}
	return earliest(watermark, low)
}

// earliest returns the earlier of two times.
func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// seen reports whether an event with this id was applied to st (bySlot:
// the id is that of region's check of the slot at slot, see
// window.Slots): it is in
// one of the windows kept, or among the ids kept from the windows last
// dropped. A window is dropped once the URL's checks are past its end by
// the grace (a minute), so a repeat within that time is always found in
// its window. The url_checker checks a redelivered request again only
// before the slot's next one begins, so a repeat follows its first check
// by less than the interval plus the timeout (at most two intervals); for
// a site checked less often than every half grace, the window last
// dropped (Dropped, a few checks) covers one more window size.
//
// The ids are looked up whatever bySlot says: a state written before
// slots (version 3 and older) keeps every event by its id.
func (st *state) seen(id string, bySlot bool, region string, slot int64) bool {
	for _, w := range st.Windows {
		if len(w.EventIDs) > 0 {
			if _, ok := slices.BinarySearch(w.EventIDs, id); ok {
				return true
			}
		}
		if bySlot && w.Region == region {
			if _, ok := slices.BinarySearch(w.Slots, slot); ok {
				return true
			}
		}
	}
	if bySlot && slices.Contains(st.DroppedSlots, regionSlot{Region: region, At: slot}) {
		return true
	}
	return slices.Contains(st.Dropped, id)
}

// forget keeps the event ids of w, a window being dropped, in
// st.Dropped, when it has at most maxDroppedIDs: only a site checked less
// often than every half grace needs them, and its windows hold few checks.
// first is true for the first window dropped by one advance, whose ids
// replace the previous ones; the other regions' windows dropped with it
// add theirs.
func (st *state) forget(w *window, first bool) {
	if first {
		st.Dropped, st.DroppedSlots = st.Dropped[:0], st.DroppedSlots[:0]
	}
	if len(w.EventIDs)+len(w.Slots) <= maxDroppedIDs {
		st.Dropped = append(st.Dropped, w.EventIDs...)
		for _, at := range w.Slots {
			st.DroppedSlots = append(st.DroppedSlots, regionSlot{Region: w.Region, At: at})
		}
	}
	if len(st.Dropped) == 0 {
		st.Dropped = nil
	}
	if len(st.DroppedSlots) == 0 {
		st.DroppedSlots = nil
	}
}

// find returns the window of region starting at start, or nil and the
// index where it belongs.
func (st *state) find(start time.Time, region string) (*window, int) {
	pos, found := slices.BinarySearchFunc(st.Windows, start, func(w *window, t time.Time) int {
		if c := w.Start.Compare(t); c != 0 {
			return c
		}
		return strings.Compare(w.Region, region)
	})
	if found {
		return st.Windows[pos], pos
	}
	return nil, pos
}

// add counts one result in w.
func (w *window) add(r *codecs.Result) {
	w.Checks++
	if r.Outcome == codecs.OutcomeDown {
		w.Failures++
	}
	// A regexp failure is a check whose error_kind is "regexp": a check
	// that failed earlier (say on its status) was never matched, and is not
	// counted even if regexp_matched says false.
	if r.ErrorKind != nil && *r.ErrorKind == codecs.ErrRegexp {
		w.RegexpFailures++
	}
	if r.ResponseTimeMS != nil {
		w.addResponse(*r.ResponseTimeMS)
	}
	// Keyed by the code as a string, "0" when no response arrived, so the
	// counts equal GROUP BY status_code over all of the window's checks.
	w.StatusCounts[strconv.Itoa(r.StatusCode)]++
	w.Dirty = true
}

// addResponse records one response time: kept as it is while the window
// holds at most MaxExactResponses, else in the sketch.
func (w *window) addResponse(ms float64) {
	if !w.Exact && w.Response.Count == 0 {
		// A window from an older state without responses yet: nothing
		// was sketched, so it can still be exact.
		w.Exact = true
	}
	if w.Exact && len(w.Times) < MaxExactResponses {
		w.Times = append(w.Times, ms)
		return
	}
	if w.Exact {
		// Over the cap: from now on the sketch, fed in arrival order so
		// that its sum (and so the mean) is what it would have been.
		for _, v := range w.Times {
			w.Response.Add(v)
		}
		w.Times, w.Exact = nil, false
	}
	w.Response.Add(ms)
}

// advance emits the windows the watermark has closed and that changed
// since their last emission, and drops the windows whose grace is over
// once their last emission is known to be in Kafka.
//
// goka writes the table and status_windows independently, and only the
// input offsets it commits say that both are in Kafka. A window dropped
// from the table while its last emission is still in flight would be lost
// for good if the process died then: the table, already without the
// window, is what the next process recovers, and the events it reads again
// find no window to re-send. So a window stays until the message that last
// emitted it is done (kept a little past its grace, it still takes late
// events, which SQL counts too).
func (p params) advance(st *state, low time.Time, pos position) []emission {
	var out []emission
	drop := dropMark(st.Watermark, low)
	keep := st.Windows[:0]
	first := true
	for _, w := range st.Windows {
		end := w.Start.Add(p.size)
		if !st.Watermark.Before(end) && w.Dirty {
			trigger := triggerWatermark
			if w.Revision > 0 {
				trigger = triggerLate
			}
			out = append(out, emission{window: p.emit(w), trigger: trigger})
			w.EmitTopic, w.EmitOffset = pos.topic, pos.offset
		}
		if drop.After(end.Add(p.grace)) && pos.emitted(w) {
			if end.After(st.Horizon) {
				st.Horizon = end
			}
			st.forget(w, first)
			first = false
			continue
		}
		keep = append(keep, w)
	}
	clear(st.Windows[len(keep):])
	st.Windows = keep
	return out
}

// resend returns the URL's emitted, unchanged windows again, with the
// revision they were emitted with. A re-delivered event means the processor
// may have crashed after its state (which records the emissions) reached the
// changelog but before the emissions reached status_windows; sending them
// again makes the emission at-least-once, and the sink, which keeps one row
// per window and revision, is unaffected by a copy it already has.
//
// The windows re-sent record pos as their last emission, so that none is
// dropped before the copy is in Kafka (the caller stores st again).
func (p params) resend(st *state, pos position) []emission {
	var out []emission
	for _, w := range st.Windows {
		if w.Revision > 0 && !w.Dirty {
			out = append(out, emission{window: p.snapshot(w), trigger: triggerRedelivery})
			w.EmitTopic, w.EmitOffset = pos.topic, pos.offset
		}
	}
	return out
}

// closeIdle is the wall-clock close for URLs that stopped sending events (a
// site removed from the sites file, a checker that died): when the URL has
// been silent for idleAfter, every changed window whose end+grace+idleAfter
// has passed is emitted. The windows stay in state, so an event that was
// merely delayed (a processor catching up on a backlog) still updates its
// window and re-emits it; only the watermark drops windows. It reports
// forget when the URL has been silent for forgetAfter and nothing is left
// to emit, so that its state can be deleted.
func (p params) closeIdle(st *state, now time.Time) (out []emission, forget bool) {
	silent := now.Sub(st.LastArrival)
	if silent < p.idleAfter {
		return nil, false
	}
	dirty := false
	for _, w := range st.Windows {
		if !w.Dirty {
			continue
		}
		if now.Before(w.Start.Add(p.size + p.grace + p.idleAfter)) {
			dirty = true
			continue
		}
		out = append(out, emission{window: p.emit(w), trigger: triggerIdle})
		// No input message to wait for: a visit is not read again.
		w.EmitTopic, w.EmitOffset = "", 0
	}
	return out, !dirty && silent >= p.forgetAfter
}

// emit bumps w's revision and returns its aggregate as a status_windows
// event.
//
// The revision is the window's number of checks (and always more than the
// last one): every emission follows new checks, so it grows with each
// emission like a counter, but unlike a counter it also grows across a
// crash. goka writes the table and status_windows independently, so a
// crash can lose the table write recording an emission that did reach
// status_windows; the restarted processor replays the events from the older
// state, and a counter would hand out that revision again for different
// content, which the sinks (keeping the highest revision) cannot order.
// The count only goes up as events are added, whichever state they are
// replayed onto, and the complete window has the highest.
func (p params) emit(w *window) *codecs.Window {
	w.Revision = max(w.Revision+1, w.Checks)
	w.Dirty = false
	return p.snapshot(w)
}

// snapshot returns w's aggregate at its current revision.
func (p params) snapshot(w *window) *codecs.Window {
	out := &codecs.Window{
		Region:         codecs.RegionOrDefault(w.Region),
		WindowStart:    w.Start,
		WindowEnd:      w.Start.Add(p.size),
		Checks:         w.Checks,
		Failures:       w.Failures,
		RegexpFailures: w.RegexpFailures,
		Responses:      w.Response.Count,
		StatusCounts:   make(map[string]int64, len(w.StatusCounts)),
		Revision:       w.Revision,
		// A window without responses has no percentiles, which is exact.
		PercentilesExact: w.Exact || w.Response.Count == 0,
	}
	for k, v := range w.StatusCounts {
		out.StatusCounts[k] = v
	}
	if w.Exact {
		out.Responses = int64(len(w.Times))
		if len(w.Times) > 0 {
			sorted := slices.Clone(w.Times)
			slices.Sort(sorted)
			var sum float64
			for _, v := range w.Times { // arrival order, as the sketch summed
				sum += v
			}
			mn, mx, avg := sorted[0], sorted[len(sorted)-1], sum/float64(len(sorted))
			p50, p95, p99 := exactPercentile(sorted, 0.50), exactPercentile(sorted, 0.95), exactPercentile(sorted, 0.99)
			out.ResponseMinMS, out.ResponseMaxMS, out.ResponseAvgMS = &mn, &mx, &avg
			out.ResponseP50MS, out.ResponseP95MS, out.ResponseP99MS = &p50, &p95, &p99
		}
		return out
	}
	if w.Response.Count > 0 {
		mn, mx := w.Response.Min, w.Response.Max
		avg, _ := w.Response.Mean()
		out.ResponseMinMS, out.ResponseMaxMS, out.ResponseAvgMS = &mn, &mx, &avg
		out.ResponseP50MS = quantile(&w.Response, 0.50)
		out.ResponseP95MS = quantile(&w.Response, 0.95)
		out.ResponseP99MS = quantile(&w.Response, 0.99)
	}
	return out
}

func quantile(s *hist.Sketch, q float64) *float64 {
	v, ok := s.Quantile(q)
	if !ok {
		return nil
	}
	return &v
}

// exactPercentile is PostgreSQL's percentile_cont(q) over sorted (ascending,
// not empty): the position q·(n−1) between the two nearest values,
// interpolated linearly, computed with the same float8 operations as
// PostgreSQL (first + (second − first) · fraction), so that the result
// equals check_windows_recomputed's.
func exactPercentile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := math.Floor(pos)
	first := sorted[int(lo)]
	if lo == pos {
		return first
	}
	second := sorted[int(math.Ceil(pos))]
	// The conversion keeps the compiler from fusing the multiply and the
	// add (which it may on some CPUs): PostgreSQL rounds each.
	return first + float64((second-first)*(pos-lo))
}
