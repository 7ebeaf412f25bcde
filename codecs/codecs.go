package codecs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lovoo/goka"
)

// Version is the only payload version this build reads and writes.
const Version = 1

// Outcome values of a check.
const (
	OutcomeUp   = "up"
	OutcomeDown = "down"
)

// Error kinds of a failed check, as listed in the contract.
const (
	ErrDNS          = "dns"
	ErrConnect      = "connect"
	ErrTLS          = "tls"
	ErrTimeout      = "timeout"
	ErrStatus       = "status"
	ErrRegexp       = "regexp"
	ErrBodyTooLarge = "body_too_large"
	ErrRedirects    = "redirects"
	ErrOther        = "other"
)

// errorKinds are the error kinds, for the decoder not to copy them.
var errorKinds = []string{ErrDNS, ErrConnect, ErrTLS, ErrTimeout, ErrStatus, ErrRegexp, ErrBodyTooLarge, ErrRedirects, ErrOther}

// ErrVersion is returned (wrapped) when a payload carries a version this
// build does not understand.
var ErrVersion = errors.New("unsupported version")

// validator is implemented by every payload so that the shared decoder can
// reject structurally valid JSON that misses required fields.
type validator interface {
	validate() error
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// trailing data and versions other than Version.
func decodeStrict(data []byte, v validator, version func() int) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid json: trailing data after object")
	}
	if got := version(); got != Version {
		return fmt.Errorf("%w %d (want %d)", ErrVersion, got, Version)
	}
	if d, ok := v.(defaulter); ok {
		d.applyDefaults()
	}
	return v.validate()
}

// jsonCodec is a goka.Codec for one payload type T.
type jsonCodec[T any, P interface {
	*T
	validator
	setVersion()
	version() int
}] struct{}

func (jsonCodec[T, P]) Encode(value any) ([]byte, error) {
	var p P
	switch v := value.(type) {
	case P:
		p = v
	case T:
		p = &v
	default:
		var zero T
		return nil, fmt.Errorf("encode: got %T, want %T", value, zero)
	}
	p.setVersion()
	if f, ok := any(p).(fastEncoder); ok {
		if b, ok := f.appendJSON(make([]byte, 0, 384)); ok {
			return b, nil
		}
	}
	return json.Marshal(p)
}

// fastEncoder is implemented by payloads with a hand-written encoder that
// writes exactly what json.Marshal writes, for the values it handles; on
// any other it reports false and json.Marshal encodes.
type fastEncoder interface {
	appendJSON(b []byte) ([]byte, bool)
}

// defaulter is implemented by payloads with fields that older writers
// did not send (a result's region): applyDefaults fills them after either
// decoder, before validation.
type defaulter interface {
	applyDefaults()
}

func (jsonCodec[T, P]) Decode(data []byte) (any, error) {
	var p P = new(T)
	if f, ok := any(p).(fastDecoder); ok {
		if f.decodeFast(data) {
			if got := p.version(); got != Version {
				return nil, fmt.Errorf("%w %d (want %d)", ErrVersion, got, Version)
			}
			if d, ok := any(p).(defaulter); ok {
				d.applyDefaults()
			}
			if err := p.validate(); err != nil {
				return nil, err
			}
			return p, nil
		}
		// Not the canonical form: decode afresh, strictly.
		p = new(T)
	}
	if err := decodeStrict(data, p, p.version); err != nil {
		return nil, err
	}
	return p, nil
}

// RequestCodec encodes *Request values for status_request_created.
type RequestCodec = jsonCodec[Request, *Request]

// ResultCodec encodes *Result values for status_request_succeeded and
// status_request_failed.
type ResultCodec = jsonCodec[Result, *Result]

// WindowCodec encodes *Window values for status_windows.
type WindowCodec = jsonCodec[Window, *Window]

// DeadLetterCodec encodes *DeadLetter values for sitewatch_dead_letters.
type DeadLetterCodec = jsonCodec[DeadLetter, *DeadLetter]

var (
	_ goka.Codec = RequestCodec{}
	_ goka.Codec = ResultCodec{}
	_ goka.Codec = WindowCodec{}
	_ goka.Codec = DeadLetterCodec{}
)

// DecodeResult decodes one result event strictly.
func DecodeResult(data []byte) (*Result, error) {
	v, err := ResultCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*Result), nil
}

// DecodeRequest decodes one check request strictly.
func DecodeRequest(data []byte) (*Request, error) {
	v, err := RequestCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*Request), nil
}

// DecodeWindow decodes one window aggregate strictly.
func DecodeWindow(data []byte) (*Window, error) {
	v, err := WindowCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*Window), nil
}

// DecodeDeadLetter decodes one dead letter strictly.
func DecodeDeadLetter(data []byte) (*DeadLetter, error) {
	v, err := DeadLetterCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*DeadLetter), nil
}

func requireTime(field string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("missing field %q", field)
	}
	return nil
}

func requireString(field, s string) error {
	if s == "" {
		return fmt.Errorf("missing field %q", field)
	}
	return nil
}

// fastDecoder is implemented by payloads with a hand-written decoder for
// the canonical form this build encodes. It is only a shortcut: it
// accepts a strict subset of what decodeStrict accepts (exact key names,
// no duplicates, no nulls in non-pointer fields, no escapes in key names)
// and fills the value exactly as encoding/json would; on anything else it
// reports false and decodeStrict decides, so strictness and error
// messages are those of decodeStrict.
type fastDecoder interface {
	decodeFast(data []byte) bool
}

// resultField indexes the fields of Result for decodeFast.
const (
	rfV = iota
	rfEventID
	rfURL
	rfScheduledAt
	rfCheckedAt
	rfOutcome
	rfStatusCode
	rfResponseTimeMS
	rfDNSMS
	rfConnectMS
	rfTLSMS
	rfTTFBMS
	rfTransferMS
	rfBodyBytes
	rfRegexp
	rfRegexpMatched
	rfErrorKind
	rfErrorMessage
	rfTLSNotAfter
	rfChecker
	rfRegion
)

func resultField(key []byte) int {
	switch string(key) {
	case "v":
		return rfV
	case "event_id":
		return rfEventID
	case "url":
		return rfURL
	case "scheduled_at":
		return rfScheduledAt
	case "checked_at":
		return rfCheckedAt
	case "outcome":
		return rfOutcome
	case "status_code":
		return rfStatusCode
	case "response_time_ms":
		return rfResponseTimeMS
	case "dns_ms":
		return rfDNSMS
	case "connect_ms":
		return rfConnectMS
	case "tls_ms":
		return rfTLSMS
	case "ttfb_ms":
		return rfTTFBMS
	case "transfer_ms":
		return rfTransferMS
	case "body_bytes":
		return rfBodyBytes
	case "regexp":
		return rfRegexp
	case "regexp_matched":
		return rfRegexpMatched
	case "error_kind":
		return rfErrorKind
	case "error_message":
		return rfErrorMessage
	case "tls_not_after":
		return rfTLSNotAfter
	case "checker":
		return rfChecker
	case "region":
		return rfRegion
	}
	return -1
}

// resultKeys is the order Result.appendJSON writes.
var resultKeys = newKeyOrder(resultField, "v", "event_id", "url", "region", "scheduled_at", "checked_at",
	"outcome", "status_code", "response_time_ms", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms",
	"body_bytes", "regexp", "regexp_matched", "error_kind", "error_message", "tls_not_after", "checker")

// decodeFast decodes the result events this build writes several times
// faster than encoding/json's reflection; see fastDecoder.
func (r *Result) decodeFast(data []byte) bool {
	p := fastParser{data: data}
	return p.object(resultField, &resultKeys, func(f int) bool {
		switch f {
		case rfV:
			return p.int(func(n int64) bool { r.V = int(n); return int64(r.V) == n })
		case rfStatusCode:
			return p.int(func(n int64) bool { r.StatusCode = int(n); return int64(r.StatusCode) == n })
		case rfBodyBytes:
			return p.int(func(n int64) bool { r.BodyBytes = n; return true })
		case rfEventID:
			return p.str(&r.EventID)
		case rfURL:
			return p.str(&r.URL)
		case rfOutcome:
			return p.strOf(&r.Outcome, OutcomeUp, OutcomeDown)
		case rfChecker:
			return p.str(&r.Checker)
		case rfRegion:
			return p.strOf(&r.Region, DefaultRegion)
		case rfScheduledAt:
			return p.time(&r.ScheduledAt)
		case rfCheckedAt:
			return p.time(&r.CheckedAt)
		case rfResponseTimeMS:
			return p.floatPtr(&r.ResponseTimeMS)
		case rfDNSMS:
			return p.floatPtr(&r.DNSMS)
		case rfConnectMS:
			return p.floatPtr(&r.ConnectMS)
		case rfTLSMS:
			return p.floatPtr(&r.TLSMS)
		case rfTTFBMS:
			return p.floatPtr(&r.TTFBMS)
		case rfTransferMS:
			return p.floatPtr(&r.TransferMS)
		case rfRegexp:
			return p.strPtr(&r.Regexp)
		case rfErrorKind:
			return p.strPtr(&r.ErrorKind, errorKinds...)
		case rfErrorMessage:
			return p.strPtr(&r.ErrorMessage)
		case rfRegexpMatched:
			return p.boolPtr(&r.RegexpMatched)
		case rfTLSNotAfter:
			return p.timePtr(&r.TLSNotAfter)
		}
		return false
	})
}

// keyOrder predicts an object's keys: this build's encoders write the
// fields in one order, so the key after a field is most often the one
// written after it, and it is matched as bytes (quote, name, quote) in
// one comparison, without scanning it and switching on it. A key that is
// not the one predicted (an omitted field, another producer's order) is
// read as any key: the prediction changes only how fast a key is found,
// never which.
type keyOrder struct {
	first  int      // the field written first
	quoted []string // by field: its key, quoted
	next   []int    // by field: the field written after it, or -1
}

// newKeyOrder is the order of names, in which an encoder writes them;
// field gives each name's index.
func newKeyOrder(field func(key []byte) int, names ...string) keyOrder {
	o := keyOrder{first: -1, quoted: make([]string, len(names)), next: make([]int, len(names))}
	prev := -1
	for _, name := range names {
		f := field([]byte(name))
		if f < 0 || f >= len(names) || o.quoted[f] != "" {
			panic("codecs: key order: bad field " + name)
		}
		o.quoted[f], o.next[f] = `"`+name+`"`, -1
		if prev < 0 {
			o.first = f
		} else {
			o.next[prev] = f
		}
		prev = f
	}
	return o
}

// predicted reports whether the predicted field f's key is next, and
// steps over it.
func (p *fastParser) predicted(o *keyOrder, f int) bool {
	if f < 0 {
		return false
	}
	q := o.quoted[f]
	if len(p.data)-p.i < len(q) || string(p.data[p.i:p.i+len(q)]) != q {
		return false
	}
	p.i += len(q)
	return true
}

// object reads one top-level object and nothing after it: each key must
// name one field (its index, below 32) and appear once; value
// reads that field's value. order predicts the keys.
func (p *fastParser) object(field func(key []byte) int, order *keyOrder, value func(f int) bool) bool {
	p.ws()
	if !p.byte('{') {
		return false
	}
	var seen uint32
	p.ws()
	if p.byte('}') {
		return p.end()
	}
	expect := order.first
	for {
		p.ws()
		f := expect
		if !p.predicted(order, f) {
			key, ok := p.plainString()
			if !ok {
				return false
			}
			f = field(key)
		}
		if f < 0 || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		expect = order.next[f]
		p.ws()
		if !p.byte(':') {
			return false
		}
		p.ws()
		if !value(f) {
			return false
		}
		p.ws()
		if p.byte(',') {
			continue
		}
		if p.byte('}') {
			return p.end()
		}
		return false
	}
}

// fastParser reads the canonical JSON of one payload. Every method
// reports false on input it does not handle, leaving the decision to
// encoding/json.
type fastParser struct {
	data []byte
	i    int
	// floats backs the *float64 fields read: one allocation for a
	// result's six timings rather than one each. Appending past its
	// capacity moves only the later ones; the earlier pointers stay valid.
	floats []float64
}

func (p *fastParser) ws() {
	d, i := p.data, p.i
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	p.i = i
}

func (p *fastParser) byte(c byte) bool {
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only JSON whitespace follows the object.
func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.data)
}

func (p *fastParser) literal(s string) bool {
	if len(p.data)-p.i >= len(s) && string(p.data[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// plainString reads a string without escapes, control characters or
// invalid UTF-8 and returns its contents, which are then exactly what
// encoding/json would decode.
func (p *fastParser) plainString() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	// The printable ASCII run first, a byte a step: the common case,
	// and the loop the processor's three decoders of every result spend
	// most of their string time in.
	d, i := p.data, p.i // locals, kept in registers
	// Eight bytes a step while none of them needs a look (SWAR): a
	// result's strings are mostly ids, URLs and names tens of bytes long.
	for i+8 <= len(d) && !needsLook(binary.LittleEndian.Uint64(d[i:])) {
		i += 8
	}
	for i < len(d) && plainASCII[d[i]] {
		i++
	}
	p.i = i
	ascii := true
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			s := p.data[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return nil, false
}

// needsLook reports whether any of the eight bytes in x is not in
// plainASCII: below 0x20, a quote, a backslash or above 0x7f. Each test
// is the classic "has a zero byte" bit trick; it can be true for a byte
// after a match, never when no byte matches, which is all the caller
// asks (the byte loop then finds which).
func needsLook(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (x - 0x20*ones) &^ x
	q := x ^ '"'*ones
	quote := (q - ones) &^ q
	b := x ^ '\\'*ones
	backslash := (b - ones) &^ b
	return (below|quote|backslash|x)&highs != 0
}

// plainASCII marks the bytes a plain string may hold that need no further
// look: printable ASCII other than the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// quoted reads a string token, escapes included, and returns it with its
// quotes, for json.Unmarshal to decode.
func (p *fastParser) quoted() ([]byte, bool) {
	start := p.i
	if !p.byte('"') {
		return nil, false
	}
	for p.i < len(p.data) {
		switch c := p.data[p.i]; {
		case c == '"':
			p.i++
			return p.data[start:p.i], true
		case c == '\\':
			p.i += 2
			continue
		case c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

func (p *fastParser) str(dst *string) bool { return p.strOf(dst) }

// strOf is str for a field whose value is mostly one of common: those are
// not copied (an outcome, a region, an error kind: one allocation fewer
// each, in every decode of every result).
func (p *fastParser) strOf(dst *string, common ...string) bool {
	start := p.i
	if s, ok := p.plainString(); ok {
		for _, c := range common {
			if string(s) == c {
				*dst = c
				return true
			}
		}
		*dst = string(s)
		return true
	}
	// An escaped string: let encoding/json unescape this one token.
	p.i = start
	tok, ok := p.quoted()
	if !ok {
		return false
	}
	return json.Unmarshal(tok, dst) == nil
}

func (p *fastParser) strPtr(dst **string, common ...string) bool {
	if p.literal("null") {
		*dst = nil
		return true
	}
	var s string
	if !p.strOf(&s, common...) {
		return false
	}
	*dst = &s
	return true
}

func (p *fastParser) boolPtr(dst **bool) bool {
	var b bool
	switch {
	case p.literal("null"):
		*dst = nil
		return true
	case p.literal("true"):
		b = true
	case p.literal("false"):
		b = false
	default:
		return false
	}
	*dst = &b
	return true
}

func (p *fastParser) time(dst *time.Time) bool {
	if p.i >= len(p.data) || p.data[p.i] != '"' {
		return false
	}
	start := p.i
	s, ok := p.plainString()
	if !ok {
		return false
	}
	if t, ok := utcTime(s); ok {
		*dst = t
		return true
	}
	// The same method encoding/json calls, on the same bytes.
	return dst.UnmarshalJSON(p.data[start:p.i]) == nil
}

// utcTime parses the form every sitewatch producer writes,
// YYYY-MM-DDTHH:MM:SS[.fraction]Z, as time.Time's UnmarshalJSON does
// (time.Date in UTC), and reports false on anything else, for
// UnmarshalJSON to decide: its general RFC 3339 parser was a tenth of a
// result's decode.
func utcTime(s []byte) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	hour, ok4 := num(s[11:13])
	minute, ok5 := num(s[14:16])
	sec, ok6 := num(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := s[19 : len(s)-1]; len(frac) > 0 {
		// A dot and one to nine digits.
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// daysIn is the number of days of month in year.
func daysIn(month time.Month, year int) int {
	if month == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((month-1)%7%2)
}

func (p *fastParser) timePtr(dst **time.Time) bool {
	if p.literal("null") {
		*dst = nil
		return true
	}
	var t time.Time
	if !p.time(&t) {
		return false
	}
	*dst = &t
	return true
}

// number reads a number with JSON's grammar and returns its text.
func (p *fastParser) number() ([]byte, bool) {
	d, i := p.data, p.i
	start := i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	p.i = i
	return d[start:i], true
}

// int reads an integer as encoding/json does for int and int64 fields
// (strconv.ParseInt of the number's text); set reports false when the
// value overflows the field, which encoding/json refuses.
func (p *fastParser) int(set func(int64) bool) bool {
	s, ok := p.number()
	if !ok {
		return false
	}
	if n, ok := shortInt(s); ok {
		return set(n)
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return false
	}
	return set(n)
}

// shortInt is strconv.ParseInt(s, 10, 64) for an integer of at most 18
// digits (it cannot overflow), and false for anything else.
func shortInt(s []byte) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// floatPtr reads a *float64 as encoding/json does (strconv.ParseFloat).
func (p *fastParser) floatPtr(dst **float64) bool {
	if p.literal("null") {
		*dst = nil
		return true
	}
	s, ok := p.number()
	if !ok {
		return false
	}
	f, ok := shortDecimal(s)
	if !ok {
		var err error
		if f, err = strconv.ParseFloat(string(s), 64); err != nil {
			return false
		}
	}
	if p.floats == nil {
		p.floats = make([]float64, 0, 6)
	}
	p.floats = append(p.floats, f)
	*dst = &p.floats[len(p.floats)-1]
	return true
}

// float64pow10 are the powers of ten a float64 holds exactly.
var float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// shortDecimal is strconv.ParseFloat(s, 64) for a number of JSON's grammar
// without an exponent and of at most 15 digits (a millisecond timing), and
// false for anything else. Such a number is m / 10^k with m and 10^k exact
// in a float64, so one division rounds it correctly: the exact case
// strconv itself takes first, without its general parsing around it.
func shortDecimal(s []byte) (float64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 {
		return 0, false
	}
	f := float64(m) / float64pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}
