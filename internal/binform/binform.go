// Package binform is the compact binary form the processors' group-table
// values are stored in (processors/windows, processors/alerts): times as a
// signed varint of Unix seconds and an unsigned varint of nanoseconds,
// integers as varints, floats as their 8 IEEE 754 bytes little-endian,
// strings as a length and their bytes. Each processor lays out its own
// value with these; one home keeps the two readers and writers alike.
package binform

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// AppendTime writes t (any time.Time, the zero one included).
func AppendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// AppendString writes s as its length and its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendFloat writes v's 8 bytes, exact (unlike decimal text).
func AppendFloat(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// Reader reads the binary form from Data, at Pos. After the first error
// every read returns a zero value and Err says what went wrong where. T is
// a string for a reader whose strings are to be slices of one (no copy per
// string), a []byte otherwise.
type Reader[T ~string | ~[]byte] struct {
	Data T
	Pos  int
	Err  error
}

// Fail records what went wrong at Pos (the first failure only) and skips
// to the end.
func (r *Reader[T]) Fail(what string) {
	if r.Err == nil {
		r.Err = fmt.Errorf("%s at byte %d of %d", what, r.Pos, len(r.Data))
	}
	r.Pos = len(r.Data)
}

// Uvarint reads an unsigned varint (binary.AppendUvarint's).
func (r *Reader[T]) Uvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; r.Pos+i < len(r.Data) && i < binary.MaxVarintLen64; i++ {
		c := r.Data[r.Pos+i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			r.Pos += i + 1
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.Fail("bad varint")
	return 0
}

// Varint reads a signed varint (binary.AppendVarint's zig-zag).
func (r *Reader[T]) Varint() int64 {
	u := r.Uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// Count reads a list length, each item at least min bytes long: a length
// that cannot fit in the rest of the value is corrupt (and must not size
// an allocation).
func (r *Reader[T]) Count(min int) int {
	n := r.Uvarint()
	if n > uint64((len(r.Data)-r.Pos)/min) {
		r.Fail("list longer than the value")
		return 0
	}
	return int(n)
}

// Byte reads one byte.
func (r *Reader[T]) Byte() byte {
	if r.Pos >= len(r.Data) {
		r.Fail("truncated")
		return 0
	}
	r.Pos++
	return r.Data[r.Pos-1]
}

// Float reads what AppendFloat wrote.
func (r *Reader[T]) Float() float64 {
	if len(r.Data)-r.Pos < 8 {
		r.Fail("truncated")
		return 0
	}
	s := r.Data[r.Pos : r.Pos+8]
	r.Pos += 8
	return math.Float64frombits(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
}

// Raw reads what AppendString wrote, as a slice of Data.
func (r *Reader[T]) Raw() T {
	n := r.Count(1)
	s := r.Data[r.Pos : r.Pos+n]
	r.Pos += n
	return s
}

// Time reads what AppendTime wrote, in UTC.
func (r *Reader[T]) Time() time.Time {
	sec := r.Varint()
	nsec := r.Uvarint()
	if nsec >= 1e9 {
		r.Fail("bad nanoseconds")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
