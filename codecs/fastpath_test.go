package codecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzResultFastPath checks that decodeFast accepts only what the strict
// encoding/json path accepts, and fills the same value.
func FuzzResultFastPath(f *testing.F) {
	f.Add([]byte(`{"v":1,"event_id":"e1","url":"https://example.com/","scheduled_at":"2026-11-29T12:05:00.123456789Z","checked_at":"2026-11-29T12:05:00.124456789Z","outcome":"down","status_code":200,"response_time_ms":12.5,"dns_ms":1.25,"connect_ms":2,"tls_ms":null,"ttfb_ms":8,"transfer_ms":0.5,"body_bytes":1256,"regexp":"Example","regexp_matched":false,"error_kind":"regexp","error_message":"regexp \"Example\" did not match","checker":"host-1"}`))
	f.Add([]byte(` {"v":1,"url":"\u00e9\ud800x","status_code":-0,"dns_ms":1e400,"body_bytes":9223372036854775808} `))
	f.Add([]byte(`{"v":1,"URL":"a"}`))
	f.Add([]byte(`{"v":1,"url":"a","url":"b"}`))
	f.Add([]byte(`{"v":1.0}`))
	f.Add([]byte(`{"v":1}{}`))
	f.Add([]byte(`{"v":1,"regexp_matched":true,"checked_at":"2026-01-01T00:00:00+01:00","error_message":"\xff"}`))
	f.Add([]byte(`{"v":1,"error_message":"a\\b\n\t\/"}`))
	f.Add([]byte(`{"v":1,"url":"https://a/","region":"eu-west-1","checker":"c"}`))
	f.Add([]byte(`{"v":1,"region":null}`))
	f.Add([]byte(`{"v":1,"region":"","region":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkFastPath(t, data, (*Result).decodeFast) })
}

// checkFastPath fails when decodeFast accepts data that encoding/json, as
// decodeStrict runs it, refuses or decodes to another value.
func checkFastPath[T any](t *testing.T, data []byte, decodeFast func(*T, []byte) bool) {
	fast := new(T)
	if !decodeFast(fast, data) {
		return
	}
	slow := new(T)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(slow); err != nil {
		t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, data)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("fast path accepted trailing data: %q", data)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast path decoded differently:\nfast %+v\nslow %+v\n%q", fast, slow, data)
	}
}

// FuzzRequestFastPath checks the request's decodeFast as
// FuzzResultFastPath checks the result's.
func FuzzRequestFastPath(f *testing.F) {
	f.Add([]byte(`{"v":1,"request_id":"r1","url":"https://a.example/?i=1","scheduled_at":"2026-11-29T12:05:00.123456789Z","next_at":"2026-11-29T12:06:00Z","method":"GET","timeout_ms":1000,"regexp":"all good"}`))
	f.Add([]byte(`{"v":1,"request_id":"r","url":"u","scheduled_at":"2026-01-01T00:00:00+01:00","next_at":"2026-01-01T00:01:00Z","method":"HEAD","headers":{"Accept":"x","Accept":"y","A\u00e9":"\n"},"timeout_ms":5,"regexp":null,"expect_status":[200,-0,404]}`))
	f.Add([]byte(`{"v":1,"headers":{},"expect_status":[]}`))
	f.Add([]byte(`{"v":1,"headers":null,"expect_status":null,"timeout_ms":1e3}`))
	f.Add([]byte(`{"v":1,"expect_status":[9223372036854775808]}`))
	f.Add([]byte(`{"v":1,"url":"a","url":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkFastPath(t, data, (*Request).decodeFast) })
}

// FuzzRequestEncode checks that the request's fast encoder writes exactly
// the bytes json.Marshal writes, whenever it accepts a value.
func FuzzRequestEncode(f *testing.F) {
	f.Add("r1", "https://a.example/ok?i=1", "GET", "all good", true, int64(1764417900123456789), int64(1764417960000000000), 0, int64(1000), []byte{200, 1})
	f.Add("r<", "u&", "HEAD", "\xff", false, int64(-62135596800000000000/10), int64(253402300800000000), 3600, int64(-1), []byte{})
	f.Add("", "", "", "é", true, int64(0), int64(1), -37, int64(0), []byte{0})
	f.Fuzz(func(t *testing.T, id, url, method, re string, hasRE bool, at, next int64, offsetMin int, timeout int64, codes []byte) {
		zone := time.FixedZone("z", offsetMin*60)
		r := &Request{V: 1, RequestID: id, URL: url, Method: method, ScheduledAt: time.Unix(0, at).In(zone), NextAt: time.Unix(0, next).UTC(), TimeoutMS: timeout}
		if hasRE {
			r.Regexp = &re
		}
		for _, c := range codes {
			r.ExpectStatus = append(r.ExpectStatus, int(c)*3-100)
		}
		checkEncoder(t, r, r.appendJSON)
	})
}

// checkEncoder fails when appendJSON accepts v and writes other bytes than
// json.Marshal, or accepts what json.Marshal refuses.
func checkEncoder(t *testing.T, v any, appendJSON func([]byte) ([]byte, bool)) {
	fast, ok := appendJSON(nil)
	if !ok {
		return
	}
	slow, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("fast encoder accepted what json.Marshal refuses (%v): %+v", err, v)
	}
	if !bytes.Equal(fast, slow) {
		t.Fatalf("fast encoder wrote differently:\nfast %s\nslow %s", fast, slow)
	}
}

// TestRequestFastPathsTaken guards the speed-up itself: the requests the
// scheduler makes take both hand-written paths, and round-trip.
func TestRequestFastPathsTaken(t *testing.T) {
	re := "all good"
	at := time.Date(2026, 11, 29, 12, 5, 0, 123456789, time.UTC)
	r := &Request{V: 1, RequestID: "0123456789abcdef", URL: "https://a.example/ok?i=1&b=<2>", ScheduledAt: at, NextAt: at.Add(time.Minute),
		Method: "GET", TimeoutMS: 1000, Regexp: &re, ExpectStatus: []int{200, 301}}
	b, ok := r.appendJSON(nil)
	if !ok {
		t.Fatal("fast encoder declined a scheduler's request")
	}
	want, _ := json.Marshal(r)
	if !bytes.Equal(b, want) {
		t.Fatalf("fast encoder wrote\n%s\nwant\n%s", b, want)
	}
	got := new(Request)
	if !got.decodeFast(b) {
		t.Fatalf("fast decoder declined %s", b)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: got %+v, want %+v", got, r)
	}
}

// FuzzResultEncode checks the result's fast encoder as FuzzRequestEncode
// checks the request's.
func FuzzResultEncode(f *testing.F) {
	f.Add("e1", "https://a.example/ok?i=1", "up", "host-1", "all good", "default", int64(1764417900123456789), 200, 12.5, 1e-7, 1e21, math.Copysign(0, -1), int64(5120), uint8(7))
	f.Add("e<", "u&\n", "down", "é", "\"x\"", "é<", int64(0), -3, math.Inf(1), math.NaN(), 123456789.125, 5e-324, int64(-1), uint8(0))
	f.Add("e2", "https://tls.example/", "up", "h", "", "eu-west-1", int64(1764417900123456789), 200, 1.0, 2.0, 3.0, 4.0, int64(1), uint8(16))
	f.Add("e3", "https://tls.example/", "up", "h", "", "", int64(1764417900123456789), 200, 1.0, 2.0, 3.0, 4.0, int64(1), uint8(48))
	f.Fuzz(func(t *testing.T, id, url, outcome, chk, s, region string, at int64, code int, f1, f2, f3, f4 float64, body int64, mask uint8) {
		r := &Result{V: 1, EventID: id, URL: url, Region: region, Outcome: outcome, Checker: chk, ScheduledAt: time.Unix(0, at).UTC(),
			CheckedAt: time.Unix(0, at+int64(mask)).UTC(), StatusCode: code, BodyBytes: body}
		fs := []*float64{&f1, &f2, &f3, &f4, &f1, nil}
		r.ResponseTimeMS, r.DNSMS, r.ConnectMS, r.TLSMS, r.TTFBMS, r.TransferMS = fs[mask%6], fs[(mask/2)%6], fs[(mask/3)%6], fs[(mask/5)%6], fs[(mask/7)%6], fs[5]
		if mask&1 != 0 {
			r.Regexp = &s
		}
		if mask&2 != 0 {
			m := mask&4 != 0
			r.RegexpMatched = &m
		}
		if mask&8 != 0 {
			r.ErrorKind, r.ErrorMessage = &outcome, &s
		}
		if mask&16 != 0 {
			// A certificate expiry, whole seconds as x509 has them, in
			// UTC or in the zone the bits pick.
			na := time.Unix(at/1e9, 0).In(time.FixedZone("z", int(mask&32)*60))
			r.TLSNotAfter = &na
		}
		checkEncoder(t, r, r.appendJSON)
	})
}

// TestRequestTLSSurvivesTheCodec: a site's own TLS settings reach the
// checker. The hand-written encoder knows no "tls" key, so a request that
// carries one must be left to encoding/json, not encoded without it.
func TestRequestTLSSurvivesTheCodec(t *testing.T) {
	r := &Request{
		RequestID: "https://internal.test/|1", URL: "https://internal.test/",
		ScheduledAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), NextAt: time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC),
		Method: "GET", TimeoutMS: 5000,
		TLS: &RequestTLS{CAPEM: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", ServerName: "internal.test", InsecureSkipVerify: true},
	}
	data, err := RequestCodec{}.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(data)
	if err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if got.TLS == nil || *got.TLS != *r.TLS {
		t.Fatalf("tls settings lost on the way: sent %+v, got %+v (%s)", r.TLS, got.TLS, data)
	}
}

// TestResultFastPathsTaken: a url_checker's result, region included,
// takes both hand-written paths and round-trips.
func TestResultFastPathsTaken(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 5, 0, 123456789, time.UTC)
	ms := 12.5
	r := &Result{V: 1, EventID: "0123456789abcdef", URL: "https://a.example/", Region: "eu-west-1", ScheduledAt: at, CheckedAt: at.Add(time.Millisecond),
		Outcome: OutcomeUp, StatusCode: 200, ResponseTimeMS: &ms, BodyBytes: 10, Checker: "h-1"}
	b, ok := r.appendJSON(nil)
	if !ok {
		t.Fatal("fast encoder declined a url_checker's result")
	}
	want, _ := json.Marshal(r)
	if !bytes.Equal(b, want) {
		t.Fatalf("fast encoder wrote\n%s\nwant\n%s", b, want)
	}
	got := new(Result)
	if !got.decodeFast(b) {
		t.Fatalf("fast decoder declined %s", b)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: got %+v, want %+v", got, r)
	}
}

// TestFastScalarsAgreeWithTheStandardParsers: the decoder's short paths
// for times, decimals and integers give what time.Time's UnmarshalJSON
// and strconv give, or leave the text to them.
func TestFastScalarsAgreeWithTheStandardParsers(t *testing.T) {
	times := []string{
		"2026-11-29T12:05:00Z", "2026-11-29T12:05:00.1Z", "2026-11-29T12:05:00.123456789Z", "2026-11-29T12:05:00.000000001Z",
		"2024-02-29T23:59:59.5Z", "2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-04-30T00:00:00Z", "2026-12-31T23:59:59Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2000-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
		"2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
		"2026-01-01T00:00:60Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1234567890Z", "2026-01-01T00:00:00z",
		"2026-01-01t00:00:00Z", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00,5Z", "2026-1-01T00:00:00Z", "+026-01-01T00:00:00Z",
	}
	for _, s := range times {
		fast, ok := utcTime([]byte(s))
		var slow time.Time
		err := slow.UnmarshalJSON([]byte(`"` + s + `"`))
		switch {
		case ok && err != nil:
			t.Errorf("%s: short path accepts what UnmarshalJSON refuses (%v)", s, err)
		case ok && !reflect.DeepEqual(fast, slow):
			t.Errorf("%s: short path %#v, UnmarshalJSON %#v", s, fast, slow)
		}
	}
	// The form producers write is always taken by the short path.
	for _, s := range []string{"2026-11-29T12:05:00Z", "2026-12-31T23:59:59.999999999Z", "2024-02-29T00:00:00.5Z", "2026-01-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"} {
		if _, ok := utcTime([]byte(s)); !ok {
			t.Errorf("%s: not taken by the short path", s)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		// Decimals as timings are written, and beyond the short path.
		digits := 1 + rng.IntN(17)
		s := fmt.Sprint(rng.Uint64N(uint64(math.Pow10(min(digits, 19)))))
		if k := rng.IntN(len(s) + 1); k < len(s) && rng.IntN(3) > 0 {
			s = s[:k] + "." + s[k:]
			if k == 0 {
				s = "0" + s
			}
		}
		if rng.IntN(4) == 0 {
			s = "-" + s
		}
		want, err := strconv.ParseFloat(s, 64)
		if got, ok := shortDecimal([]byte(s)); ok && (err != nil || math.Float64bits(got) != math.Float64bits(want)) {
			t.Fatalf("%s: short path %v, strconv %v (%v)", s, got, want, err)
		}
		wantInt, err := strconv.ParseInt(s, 10, 64)
		if got, ok := shortInt([]byte(s)); ok && (err != nil || got != wantInt) {
			t.Fatalf("%s: short path %d, strconv %d (%v)", s, got, wantInt, err)
		}
	}
	for _, s := range []string{"0", "-0", "12.5", "0.001", "999999999999999", "123456789.012345"} {
		if _, ok := shortDecimal([]byte(s)); !ok {
			t.Errorf("%s: not taken by the short path", s)
		}
	}
	if got, _ := shortDecimal([]byte("-0")); !math.Signbit(got) {
		t.Error("-0: sign lost")
	}
}

// needsLook, the eight-bytes-a-step string scan, flags a word exactly when
// one of its bytes is not plain ASCII: every byte value at every place
// among plain bytes, then random words made of edge bytes.
func TestNeedsLookAgreesWithTheTable(t *testing.T) {
	word := func(b [8]byte) uint64 {
		var x uint64
		for i := 7; i >= 0; i-- {
			x = x<<8 | uint64(b[i])
		}
		return x
	}
	want := func(b [8]byte) bool {
		for _, c := range b {
			if !plainASCII[c] {
				return true
			}
		}
		return false
	}
	for c := range 256 {
		for at := range 8 {
			b := [8]byte{'a', 'Z', '0', '~', ' ', '!', '#', '['}
			b[at] = byte(c)
			if got := needsLook(word(b)); got != want(b) {
				t.Fatalf("needsLook(%q) = %v, want %v", b, got, want(b))
			}
		}
	}
	edges := []byte{0, 0x01, 0x1f, 0x20, 0x21, '"', 0x23, '\\', 0x5b, 0x5d, 0x7e, 0x7f, 0x80, 0xc3, 0xff, 'a'}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b [8]byte
		for i := range b {
			b[i] = edges[rng.IntN(len(edges))]
		}
		if got := needsLook(word(b)); got != want(b) {
			t.Fatalf("needsLook(%q) = %v, want %v", b, got, want(b))
		}
	}
}

// The key orders the decoders predict are the orders the encoders write
// (a wrong one would only be slower, so nothing else would notice), and
// an object in another order decodes the same.
func TestKeyOrdersFollowTheEncoders(t *testing.T) {
	keys := func(b []byte) []string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		var out []string
		depth := 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			switch v := tok.(type) {
			case json.Delim:
				if v == '{' || v == '[' {
					depth++
				} else {
					depth--
				}
			case string:
				if depth == 1 {
					if _, ok := m[v]; ok && (len(out) == 0 || out[len(out)-1] != v) {
						out = append(out, v)
						delete(m, v)
						// Skip the value: an object or array value's
						// tokens come next and are tracked by depth.
						var raw json.RawMessage
						if err := dec.Decode(&raw); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
	}
	chain := func(o keyOrder) []string {
		var out []string
		for f := o.first; f >= 0; f = o.next[f] {
			out = append(out, strings.Trim(o.quoted[f], `"`))
		}
		return out
	}
	at := time.Date(2026, 11, 29, 12, 5, 0, 123456789, time.UTC)
	ms, re, kind, msg, yes := 12.5, "Example", ErrRegexp, "no match", false
	r := &Result{V: 1, EventID: "0123456789abcdef", URL: "https://a.example/", Region: "eu-west-1", ScheduledAt: at, CheckedAt: at,
		Outcome: OutcomeDown, StatusCode: 200, ResponseTimeMS: &ms, DNSMS: &ms, ConnectMS: &ms, TLSMS: &ms, TTFBMS: &ms, TransferMS: &ms,
		BodyBytes: 10, Regexp: &re, RegexpMatched: &yes, ErrorKind: &kind, ErrorMessage: &msg, TLSNotAfter: &at, Checker: "h-1"}
	b, ok := r.appendJSON(nil)
	if !ok {
		t.Fatal("fast encoder declined the result")
	}
	if got, want := chain(resultKeys), keys(b); !slices.Equal(got, want) {
		t.Errorf("result keys predicted %v, written %v", got, want)
	}
	// The fast request encoder writes no headers or expected statuses
	// (omitted when empty): the keys it writes come in the predicted
	// order, with those two left out.
	q := &Request{V: 1, RequestID: "r1", URL: "https://a.example/", ScheduledAt: at, NextAt: at, Method: "GET", TimeoutMS: 1000, Regexp: &re}
	b, ok = q.appendJSON(nil)
	if !ok {
		t.Fatal("fast encoder declined the request")
	}
	predicted := slices.DeleteFunc(chain(requestKeys), func(k string) bool { return k == "headers" || k == "expect_status" })
	if got := keys(b); !slices.Equal(predicted, got) {
		t.Errorf("request keys predicted %v, written %v", predicted, got)
	}

	// The same result with its keys sorted (as a map is encoded).
	var m map[string]json.RawMessage
	b, _ = r.appendJSON(nil)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	sorted, _ := json.Marshal(m)
	got := new(Result)
	if !got.decodeFast(sorted) || !reflect.DeepEqual(got, r) {
		t.Errorf("keys in another order: decoded %+v (fast path taken: %v), want %+v", got, got.V != 0, r)
	}
}
