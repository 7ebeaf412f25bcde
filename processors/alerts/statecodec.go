package alerts

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/binform"
)

// stateCodec stores *state in the group table in a compact binary form:
// the processor decodes and encodes a URL's state for every event, and as
// JSON (with the held-back events and the last changes as whole JSON
// objects) that was most of its work.
//
// The value starts with its version byte, stateVersion (3), then: url;
// state; flags (run up); run count; run since; newest; recent event_ids;
// cert state; cert not after; the sent changes; the held events; the
// regions' runs (a count, then each: region; view; flags (run up); run count;
// run since; newest). Times
// are a signed varint of Unix seconds and an unsigned varint of
// nanoseconds (any time.Time, the zero one included); integers are
// varints; strings a length and their bytes; lists a count and their
// items. The sent changes and the held events are item lists: a count,
// then each item as a length and its bytes, kept in that form in memory
// so that a callback that does not look at them (most do not) copies them
// instead of decoding them. A sent change: event_id; change_id; kind;
// state; previous state; name; since; changed at; consecutive; status
// code; flags (error kind, error message, tls_not_after present); those
// present; regions. A held event: checked_at; event_id; offset; held at;
// topic; outcome; status code; flags; those present; region.
//
// Version 2 (no runs, held events without a region) and version 1, the
// JSON of the state (first byte '{'), still decode, so that a running
// table upgrades as its values are rewritten: their run is the default
// region's, and so are their held events; version 1's held events have no
// offset.
type stateCodec struct{}

var _ goka.Codec = stateCodec{}

// stateVersion is the version of the group-table value this build writes;
// a value of an unknown version stops the processor (goka panics on a
// decode error) rather than being misread.
const stateVersion = 3

// stateVersion2 is the version before regions.
const stateVersion2 = 2

// jsonStateVersion is the JSON form's version field.
const jsonStateVersion = 1

func (stateCodec) Encode(value any) ([]byte, error) {
	st, ok := value.(*state)
	if !ok {
		return nil, fmt.Errorf("encode alerts state: got %T, want *state", value)
	}
	b := make([]byte, 0, 48+len(st.URL)+37*len(st.Recent)+len(st.sent.b)+len(st.held.list.b)+48*len(st.Runs))
	b = append(b, stateVersion)
	b = binform.AppendString(b, st.URL)
	b = binform.AppendString(b, st.State)
	var flags byte
	if st.RunUp {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(st.RunCount))
	b = binform.AppendTime(b, st.RunSince)
	b = binform.AppendTime(b, st.Newest)
	b = binary.AppendUvarint(b, uint64(len(st.Recent)))
	for _, id := range st.Recent {
		b = binform.AppendString(b, id)
	}
	b = binform.AppendString(b, st.Cert)
	b = binform.AppendTime(b, st.CertNotAfter)
	b = st.sent.appendTo(b)
	b = st.held.list.appendTo(b)
	b = binary.AppendUvarint(b, uint64(len(st.Runs)))
	for _, run := range st.Runs {
		b = binform.AppendString(b, run.Region)
		b = binform.AppendString(b, run.View)
		var flags byte
		if run.RunUp {
			flags |= 1
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(run.RunCount))
		b = binform.AppendTime(b, run.RunSince)
		b = binform.AppendTime(b, run.Newest)
	}
	return b, nil
}

func (stateCodec) Decode(data []byte) (any, error) {
	if len(data) > 0 && data[0] == '{' {
		st, err := decodeJSONState(data)
		if err != nil {
			return nil, fmt.Errorf("decode alerts state: %w", err)
		}
		return st, nil
	}
	if len(data) == 0 || (data[0] != stateVersion && data[0] != stateVersion2) {
		v := -1
		if len(data) > 0 {
			v = int(data[0])
		}
		return nil, fmt.Errorf("decode alerts state: version %d, want %d or %d", v, stateVersion, stateVersion2)
	}
	version := data[0]
	d := &decoder{Reader: binform.Reader[[]byte]{Data: data, Pos: 1}}
	st := &state{}
	st.URL = d.string()
	st.State = d.string()
	flags := d.Byte()
	st.RunUp = flags&1 != 0
	st.RunCount = d.int()
	st.RunSince = d.Time()
	st.Newest = d.Time()
	if n := d.Count(1); n > 0 {
		st.Recent = make([]string, n)
		for i := range st.Recent {
			st.Recent[i] = d.string()
		}
	}
	st.Cert = d.string()
	st.CertNotAfter = d.Time()
	st.sent = d.items(checkChange)
	if version == stateVersion2 {
		st.held.list = d.items(checkHeldV2)
		if d.Err == nil {
			st.held.list = upgradeHeld(st.held.list)
			st.Runs = defaultRun(st)
		}
	} else {
		st.held.list = d.items(checkHeld)
		if n := d.Count(8); n > 0 {
			st.Runs = make([]regionRun, n)
			for i := range st.Runs {
				run := &st.Runs[i]
				run.Region = d.name()
				run.View = d.name()
				run.RunUp = d.Byte()&1 != 0
				run.RunCount = d.int()
				run.RunSince = d.Time()
				run.Newest = d.Time()
			}
		}
	}
	if d.Err == nil && d.Pos != len(d.Data) {
		d.Fail("trailing bytes")
	}
	if d.Err != nil {
		return nil, fmt.Errorf("decode alerts state: %w", d.Err)
	}
	return st, nil
}

// jsonState is version 1 of the table value.
type jsonState struct {
	V            int                    `json:"v"`
	State        string                 `json:"state"`
	RunUp        bool                   `json:"run_up"`
	RunCount     int                    `json:"run_count"`
	RunSince     time.Time              `json:"run_since"`
	Newest       time.Time              `json:"newest"`
	Recent       []string               `json:"recent"`
	Cert         string                 `json:"cert,omitempty"`
	CertNotAfter time.Time              `json:"cert_not_after,omitzero"`
	Sent         []*codecs.StatusChange `json:"sent,omitempty"`
	Pending      []*struct {
		Result *codecs.Result `json:"result"`
		Topic  string         `json:"topic"`
		HeldAt time.Time      `json:"held_at"`
	} `json:"pending,omitempty"`
}

func decodeJSONState(data []byte) (*state, error) {
	var js jsonState
	if err := json.Unmarshal(data, &js); err != nil {
		return nil, err
	}
	if js.V != jsonStateVersion {
		return nil, fmt.Errorf("JSON version %d, want %d", js.V, jsonStateVersion)
	}
	st := &state{
		State: js.State, RunUp: js.RunUp, RunCount: js.RunCount, RunSince: js.RunSince, Newest: js.Newest,
		Recent: js.Recent, Cert: js.Cert, CertNotAfter: js.CertNotAfter,
	}
	for _, c := range js.Sent {
		if c == nil {
			return nil, fmt.Errorf("null sent change")
		}
		st.URL = c.URL
		st.sent.add(appendChange(nil, c))
	}
	for _, p := range js.Pending {
		if p == nil || p.Result == nil {
			return nil, fmt.Errorf("null held event")
		}
		st.URL = p.Result.URL
		// Already in checked_at order.
		st.held.list.add(appendHeld(nil, &pending{Result: p.Result, Topic: p.Topic, Offset: -1, HeldAt: p.HeldAt}))
	}
	st.Runs = defaultRun(st)
	return st, nil
}

// defaultRun is the runs of a state written before regions: its run and
// state are the default region's run and view.
func defaultRun(st *state) []regionRun {
	if st.RunCount == 0 && st.Newest.IsZero() {
		return nil
	}
	return []regionRun{{Region: codecs.DefaultRegion, View: st.State, RunUp: st.RunUp, RunCount: st.RunCount, RunSince: st.RunSince, Newest: st.Newest}}
}

// upgradeHeld rewrites held events of version 2 (checked by checkHeldV2)
// in this version's form: the default region's.
func upgradeHeld(old itemList) itemList {
	var l itemList
	old.each(func(item []byte) bool {
		e, err := decodeHeldV2(item)
		if err != nil {
			panic(fmt.Sprintf("alerts state: checked held event: %v", err))
		}
		l.add(appendHeld(nil, e))
		return true
	})
	return l
}

// itemList is a list of encoded items: each a uvarint length and its
// bytes.
type itemList struct {
	b []byte
	n int
}

func (l *itemList) add(item []byte) {
	l.b = binary.AppendUvarint(l.b, uint64(len(item)))
	l.b = append(l.b, item...)
	l.n++
}

// first returns the first item; the list must not be empty.
func (l *itemList) first() []byte {
	size, k := binary.Uvarint(l.b)
	return l.b[k : k+int(size)]
}

func (l *itemList) dropFirst() {
	size, k := binary.Uvarint(l.b)
	l.b = l.b[k+int(size):]
	l.n--
	if l.n == 0 {
		l.b = nil
	}
}

// each calls fn with every item, first to last, while fn returns true.
func (l *itemList) each(fn func(item []byte) bool) {
	b := l.b
	for range l.n {
		size, k := binary.Uvarint(b)
		if !fn(b[k : k+int(size)]) {
			return
		}
		b = b[k+int(size):]
	}
}

func (l *itemList) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(l.n))
	b = binary.AppendUvarint(b, uint64(len(l.b)))
	return append(b, l.b...)
}

const (
	hasErrorKind = 1 << iota
	hasErrorMessage
	hasTLSNotAfter
)

func appendOptional(b []byte, kind, msg *string, tls *time.Time) []byte {
	var flags byte
	if kind != nil {
		flags |= hasErrorKind
	}
	if msg != nil {
		flags |= hasErrorMessage
	}
	if tls != nil {
		flags |= hasTLSNotAfter
	}
	b = append(b, flags)
	if kind != nil {
		b = binform.AppendString(b, *kind)
	}
	if msg != nil {
		b = binform.AppendString(b, *msg)
	}
	if tls != nil {
		b = binform.AppendTime(b, *tls)
	}
	return b
}

func (d *decoder) optional() (kind, msg *string, tls *time.Time) {
	flags := d.Byte()
	if flags&^(hasErrorKind|hasErrorMessage|hasTLSNotAfter) != 0 {
		d.Fail("unknown flags")
	}
	var k, m string
	var t time.Time
	if flags&hasErrorKind != 0 {
		k = d.string()
	}
	if flags&hasErrorMessage != 0 {
		m = d.string()
	}
	if flags&hasTLSNotAfter != 0 {
		t = d.Time()
	}
	if d.check || d.Err != nil {
		return nil, nil, nil
	}
	// New values rather than the locals' addresses, which would move
	// them to the heap on the checking path too.
	if flags&hasErrorKind != 0 {
		kind = new(string)
		*kind = k
	}
	if flags&hasErrorMessage != 0 {
		msg = new(string)
		*msg = m
	}
	if flags&hasTLSNotAfter != 0 {
		tls = new(time.Time)
		*tls = t
	}
	return kind, msg, tls
}

// appendHeld encodes a held event: what applying it needs (the url is
// the state's).
func appendHeld(b []byte, e *pending) []byte {
	r := e.Result
	b = binform.AppendTime(b, r.CheckedAt)
	b = binform.AppendString(b, r.EventID)
	b = binary.AppendVarint(b, e.Offset)
	b = binform.AppendTime(b, e.HeldAt)
	b = binform.AppendString(b, e.Topic)
	b = binform.AppendString(b, r.Outcome)
	b = binary.AppendVarint(b, int64(r.StatusCode))
	b = appendOptional(b, r.ErrorKind, r.ErrorMessage, r.TLSNotAfter)
	return binform.AppendString(b, codecs.RegionOrDefault(r.Region))
}

// heldKey reads the checked_at and event_id of a held event, without
// copying the event_id.
func heldKey(item []byte) (time.Time, []byte) {
	d := decoder{Reader: binform.Reader[[]byte]{Data: item}}
	at := d.Time()
	return at, d.bytes()
}

// checkHeld reads a held event as decodeHeld does, without building it.
func checkHeld(item []byte) error { return checkHeldOf(item, true) }

// checkHeldV2 checks a held event of version 2 (without its region).
func checkHeldV2(item []byte) error { return checkHeldOf(item, false) }

func checkHeldOf(item []byte, withRegion bool) error {
	d := &decoder{Reader: binform.Reader[[]byte]{Data: item}, check: true}
	d.Time()
	d.bytes()
	d.Varint()
	d.Time()
	d.bytes()
	d.bytes()
	d.Varint()
	d.optional()
	if withRegion {
		d.bytes()
	}
	return d.end("held event")
}

func decodeHeld(item []byte, url string) (*pending, error) {
	d := &decoder{Reader: binform.Reader[[]byte]{Data: item}}
	e := readHeld(d, url)
	e.Result.Region = codecs.RegionOrDefault(d.name())
	if err := d.end("held event"); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeHeldV2 decodes a held event of version 2: the default region's
// (the url is filled in when it is decoded again in this version's form).
func decodeHeldV2(item []byte) (*pending, error) {
	d := &decoder{Reader: binform.Reader[[]byte]{Data: item}}
	e := readHeld(d, "")
	e.Result.Region = codecs.DefaultRegion
	if err := d.end("held event"); err != nil {
		return nil, err
	}
	return e, nil
}

// readHeld reads the fields of a held event that version 2 had.
func readHeld(d *decoder, url string) *pending {
	r := &codecs.Result{V: codecs.Version, URL: url}
	r.CheckedAt = d.Time()
	r.EventID = d.string()
	e := &pending{Result: r}
	e.Offset = d.Varint()
	e.HeldAt = d.Time()
	e.Topic = d.string()
	r.Outcome = d.string()
	r.StatusCode = int(d.Varint())
	r.ErrorKind, r.ErrorMessage, r.TLSNotAfter = d.optional()
	return e
}

// end checks that the item was read to its end without an error.
func (d *decoder) end(what string) error {
	if d.Err == nil && d.Pos != len(d.Data) {
		d.Fail("trailing bytes")
	}
	if d.Err != nil {
		return fmt.Errorf("%s: %w", what, d.Err)
	}
	return nil
}

// appendChange encodes a sent change (the url is the state's).
func appendChange(b []byte, c *codecs.StatusChange) []byte {
	b = binform.AppendString(b, c.EventID)
	b = binform.AppendString(b, c.ChangeID)
	b = binform.AppendString(b, c.Kind)
	b = binform.AppendString(b, c.State)
	b = binform.AppendString(b, c.PreviousState)
	b = binform.AppendString(b, c.Name)
	b = binform.AppendTime(b, c.Since)
	b = binform.AppendTime(b, c.ChangedAt)
	b = binary.AppendVarint(b, int64(c.Consecutive))
	b = binary.AppendVarint(b, int64(c.StatusCode))
	b = appendOptional(b, c.ErrorKind, c.ErrorMessage, c.TLSNotAfter)
	b = binary.AppendUvarint(b, uint64(len(c.Regions)))
	for _, r := range c.Regions {
		b = binform.AppendString(b, r)
	}
	return b
}

// changeEventID reads the event_id of a sent change.
func changeEventID(item []byte) []byte {
	d := decoder{Reader: binform.Reader[[]byte]{Data: item}}
	return d.bytes()
}

// checkChange reads a sent change as decodeChange does, without building
// it.
func checkChange(item []byte) error {
	d := &decoder{Reader: binform.Reader[[]byte]{Data: item}, check: true}
	for range 6 { // event_id, change_id, kind, state, previous state, name
		d.bytes()
	}
	d.Time()
	d.Time()
	d.Varint()
	d.Varint()
	d.optional()
	for range d.Count(1) {
		d.bytes()
	}
	return d.end("sent change")
}

func decodeChange(item []byte, url string) (*codecs.StatusChange, error) {
	d := &decoder{Reader: binform.Reader[[]byte]{Data: item}}
	c := &codecs.StatusChange{V: codecs.Version, URL: url}
	c.EventID = d.string()
	c.ChangeID = d.string()
	c.Kind = d.string()
	c.State = d.string()
	c.PreviousState = d.string()
	c.Name = d.string()
	c.Since = d.Time()
	c.ChangedAt = d.Time()
	c.Consecutive = int(d.Varint())
	c.StatusCode = int(d.Varint())
	c.ErrorKind, c.ErrorMessage, c.TLSNotAfter = d.optional()
	if n := d.Count(1); n > 0 {
		c.Regions = make([]string, n)
		for i := range c.Regions {
			c.Regions[i] = d.string()
		}
	}
	if err := d.end("sent change"); err != nil {
		return nil, err
	}
	return c, nil
}

// decoder reads the binary form. After the first error every read returns
// a zero value, and err says where it went wrong.
type decoder struct {
	binform.Reader[[]byte]
	// check reads without building: optional fields are not allocated
	// (a value's items checked while it is decoded).
	check bool
}

// int reads a non-negative count that fits an int.
func (d *decoder) int() int {
	v := d.Uvarint()
	if v > 1<<31 {
		d.Fail("count out of range")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte { return d.Raw() }

func (d *decoder) string() string { return string(d.bytes()) }

// name reads a string that is most often one of a few constants (the
// default region, a state), returning the constant rather than a copy:
// every event decodes them.
func (d *decoder) name() string {
	b := d.bytes()
	for _, s := range [...]string{codecs.DefaultRegion, codecs.StateUp, codecs.StateDown, codecs.StateUnknown} {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}

// items reads an item list and checks each item with valid, so that a
// corrupt value fails here rather than in a later callback.
func (d *decoder) items(valid func([]byte) error) itemList {
	n := d.Count(2)
	raw := d.bytes()
	if d.Err != nil {
		return itemList{}
	}
	l := itemList{n: n}
	rest := raw
	for range n {
		size, k := binary.Uvarint(rest)
		if k <= 0 || size > uint64(len(rest)-k) {
			d.Fail("bad item list")
			return itemList{}
		}
		if err := valid(rest[k : k+int(size)]); err != nil {
			d.Fail(err.Error())
			return itemList{}
		}
		rest = rest[k+int(size):]
	}
	if len(rest) != 0 {
		d.Fail("bad item list")
		return itemList{}
	}
	if n > 0 {
		l.b = append([]byte(nil), raw...)
	}
	return l
}
