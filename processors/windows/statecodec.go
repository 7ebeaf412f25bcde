package windows

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/binform"
)

// stateCodec stores *state in the group table in a compact binary form:
// the processor decodes and encodes a URL's state for every event it
// applies, and with the response times kept for exact percentiles (up to a
// few hundred per window, beside as many event_ids) JSON made that the
// bulk of its work.
//
// The value starts with its version byte, stateVersion (5), then:
// watermark, horizon, last arrival; the windows; the dropped event_ids;
// the dropped slots (each a region and a scheduled_at).
// Times are a signed varint of Unix seconds and an unsigned varint of
// nanoseconds (any time.Time, the zero one included); integers are varints;
// floats their 8 IEEE 754 bytes, little-endian (exact, unlike decimal
// text), but for the response times (see appendResponseTime); strings a length and their bytes; lists a count and their items.
// A window: start; checks, failures, regexp failures; flags (exact,
// dirty); response times; sketch (count, sum, min, max, zeros, buckets);
// status counts (sorted by code); event_ids; revision; emit topic and
// offset; region; slots (the first a signed varint, each next one the
// unsigned varint of its distance from the one before: they are sorted,
// and a slot apart from the next by a second is 5 bytes where its event_id
// was 33).
//
// Version 4 is version 5 with every event id as a string and the slots'
// distances in nanoseconds. Version 3 is version 4 without slots, with every response time in 8
// bytes, written before events were kept
// by slot: every event of it is kept by its event_id, which state.seen
// still finds. Version 2 is version 3 without the windows' region, written
// before regions: its windows decode as codecs.DefaultRegion's. Either
// upgrades in place, a running table being rewritten as its URLs' events
// arrive. Version 1, the JSON of the state struct (first byte '{'), written before
// the response times were kept, still decodes: its windows have sketched
// percentiles (Exact false).
type stateCodec struct{}

var _ goka.Codec = stateCodec{}

// jsonStateVersion is the JSON form's version field.
const jsonStateVersion = 1

// stateVersionNoRegion is the binary form before regions, and
// stateVersionNoSlots the one before slots.
// stateVersionSlots the first with slots, and stateVersionStringIDs the
// last with every event id a string.
const (
	stateVersionNoRegion  = 2
	stateVersionNoSlots   = 3
	stateVersionSlots     = 4
	stateVersionStringIDs = 4
)

func (stateCodec) Encode(value any) ([]byte, error) {
	st, ok := value.(*state)
	if !ok {
		return nil, fmt.Errorf("encode state: got %T, want *state", value)
	}
	st.V = stateVersion
	b := make([]byte, 0, st.sizeHint())
	b = append(b, stateVersion)
	b = binform.AppendTime(b, st.Watermark)
	b = binform.AppendTime(b, st.Horizon)
	b = binform.AppendTime(b, st.LastArrival)
	b = binary.AppendUvarint(b, uint64(len(st.Windows)))
	for _, w := range st.Windows {
		b = w.appendBinary(b)
	}
	b = appendIDs(b, st.Dropped)
	b = binary.AppendUvarint(b, uint64(len(st.DroppedSlots)))
	for _, s := range st.DroppedSlots {
		b = binform.AppendString(b, s.Region)
		b = binary.AppendVarint(b, s.At)
	}
	return b, nil
}

func (stateCodec) Decode(data []byte) (any, error) {
	if len(data) > 0 && data[0] == '{' {
		var st state
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("decode state: %w", err)
		}
		if st.V != jsonStateVersion {
			return nil, fmt.Errorf("decode state: JSON version %d, want %d", st.V, jsonStateVersion)
		}
		st.V = stateVersion
		for _, w := range st.Windows {
			w.Region = codecs.RegionOrDefault(w.Region)
		}
		return &st, nil
	}
	if len(data) == 0 || data[0] < stateVersionNoRegion || data[0] > stateVersion {
		v := -1
		if len(data) > 0 {
			v = int(data[0])
		}
		return nil, fmt.Errorf("decode state: version %d, want %d", v, stateVersion)
	}
	// One string holds every string of the value: the event_ids are
	// slices of it, one allocation instead of one each.
	d := &stateDecoder{Reader: binform.Reader[string]{Data: string(data), Pos: 1}, version: data[0]}
	st := &state{V: stateVersion}
	st.Watermark = d.Time()
	st.Horizon = d.Time()
	st.LastArrival = d.Time()
	if n := d.Count(1); n > 0 {
		st.Windows = make([]*window, n)
		for i := range st.Windows {
			st.Windows[i] = d.window()
		}
	}
	st.Dropped = d.ids()
	if d.version >= stateVersionSlots {
		if n := d.Count(2); n > 0 {
			st.DroppedSlots = make([]regionSlot, n)
			for i := range st.DroppedSlots {
				st.DroppedSlots[i] = regionSlot{Region: d.string(), At: d.Varint()}
			}
		}
	}
	if d.Err == nil && d.Pos != len(d.Data) {
		d.Fail("trailing bytes")
	}
	if d.Err != nil {
		return nil, fmt.Errorf("decode state: %w", d.Err)
	}
	return st, nil
}

// sizeHint is about the encoded size, so that Encode allocates once.
func (st *state) sizeHint() int {
	n := 64 + 16*len(st.Dropped) + 16*len(st.DroppedSlots)
	for _, w := range st.Windows {
		n += 96 + 3*len(w.Slots) + 5*len(w.Times) + 12*len(w.Response.Index) + 12*len(w.StatusCounts) + len(w.EmitTopic) + len(w.Region)
		n += 17 * len(w.EventIDs)
	}
	return n
}

const (
	flagExact = 1 << iota
	flagDirty
)

func (w *window) appendBinary(b []byte) []byte { return w.appendVersion(b, stateVersion) }

// appendVersion writes w as version wrote it; only the tests of the older
// versions write another than stateVersion.
func (w *window) appendVersion(b []byte, version byte) []byte {
	b = binform.AppendTime(b, w.Start)
	b = binary.AppendVarint(b, w.Checks)
	b = binary.AppendVarint(b, w.Failures)
	b = binary.AppendVarint(b, w.RegexpFailures)
	var flags byte
	if w.Exact {
		flags |= flagExact
	}
	if w.Dirty {
		flags |= flagDirty
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(w.Times)))
	switch {
	case version == stateVersion:
		b = append(b, w.enc.times(w.Times)...)
	case version < stateVersionSlots:
		for _, v := range w.Times {
			b = binform.AppendFloat(b, v)
		}
	default:
		for _, v := range w.Times {
			b = appendResponseTime(b, v)
		}
	}
	r := &w.Response
	b = binary.AppendVarint(b, r.Count)
	b = binform.AppendFloat(b, r.Sum)
	b = binform.AppendFloat(b, r.Min)
	b = binform.AppendFloat(b, r.Max)
	b = binary.AppendVarint(b, r.Zeros)
	b = binary.AppendUvarint(b, uint64(len(r.Index)))
	for k, i := range r.Index {
		b = binary.AppendVarint(b, int64(i))
		b = binary.AppendVarint(b, r.Counts[k])
	}
	codes := make([]string, 0, len(w.StatusCounts))
	for c := range w.StatusCounts {
		codes = append(codes, c)
	}
	slices.Sort(codes) // the same state, the same bytes
	b = binary.AppendUvarint(b, uint64(len(codes)))
	for _, c := range codes {
		b = binform.AppendString(b, c)
		b = binary.AppendVarint(b, w.StatusCounts[c])
	}
	if version <= stateVersionStringIDs {
		b = appendStrings(b, w.EventIDs)
	} else {
		b = appendIDs(b, w.EventIDs)
	}
	b = binary.AppendVarint(b, w.Revision)
	b = binform.AppendString(b, w.EmitTopic)
	b = binary.AppendVarint(b, w.EmitOffset)
	if version < stateVersionNoSlots {
		return b
	}
	b = binform.AppendString(b, w.Region)
	if version < stateVersionSlots {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(w.Slots)))
	if version == stateVersion {
		return append(b, w.enc.slots(w.Slots)...)
	}
	for i, at := range w.Slots {
		if i == 0 {
			b = binary.AppendVarint(b, at)
		} else {
			b = binary.AppendUvarint(b, uint64(at-w.Slots[i-1]))
		}
	}
	return b
}

// listCache keeps a window's Times and Slots encoded as far as the last
// Encode wrote them, so that the next writes only what was appended since:
// every event re-encodes its URL's state, and the response times (a float
// test each) were the largest part of that. Both lists only grow at their
// end: Times by append (and is emptied for the sketch), Slots by a sorted
// insert that is an append for a URL's events in order, and that calls
// resetSlots when it is not. A window decoded has an empty cache: its first
// Encode writes everything, and the processor's tests check that a state
// from memory encodes as its decode does (kafkarun.CachedCodec.Verify).
type listCache struct {
	timesBuf  []byte
	timesN    int
	timesBase *float64 // &Times[0] when encoded: a reallocated list starts over
	slotsBuf  []byte
	slotsN    int
}

func (c *listCache) times(ts []float64) []byte {
	if len(ts) < c.timesN || (len(ts) > 0 && &ts[0] != c.timesBase) {
		c.timesBuf, c.timesN = c.timesBuf[:0], 0
	}
	for _, v := range ts[c.timesN:] {
		c.timesBuf = appendResponseTime(c.timesBuf, v)
	}
	c.timesN = len(ts)
	if len(ts) > 0 {
		c.timesBase = &ts[0]
	}
	return c.timesBuf
}

// resetSlots forgets the encoded slots: one was inserted before their end.
func (c *listCache) resetSlots() { c.slotsBuf, c.slotsN = c.slotsBuf[:0], 0 }

func (c *listCache) slots(ss []int64) []byte {
	if len(ss) < c.slotsN {
		c.resetSlots()
	}
	for i := c.slotsN; i < len(ss); i++ {
		if i == 0 {
			c.slotsBuf = binary.AppendVarint(c.slotsBuf, ss[0])
		} else {
			c.slotsBuf = appendSlotStep(c.slotsBuf, uint64(ss[i]-ss[i-1]))
		}
	}
	c.slotsN = len(ss)
	return c.slotsBuf
}

// appendSlotStep writes the distance between two slots (sorted, so not
// negative) of version 5: whole milliseconds (every interval a site can
// have) as the unsigned varint of ms<<1|1, 2 bytes for a second where its
// nanoseconds took 5; any other as ns<<1.
func appendSlotStep(b []byte, ns uint64) []byte {
	if ns%1e6 == 0 {
		return binary.AppendUvarint(b, (ns/1e6)<<1|1)
	}
	return binary.AppendUvarint(b, ns<<1)
}

// Tags of an event id in appendIDs.
const (
	idString = iota // a string follows
	idHex           // 16 bytes: the id is their 32 lowercase hex digits
	idUUID          // 16 bytes: the id is their canonical lowercase UUID
)

// appendIDs writes a list of event ids (version 5), each in 17 bytes when
// it is hex (see stateCodec), so that it reads back as the same string.
func appendIDs(b []byte, ids []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		switch {
		case len(id) == 32 && lowerHex(id):
			b = append(b, idHex)
			b = appendHexBytes(b, id)
		case len(id) == 36 && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-' &&
			lowerHex(id[:8]) && lowerHex(id[9:13]) && lowerHex(id[14:18]) && lowerHex(id[19:23]) && lowerHex(id[24:]):
			b = append(b, idUUID)
			for _, part := range [...]string{id[:8], id[9:13], id[14:18], id[19:23], id[24:]} {
				b = appendHexBytes(b, part)
			}
		default:
			b = append(b, idString)
			b = binform.AppendString(b, id)
		}
	}
	return b
}

func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// appendHexBytes appends the bytes of s, an even number of lowercase hex
// digits.
func appendHexBytes(b []byte, s string) []byte {
	for i := 0; i < len(s); i += 2 {
		b = append(b, unhex(s[i])<<4|unhex(s[i+1]))
	}
	return b
}

// appendResponseTime writes a response time of version 4: a check's is a
// whole number of nanoseconds in milliseconds (float64(ns)/1e6, see
// urlchecker's ms), written as the unsigned varint of ns<<1, 4 bytes for
// tens of milliseconds where the float is 8; any other value (a producer
// of its own) is a 1 and its 8 bytes, so that every value reads back with
// the same bits (the percentiles must equal SQL's).
func appendResponseTime(b []byte, v float64) []byte {
	if v >= 0 && v < 1<<52/1e6 {
		// As responseTime reads it back (-0 is not 0's bits).
		if ns := int64(math.Round(v * 1e6)); math.Float64bits(float64(ns)/1e6) == math.Float64bits(v) {
			return binary.AppendUvarint(b, uint64(ns)<<1)
		}
	}
	b = append(b, 1)
	return binform.AppendFloat(b, v)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = binform.AppendString(b, s)
	}
	return b
}

// stateDecoder reads the binary form. After the first error every read
// returns a zero value, and err says where it went wrong.
type stateDecoder struct {
	binform.Reader[string]
	// version is the value's: 2 has no regions, 2 and 3 no slots.
	version byte
}

// responseTime reads what appendResponseTime wrote.
func (d *stateDecoder) responseTime() float64 {
	u := d.Uvarint()
	switch {
	case u&1 == 0:
		return float64(int64(u>>1)) / 1e6
	case u == 1:
		return d.Float()
	}
	d.Fail("bad response time")
	return 0
}

// string reads a string as a slice of the value's one string.
func (d *stateDecoder) string() string { return d.Raw() }

func (d *stateDecoder) strings() []string {
	n := d.Count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}

// slotStep reads what appendSlotStep wrote, from its varint u.
func (d *stateDecoder) slotStep(u uint64) uint64 {
	if u&1 == 0 {
		return u >> 1
	}
	if u>>1 > math.MaxInt64/1_000_000 {
		d.Fail("slots out of order")
		return 0
	}
	return (u >> 1) * 1e6
}

// ids reads a list of event ids: appendIDs' from version 5, strings before.
// Every id of the list is a slice of one string.
func (d *stateDecoder) ids() []string {
	if d.version <= stateVersionStringIDs {
		return d.strings()
	}
	n := d.Count(1)
	if n == 0 {
		return nil
	}
	// Sized for n UUIDs: the text grows once, not per id.
	text := make([]byte, 0, 36*n)
	ends := make([]int, n)
	for i := range ends {
		switch d.Byte() {
		case idString:
			text = append(text, d.string()...)
		case idHex, idUUID:
			tag := d.Data[d.Pos-1]
			if len(d.Data)-d.Pos < 16 {
				d.Fail("truncated")
				return nil
			}
			var h [32]byte
			hex.Encode(h[:], []byte(d.Data[d.Pos:d.Pos+16]))
			d.Pos += 16
			if tag == idHex {
				text = append(text, h[:]...)
			} else {
				text = append(append(append(append(append(append(append(append(append(text,
					h[:8]...), '-'), h[8:12]...), '-'), h[12:16]...), '-'), h[16:20]...), '-'), h[20:]...)
			}
		default:
			d.Fail("bad event id tag")
			return nil
		}
		ends[i] = len(text)
	}
	all := string(text)
	out := make([]string, n)
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

func (d *stateDecoder) window() *window {
	w := &window{Start: d.Time()}
	w.Checks = d.Varint()
	w.Failures = d.Varint()
	w.RegexpFailures = d.Varint()
	flags := d.Byte()
	w.Exact, w.Dirty = flags&flagExact != 0, flags&flagDirty != 0
	if d.version < stateVersionSlots {
		if n := d.Count(8); n > 0 {
			w.Times = make([]float64, n)
			for i := range w.Times {
				w.Times[i] = d.Float()
			}
		}
	} else if n := d.Count(1); n > 0 {
		w.Times = make([]float64, n)
		for i := range w.Times {
			w.Times[i] = d.responseTime()
		}
	}
	r := &w.Response
	r.Count = d.Varint()
	r.Sum, r.Min, r.Max = d.Float(), d.Float(), d.Float()
	r.Zeros = d.Varint()
	if n := d.Count(2); n > 0 {
		r.Index, r.Counts = make([]int32, n), make([]int64, n)
		for k := range r.Index {
			i := d.Varint()
			if i < math.MinInt32 || i > math.MaxInt32 {
				d.Fail("bucket index out of range")
			}
			r.Index[k], r.Counts[k] = int32(i), d.Varint()
		}
	}
	n := d.Count(2)
	w.StatusCounts = make(map[string]int64, n)
	for range n {
		c := d.string()
		w.StatusCounts[c] = d.Varint()
	}
	w.EventIDs = d.ids()
	w.Revision = d.Varint()
	w.EmitTopic = d.string()
	w.EmitOffset = d.Varint()
	w.Region = codecs.DefaultRegion
	if d.version >= stateVersionNoSlots {
		w.Region = d.string()
	}
	if d.version >= stateVersionSlots {
		if n := d.Count(1); n > 0 {
			w.Slots = make([]int64, n)
			for i := range w.Slots {
				if i == 0 {
					w.Slots[i] = d.Varint()
					continue
				}
				step := d.Uvarint()
				if d.version > stateVersionStringIDs {
					step = d.slotStep(step)
				}
				if step > math.MaxInt64 || w.Slots[i-1] > math.MaxInt64-int64(step) {
					d.Fail("slots out of order")
				}
				w.Slots[i] = w.Slots[i-1] + int64(step)
			}
		}
	}
	return w
}
