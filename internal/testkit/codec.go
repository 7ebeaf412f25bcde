package testkit

import (
	"testing"

	"github.com/lovoo/goka"
)

// Stored is v as a goka group table gives it back (a restart recovering
// the table): encoded by c and decoded again. It also returns the bytes
// stored.
func Stored[T any](t testing.TB, c goka.Codec, v T) (T, []byte) {
	t.Helper()
	data, err := c.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	back, err := c.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return back.(T), data
}
