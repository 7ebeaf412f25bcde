package binform

import (
	"math"
	"testing"
	"time"
)

// Every value reads back as written, from a string as from bytes, and a
// value cut short is an error, never a panic or a zero read as data.
func TestRoundTripAndTruncation(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	var b []byte
	b = AppendTime(b, at)
	b = AppendTime(b, time.Time{})
	b = AppendString(b, "status_request_succeeded")
	b = AppendFloat(b, math.Copysign(0, -1))
	b = append(b, 7)
	read := func(r interface {
		Time() time.Time
		Float() float64
		Byte() byte
	}, raw func() string, err func() error) {
		t.Helper()
		if got := r.Time(); !got.Equal(at) || got.Location() != time.UTC {
			t.Errorf("time %v, want %v in UTC", got, at)
		}
		if got := r.Time(); !got.Equal(time.Time{}) {
			t.Errorf("zero time read as %v", got)
		}
		if got := raw(); got != "status_request_succeeded" {
			t.Errorf("string %q", got)
		}
		if got := r.Float(); math.Float64bits(got) != math.Float64bits(math.Copysign(0, -1)) {
			t.Errorf("float %v lost its bits", got)
		}
		if got := r.Byte(); got != 7 {
			t.Errorf("byte %d", got)
		}
		if e := err(); e != nil {
			t.Errorf("error %v", e)
		}
	}
	s := &Reader[string]{Data: string(b)}
	read(s, s.Raw, func() error { return s.Err })
	bs := &Reader[[]byte]{Data: b}
	read(bs, func() string { return string(bs.Raw()) }, func() error { return bs.Err })

	for n := range len(b) {
		r := &Reader[[]byte]{Data: b[:n]}
		r.Time()
		r.Time()
		r.Raw()
		r.Float()
		r.Byte()
		if r.Err == nil {
			t.Fatalf("value cut to %d of %d bytes read without an error", n, len(b))
		}
	}
	// A varint longer than 64 bits and a list longer than the value.
	over := &Reader[[]byte]{Data: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}}
	if over.Uvarint(); over.Err == nil {
		t.Error("a 65-bit varint read without an error")
	}
	long := &Reader[string]{Data: "\x05ab"}
	if long.Count(1); long.Err == nil {
		t.Error("a list of 5 in 2 bytes read without an error")
	}
}
