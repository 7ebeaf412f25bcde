package kafkarun

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/lovoo/goka"
)

// DefaultCachedValues is CachedCodec's bound when Max is zero: the URLs of
// a busy partition set, each holding its last decoded value.
const DefaultCachedValues = 16384

// CachedCodec wraps a group table's codec so that a callback reading the
// value it stored in the previous callback for the same key gets that very
// object back instead of a decode of its bytes.
//
// goka decodes a key's table value at every ctx.Value() and encodes it at
// every ctx.SetValue(): the encode must stay (the bytes go to the table
// topic), but the decode of the bytes just written is pure waste, and for
// a windows state holding a few hundred response times and slots it was
// the processor's largest cost while draining a backlog (~15 % of its CPU
// in varint decoding, plus the garbage).
//
// It relies on the storage handing back the slice it was given (as
// MemoryStorage does): Encode remembers its output's first byte → the
// value; Decode of that same slice returns the value and forgets it. A
// storage that copies (LevelDB) just never hits. The rules that keep this
// exact:
//
//   - A hit is one-shot. The callback owns the object it got and may
//     change it; if it then calls SetValue, Encode remembers the new bytes,
//     and if it does not (the change is dropped, as with a decode), the
//     next Decode misses and decodes the stored bytes.
//   - The remembered entry keeps its slice alive, so the address cannot be
//     reused by another value while the entry exists, and the length must
//     match too.
//   - The caller must not change a value after passing it to SetValue.
//
// With Verify set, every hit also checks that the object still encodes to
// the stored bytes (nothing changed it after SetValue) and that a decode
// of them encodes to the same bytes again, and hands Verify the object, a
// fresh decode of its bytes and what did not hold: a processor's tests set
// it and compare the two values, which catches a codec that drops a field
// or an encoding cached inside the value that went stale.
type CachedCodec struct {
	Codec goka.Codec
	// Max bounds the values remembered (zero: DefaultCachedValues); past
	// it an arbitrary entry is forgotten, which costs one decode.
	Max int
	// Verify, when set, is called on every hit (tests; see above).
	Verify func(cached, decoded any, err error)

	mu   sync.Mutex
	m    map[*byte]cachedValue
	hits atomic.Int64
}

type cachedValue struct {
	data  []byte
	value any
}

var _ goka.Codec = (*CachedCodec)(nil)

// Encode encodes with the wrapped codec and remembers value for its bytes.
func (c *CachedCodec) Encode(value any) ([]byte, error) {
	data, err := c.Codec.Encode(value)
	if err != nil || len(data) == 0 {
		return data, err
	}
	max := c.Max
	if max <= 0 {
		max = DefaultCachedValues
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[*byte]cachedValue)
	}
	for k := range c.m {
		if len(c.m) < max {
			break
		}
		delete(c.m, k) // map order: an arbitrary one
	}
	c.m[&data[0]] = cachedValue{data: data, value: value}
	c.mu.Unlock()
	return data, nil
}

// Decode returns the value Encode produced data from, once, or decodes
// data with the wrapped codec.
func (c *CachedCodec) Decode(data []byte) (any, error) {
	if len(data) > 0 {
		c.mu.Lock()
		e, ok := c.m[&data[0]]
		if ok {
			delete(c.m, &data[0])
		}
		c.mu.Unlock()
		if ok && len(e.data) == len(data) {
			c.hits.Add(1)
			if c.Verify != nil {
				decoded, err := c.verify(e.value, data)
				c.Verify(e.value, decoded, err)
			}
			return e.value, nil
		}
	}
	return c.Codec.Decode(data)
}

// Hits is how many decodes were answered from memory.
func (c *CachedCodec) Hits() int64 { return c.hits.Load() }

func (c *CachedCodec) verify(value any, data []byte) (any, error) {
	again, err := c.Codec.Encode(value)
	if err != nil || !bytes.Equal(again, data) {
		return nil, fmt.Errorf("cached %T was changed after it was stored (encode error: %v)", value, err)
	}
	decoded, err := c.Codec.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("stored %T does not decode: %w", value, err)
	}
	if round, err := c.Codec.Encode(decoded); err != nil || !bytes.Equal(round, data) {
		return decoded, fmt.Errorf("decoded %T does not encode to its bytes (encode error: %v)", value, err)
	}
	return decoded, nil
}
