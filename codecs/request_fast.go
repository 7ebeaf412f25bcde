package codecs

import (
	"math"
	"strconv"
	"time"
)

// The emitter encodes one request per site and slot (and a result per
// check) and its url_checker decodes each request, most of them only to find them stale under
// overload: both directions have a hand-written path for the canonical
// form, several times faster than encoding/json's reflection. The wire
// format is unchanged (the contract's JSON); the fuzz tests hold both
// paths to byte-for-byte (encode) and value-for-value (decode) equality
// with encoding/json.

// requestField indexes the fields of Request for decodeFast.
const (
	qfV = iota
	qfRequestID
	qfURL
	qfScheduledAt
	qfNextAt
	qfMethod
	qfHeaders
	qfTimeoutMS
	qfRegexp
	qfExpectStatus
)

func requestField(key []byte) int {
	switch string(key) {
	case "v":
		return qfV
	case "request_id":
		return qfRequestID
	case "url":
		return qfURL
	case "scheduled_at":
		return qfScheduledAt
	case "next_at":
		return qfNextAt
	case "method":
		return qfMethod
	case "headers":
		return qfHeaders
	case "timeout_ms":
		return qfTimeoutMS
	case "regexp":
		return qfRegexp
	case "expect_status":
		return qfExpectStatus
	}
	return -1
}

// requestKeys is the order Request's encoder writes.
var requestKeys = newKeyOrder(requestField, "v", "request_id", "url", "scheduled_at", "next_at", "method",
	"headers", "timeout_ms", "regexp", "expect_status")

// decodeFast decodes the requests this build writes; see fastDecoder.
func (r *Request) decodeFast(data []byte) bool {
	p := fastParser{data: data}
	return p.object(requestField, &requestKeys, func(f int) bool {
		switch f {
		case qfV:
			return p.int(func(n int64) bool { r.V = int(n); return int64(r.V) == n })
		case qfTimeoutMS:
			return p.int(func(n int64) bool { r.TimeoutMS = n; return true })
		case qfRequestID:
			return p.str(&r.RequestID)
		case qfURL:
			return p.str(&r.URL)
		case qfMethod:
			return p.str(&r.Method)
		case qfScheduledAt:
			return p.time(&r.ScheduledAt)
		case qfNextAt:
			return p.time(&r.NextAt)
		case qfRegexp:
			return p.strPtr(&r.Regexp)
		case qfHeaders:
			return p.stringMap(&r.Headers)
		case qfExpectStatus:
			return p.intSlice(&r.ExpectStatus)
		}
		return false
	})
}

// stringMap reads null or an object of strings into a fresh map, as
// encoding/json does for a nil map field; a repeated key keeps its last
// value, as there. Keys with escapes are left to encoding/json.
func (p *fastParser) stringMap(dst *map[string]string) bool {
	if p.literal("null") {
		*dst = nil
		return true
	}
	if !p.byte('{') {
		return false
	}
	m := map[string]string{}
	p.ws()
	if p.byte('}') {
		*dst = m
		return true
	}
	for {
		p.ws()
		k, ok := p.plainString()
		if !ok {
			return false
		}
		p.ws()
		if !p.byte(':') {
			return false
		}
		p.ws()
		var v string
		if !p.str(&v) {
			return false
		}
		m[string(k)] = v
		p.ws()
		if p.byte(',') {
			continue
		}
		if p.byte('}') {
			*dst = m
			return true
		}
		return false
	}
}

// intSlice reads null or an array of integers, as encoding/json does for
// an []int field ([] is an empty, non-nil slice).
func (p *fastParser) intSlice(dst *[]int) bool {
	if p.literal("null") {
		*dst = nil
		return true
	}
	if !p.byte('[') {
		return false
	}
	s := []int{}
	p.ws()
	if p.byte(']') {
		*dst = s
		return true
	}
	for {
		p.ws()
		if !p.int(func(n int64) bool { s = append(s, int(n)); return int64(int(n)) == n }) {
			return false
		}
		p.ws()
		if p.byte(',') {
			continue
		}
		if p.byte(']') {
			*dst = s
			return true
		}
		return false
	}
}

// appendJSON appends the request as json.Marshal writes it, or reports
// false when a value needs encoding/json's own handling (a string to
// escape, a time outside RFC 3339's years).
func (r *Request) appendJSON(b []byte) ([]byte, bool) {
	ok := true
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(r.V), 10)
	b = append(b, `,"request_id":`...)
	b, ok = appendPlainString(b, r.RequestID, ok)
	b = append(b, `,"url":`...)
	b, ok = appendPlainString(b, r.URL, ok)
	b = append(b, `,"scheduled_at":`...)
	b, ok = appendTime(b, r.ScheduledAt, ok)
	b = append(b, `,"next_at":`...)
	b, ok = appendTime(b, r.NextAt, ok)
	b = append(b, `,"method":`...)
	b, ok = appendPlainString(b, r.Method, ok)
	if len(r.Headers) > 0 || r.TLS != nil {
		// encoding/json sorts map keys; a map is rare and small here. A
		// site's own TLS settings are rarer still: leave both to it.
		return b, false
	}
	b = append(b, `,"timeout_ms":`...)
	b = strconv.AppendInt(b, r.TimeoutMS, 10)
	b = append(b, `,"regexp":`...)
	if r.Regexp == nil {
		b = append(b, "null"...)
	} else {
		b, ok = appendPlainString(b, *r.Regexp, ok)
	}
	if len(r.ExpectStatus) > 0 {
		b = append(b, `,"expect_status":[`...)
		for i, c := range r.ExpectStatus {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(c), 10)
		}
		b = append(b, ']')
	}
	return append(b, '}'), ok
}

// appendPlainString appends s quoted as encoding/json quotes it (which
// escapes <, > and & too) when s is printable ASCII; otherwise it reports
// false, for encoding/json to handle control characters and UTF-8.
func appendPlainString(b []byte, s string, ok bool) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			return b, false
		}
		var esc string
		switch c {
		case '"':
			esc = `\"`
		case '\\':
			esc = `\\`
		case '<':
			esc = `\u003c`
		case '>':
			esc = `\u003e`
		case '&':
			esc = `\u0026`
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"'), ok
}

// appendTime appends t as time.Time's MarshalJSON does.
func appendTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off%60 != 0 || off/60 <= -24*60 || off/60 >= 24*60 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), ok
}

// appendJSON appends the result as json.Marshal writes it (the url_checker
// encodes one per check), or reports false for encoding/json to handle.
func (r *Result) appendJSON(b []byte) ([]byte, bool) {
	ok := true
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(r.V), 10)
	b = append(b, `,"event_id":`...)
	b, ok = appendPlainString(b, r.EventID, ok)
	b = append(b, `,"url":`...)
	b, ok = appendPlainString(b, r.URL, ok)
	b = append(b, `,"region":`...)
	b, ok = appendPlainString(b, r.Region, ok)
	b = append(b, `,"scheduled_at":`...)
	b, ok = appendTime(b, r.ScheduledAt, ok)
	b = append(b, `,"checked_at":`...)
	b, ok = appendTime(b, r.CheckedAt, ok)
	b = append(b, `,"outcome":`...)
	b, ok = appendPlainString(b, r.Outcome, ok)
	b = append(b, `,"status_code":`...)
	b = strconv.AppendInt(b, int64(r.StatusCode), 10)
	for _, f := range [...]struct {
		key string
		v   *float64
	}{{`,"response_time_ms":`, r.ResponseTimeMS}, {`,"dns_ms":`, r.DNSMS}, {`,"connect_ms":`, r.ConnectMS},
		{`,"tls_ms":`, r.TLSMS}, {`,"ttfb_ms":`, r.TTFBMS}, {`,"transfer_ms":`, r.TransferMS}} {
		b = append(b, f.key...)
		b, ok = appendFloatPtr(b, f.v, ok)
	}
	b = append(b, `,"body_bytes":`...)
	b = strconv.AppendInt(b, r.BodyBytes, 10)
	b = append(b, `,"regexp":`...)
	b, ok = appendStringPtr(b, r.Regexp, ok)
	b = append(b, `,"regexp_matched":`...)
	switch {
	case r.RegexpMatched == nil:
		b = append(b, "null"...)
	case *r.RegexpMatched:
		b = append(b, "true"...)
	default:
		b = append(b, "false"...)
	}
	b = append(b, `,"error_kind":`...)
	b, ok = appendStringPtr(b, r.ErrorKind, ok)
	b = append(b, `,"error_message":`...)
	b, ok = appendStringPtr(b, r.ErrorMessage, ok)
	b = append(b, `,"tls_not_after":`...)
	if r.TLSNotAfter == nil {
		b = append(b, "null"...)
	} else {
		b, ok = appendTime(b, *r.TLSNotAfter, ok)
	}
	b = append(b, `,"checker":`...)
	b, ok = appendPlainString(b, r.Checker, ok)
	return append(b, '}'), ok
}

func appendStringPtr(b []byte, s *string, ok bool) ([]byte, bool) {
	if s == nil {
		return append(b, "null"...), ok
	}
	return appendPlainString(b, *s, ok)
}

// appendFloatPtr appends a float as encoding/json's float64 encoder does
// (shortest repr; exponent form below 1e-6 and from 1e21, with a one-digit
// negative exponent unpadded); NaN and infinities are declined.
func appendFloatPtr(b []byte, f *float64, ok bool) ([]byte, bool) {
	if f == nil {
		return append(b, "null"...), ok
	}
	v := *f
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, ok
}
