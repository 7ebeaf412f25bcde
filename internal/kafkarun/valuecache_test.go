package kafkarun

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
)

type counter struct{ N int }

// jsonCodec is a plain codec of *counter, decoding a fresh object each time.
type jsonCodec struct{}

func (jsonCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }
func (jsonCodec) Decode(b []byte) (any, error) {
	var c counter
	err := json.Unmarshal(b, &c)
	return &c, err
}

func TestCachedCodecHandsBackWhatItStored(t *testing.T) {
	c := &CachedCodec{Codec: jsonCodec{}}
	v := &counter{N: 7}
	stored, err := c.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(stored)
	if err != nil || got != v {
		t.Fatalf("decode of the stored bytes: %v, %v; want the very object stored", got, err)
	}
	// One-shot: the callback owns the object now and may change it without
	// storing it; the next read must see the stored bytes, not that change.
	v.N = 8
	again, err := c.Decode(stored)
	if err != nil || again == v || again.(*counter).N != 7 {
		t.Fatalf("second decode: %+v, %v; want a fresh decode with N=7", again, err)
	}
	// A storage that copies never hits.
	if got, _ := c.Decode(slices.Clone(stored)); got == v {
		t.Fatal("a copy of the bytes returned the cached object")
	}
	if c.Hits() != 1 {
		t.Fatalf("hits %d, want 1", c.Hits())
	}
}

func TestCachedCodecIsBounded(t *testing.T) {
	c := &CachedCodec{Codec: jsonCodec{}, Max: 3}
	var stored [][]byte
	for i := range 10 {
		b, err := c.Encode(&counter{N: i})
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, b)
	}
	for i, b := range stored {
		got, err := c.Decode(b)
		if err != nil || got.(*counter).N != i {
			t.Fatalf("value %d decoded as %+v, %v", i, got, err)
		}
	}
	if c.Hits() != 3 {
		t.Fatalf("hits %d, want 3: the cache holds at most Max values", c.Hits())
	}
}

func TestCachedCodecVerifyFindsAValueChangedAfterStore(t *testing.T) {
	var reported error
	c := &CachedCodec{Codec: jsonCodec{}, Verify: func(_, _ any, err error) { reported = err }}
	v := &counter{N: 1}
	stored, _ := c.Encode(v)
	v.N = 2 // the caller broke the rule
	if _, err := c.Decode(stored); err != nil {
		t.Fatal(err)
	}
	if reported == nil {
		t.Fatal("a value changed after it was stored went unreported")
	}
	reported = nil
	w := &counter{N: 3}
	stored, _ = c.Encode(w)
	_, _ = c.Decode(stored)
	if reported != nil {
		t.Fatalf("an unchanged value was reported: %v", reported)
	}
	calls := 0
	c.Verify = func(cached, decoded any, _ error) {
		calls++
		if cached != w || decoded == w || *decoded.(*counter) != *w {
			t.Errorf("Verify got %v and %v, want the cached object and a fresh decode of it", cached, decoded)
		}
	}
	stored, _ = c.Encode(w)
	_, _ = c.Decode(stored)
	if calls != 1 {
		t.Fatalf("Verify told of %d hits, want 1", calls)
	}
}

type failingCodec struct{}

func (failingCodec) Encode(any) ([]byte, error) { return nil, errors.New("no") }
func (failingCodec) Decode([]byte) (any, error) { return nil, fmt.Errorf("no") }

func TestCachedCodecPassesErrorsThrough(t *testing.T) {
	c := &CachedCodec{Codec: failingCodec{}}
	if _, err := c.Encode(&counter{}); err == nil {
		t.Fatal("encode error lost")
	}
	if _, err := c.Decode([]byte("x")); err == nil {
		t.Fatal("decode error lost")
	}
}
