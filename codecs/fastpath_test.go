package codecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
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
	f.Fuzz(func(t *testing.T, data []byte) {
		fast := new(Result)
		if !fast.decodeFast(data) {
			return
		}
		slow := new(Result)
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
	})
}
