package windows

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/binform"
)

// Event ids read back as the same strings, hex ones (an emitter's, a
// producer's UUIDs) in 17 bytes, anything else as it came.
func TestEventIDsKeepTheirText(t *testing.T) {
	ids := []string{
		codecs.SlotEventID(site, at(12, 0, 0), codecs.DefaultRegion), // 32 hex digits
		"0b4ef7d2-64a4-4bd0-9c7f-5a4a1c1f00e1",                       // a UUID
		"0B4EF7D2-64A4-4BD0-9C7F-5A4A1C1F00E1",                       // upper case: not canonical
		"0b4ef7d2x64a4-4bd0-9c7f-5a4a1c1f00e1",                       // 36 characters, no UUID
		"0b4ef7d264a44bd09c7f5a4a1c1f00e",                            // 31 digits
		"0b4ef7d264a44bd09c7f5a4a1c1f00eg",                           // 32 characters, one not hex
		"", "ev-1", "ünïcode",
	}
	b := appendIDs(nil, ids)
	d := &stateDecoder{Reader: binform.Reader[string]{Data: string(b)}, version: stateVersion}
	if got := d.ids(); d.Err != nil || !slices.Equal(got, ids) || d.Pos != len(b) {
		t.Fatalf("ids read back as %q (%v), want %q", got, d.Err, ids)
	}
	for _, id := range ids[:2] {
		if n := len(appendIDs(nil, []string{id})) - 1; n != 17 {
			t.Errorf("%s in %d bytes, want 17", id, n)
		}
	}
	for n := range len(b) {
		d := &stateDecoder{Reader: binform.Reader[string]{Data: string(b[:n])}, version: stateVersion}
		if d.ids(); d.Err == nil && n > 0 {
			t.Fatalf("ids cut to %d of %d bytes read without an error", n, len(b))
		}
	}
}

// A window of a producer's UUIDs at one check a second: what every event
// rewrites stays about 21 bytes per check, 16 of them the id (as text it
// was 37, and the table writes were the processor's largest cost); by
// slot about 6.
func TestStateBytesPerCheck(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, bySlot := range []bool{false, true} {
		st := &state{}
		for i := range 300 {
			checked := at(12, 0, 0).Add(time.Duration(i) * time.Second)
			r := slotResult(site, codecs.DefaultRegion, checked, responseMS(float64(20_000_000+rnd.IntN(10_000_000))/1e6)) // whole nanoseconds, as a check measures
			if !bySlot {
				r.EventID = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rnd.Uint32(), rnd.IntN(1<<16), rnd.IntN(1<<12), rnd.IntN(1<<12), rnd.Uint64()>>16)
			}
			if v, _ := rules.apply(st, r, r.CheckedAt, time.Time{}); v != applied {
				t.Fatalf("event %d: %v", i, v)
			}
		}
		data, err := stateCodec{}.Encode(st)
		if err != nil {
			t.Fatal(err)
		}
		per := float64(len(data)) / 300
		t.Logf("by slot %v: %d bytes, %.1f per check", bySlot, len(data), per)
		if limit := map[bool]float64{false: 23, true: 7}[bySlot]; per > limit {
			t.Errorf("by slot %v: %.1f bytes per check, want at most %v", bySlot, per, limit)
		}
		v, _ := reloaded(t, st)
		if d := stateDiff(st, v); d != "" {
			t.Errorf("by slot %v: decoded state differs: %s", bySlot, d)
		}
	}
}

// A value of version 4 (ids as text, slot distances in nanoseconds), as
// the processor before this one stored it, decodes to the same state.
func TestStateFromVersion4(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	st := &state{}
	for i := range 40 {
		checked := at(12, 0, 0).Add(time.Duration(i) * 1500 * time.Millisecond)
		r := slotResult(site, codecs.DefaultRegion, checked, responseMS(float64(i)))
		if i%4 == 0 {
			r.EventID = fmt.Sprintf("0b4ef7d2-64a4-4bd0-9c7f-%012x", i)
		}
		rules.apply(st, r, r.CheckedAt, time.Time{})
	}
	st.Dropped = []string{"0b4ef7d2-64a4-4bd0-9c7f-000000000999", "ev-x"}
	b := olderState(st, stateVersionSlots, func(w window) window { return w })
	b = binary.AppendUvarint(b, 0) // no dropped slots
	v, err := stateCodec{}.Decode(b)
	if err != nil {
		t.Fatalf("decode version 4: %v", err)
	}
	if d := stateDiff(st, v.(*state)); d != "" {
		t.Fatalf("version-4 state decoded differently: %s", d)
	}
	now, _ := stateCodec{}.Encode(st)
	if len(now) >= len(b) {
		t.Errorf("version 5 takes %d bytes, version 4 %d", len(now), len(b))
	}
}

// A state encoded after every event, as the processor does (reusing what
// it encoded before, see listCache), encodes exactly as the same state
// decoded, whatever the order the events come in: in order, late, sketched
// past MaxExactResponses.
func TestIncrementalEncodingMatchesFull(t *testing.T) {
	rules := params{size: DefaultWindowSize, grace: DefaultGrace, idleAfter: DefaultIdleAfter, forgetAfter: DefaultForgetAfter}
	rnd := rand.New(rand.NewPCG(5, 6))
	for _, shuffled := range []bool{false, true} {
		st := &state{}
		n := MaxExactResponses + 200
		order := rnd.Perm(n)
		if !shuffled {
			slices.Sort(order)
		}
		for k, i := range order {
			// 10 ms apart: every check in one window, past the exact cap.
			checked := at(12, 0, 0).Add(time.Duration(i) * 10 * time.Millisecond)
			r := slotResult(site, codecs.DefaultRegion, checked, responseMS(float64(rnd.IntN(1e9))/1e6))
			rules.apply(st, r, r.CheckedAt, time.Time{})
			if k%97 != 0 && k != n-1 {
				continue
			}
			data, err := stateCodec{}.Encode(st)
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := stateCodec{}.Decode(data)
			if err != nil {
				t.Fatalf("shuffled %v, after %d events: %v", shuffled, k+1, err)
			}
			if d := stateDiff(st, fresh.(*state)); d != "" {
				t.Fatalf("shuffled %v, after %d events: the state read back differs: %s", shuffled, k+1, d)
			}
		}
		if w := st.Windows[0]; w.Exact || len(w.Slots) != n {
			t.Fatalf("test bug: window exact %v with %d slots", w.Exact, len(w.Slots))
		}
	}
}

// olderState is st as a processor of an older version stored it: each
// window as old makes it of the window, then the dropped event_ids as
// text. Version 4 adds the dropped slots after them (the caller's).
func olderState(st *state, version byte, old func(window) window) []byte {
	b := []byte{version}
	b = binform.AppendTime(b, st.Watermark)
	b = binform.AppendTime(b, st.Horizon)
	b = binform.AppendTime(b, st.LastArrival)
	b = binary.AppendUvarint(b, uint64(len(st.Windows)))
	for _, w := range st.Windows {
		c := old(*w)
		b = c.appendVersion(b, version)
	}
	return appendStrings(b, st.Dropped)
}
