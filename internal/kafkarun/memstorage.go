package kafkarun

import (
	"bytes"
	"errors"
	"slices"
	"sort"
	"sync"

	"github.com/lovoo/goka/storage"
)

// MemoryStorage is a goka storage.Builder holding each partition's table in
// a map. goka's own memory storage keeps a sorted slice of its keys and
// sorts the whole slice again on every new key: recovering a table, or a
// group meeting a URL for the first time, costs a sort of every key per
// key. Profiles of the emitter showed that sort at several per cent of its
// CPU while sites were still new to the url_checker table, and recovering
// 100,000 keys is quadratic. Here a write is a map assignment; only an
// iterator (a goka visit, rare) sorts, once, on its own snapshot.
func MemoryStorage() storage.Builder {
	return func(string, int32) (storage.Storage, error) { return newMemStorage(), nil }
}

type memStorage struct {
	mu     sync.RWMutex
	m      map[string][]byte
	offset int64
	hasOff bool
}

var _ storage.Storage = (*memStorage)(nil)

func newMemStorage() *memStorage { return &memStorage{m: map[string][]byte{}} }

func (s *memStorage) Open() error  { return nil }
func (s *memStorage) Close() error { return nil }

func (s *memStorage) Has(key string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.m[key]
	return ok, nil
}

func (s *memStorage) Get(key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[key], nil
}

func (s *memStorage) Set(key string, value []byte) error {
	if value == nil {
		// As goka's storages: nil is how Get says "absent".
		return errors.New("memory storage: cannot write a nil value")
	}
	s.mu.Lock()
	s.m[key] = value
	s.mu.Unlock()
	return nil
}

func (s *memStorage) Delete(key string) error {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	return nil
}

func (s *memStorage) GetOffset(def int64) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.hasOff {
		return def, nil
	}
	return s.offset, nil
}

func (s *memStorage) SetOffset(offset int64) error {
	s.mu.Lock()
	s.offset, s.hasOff = offset, true
	s.mu.Unlock()
	return nil
}

// MarkRecovered changes nothing: the storage has one mode. Recovered stays
// false, as goka's memory storage says, so goka recovers a memory table
// from its topic at every start.
func (s *memStorage) MarkRecovered() error { return nil }
func (s *memStorage) Recovered() bool      { return false }

// Iterator is a snapshot of the table in key order; writes after it was
// made do not show in it.
func (s *memStorage) Iterator() (storage.Iterator, error) {
	return s.snapshot(func(string) bool { return true }), nil
}

// IteratorWithRange is a snapshot of the keys from start (included) to
// limit (excluded), as the disk storage (leveldb) has it; an empty limit
// means every key with the prefix start.
func (s *memStorage) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	if len(limit) == 0 {
		limit = prefixLimit(start)
	}
	return s.snapshot(func(k string) bool {
		return bytes.Compare([]byte(k), start) >= 0 && (limit == nil || bytes.Compare([]byte(k), limit) < 0)
	}), nil
}

func (s *memStorage) snapshot(keep func(string) bool) *memIter {
	s.mu.RLock()
	it := &memIter{pos: -1, vals: make(map[string][]byte, len(s.m))}
	for k, v := range s.m {
		if keep(k) {
			it.keys = append(it.keys, k)
			it.vals[k] = v
		}
	}
	s.mu.RUnlock()
	slices.Sort(it.keys)
	return it
}

// memIter walks a sorted snapshot. pos is the current key; -1 before the
// first Next.
type memIter struct {
	keys []string
	vals map[string][]byte
	pos  int
}

func (i *memIter) Next() bool {
	if i.pos < len(i.keys) {
		i.pos++
	}
	return i.pos < len(i.keys)
}

func (i *memIter) valid() bool { return i.pos >= 0 && i.pos < len(i.keys) }

func (i *memIter) Err() error { return nil }

func (i *memIter) Key() []byte {
	if !i.valid() {
		return nil
	}
	return []byte(i.keys[i.pos])
}

func (i *memIter) Value() ([]byte, error) {
	if !i.valid() {
		return nil, nil
	}
	return i.vals[i.keys[i.pos]], nil
}

func (i *memIter) Release() { i.pos = len(i.keys) }

// Seek positions the iterator so that the next Next lands on the first key
// not less than key; it reports whether there is one.
func (i *memIter) Seek(key []byte) bool {
	n := sort.SearchStrings(i.keys, string(key))
	i.pos = n - 1
	return n < len(i.keys)
}

// prefixLimit is the smallest key greater than every key with the prefix p
// (nil: there is none, every key from p on has it), as goleveldb's
// util.BytesPrefix, which goka's memory storage uses.
func prefixLimit(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] < 0xff {
			l := slices.Clone(p[:i+1])
			l[i]++
			return l
		}
	}
	return nil
}
