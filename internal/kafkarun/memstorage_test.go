package kafkarun

import (
	"fmt"
	"slices"
	"testing"

	"github.com/lovoo/goka/storage"
)

func keysOf(t *testing.T, it storage.Iterator) []string {
	t.Helper()
	var keys []string
	for it.Next() {
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != "v-"+string(it.Key()) {
			t.Fatalf("key %q has value %q", it.Key(), v)
		}
		keys = append(keys, string(it.Key()))
	}
	return keys
}

func TestMemoryStorage(t *testing.T) {
	st, err := MemoryStorage()("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if off, _ := st.GetOffset(-2); off != -2 {
		t.Fatalf("offset of an empty storage: %d, want the default", off)
	}
	for _, k := range []string{"b", "a", "ab", "c", "abc", "b"} {
		if err := st.Set(k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Set("x", nil); err == nil {
		t.Fatal("nil value accepted")
	}
	if ok, _ := st.Has("x"); ok {
		t.Fatal("refused key present")
	}
	if err := st.SetOffset(41); err != nil {
		t.Fatal(err)
	}
	if off, _ := st.GetOffset(-2); off != 41 {
		t.Fatalf("offset %d, want 41", off)
	}
	if v, _ := st.Get("ab"); string(v) != "v-ab" {
		t.Fatalf("Get(ab) = %q", v)
	}
	if v, _ := st.Get("none"); v != nil {
		t.Fatalf("Get of a missing key = %q, want nil", v)
	}

	it, _ := st.Iterator()
	// Writes after the snapshot do not show in it.
	_ = st.Set("aa", []byte("v-aa"))
	_ = st.Delete("c")
	if got, want := keysOf(t, it), []string{"a", "ab", "abc", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("iterator: %q, want %q (sorted, a snapshot)", got, want)
	}
	if it.Next() || it.Key() != nil {
		t.Fatal("exhausted iterator moved on")
	}

	it, _ = st.Iterator()
	if !it.Seek([]byte("ab")) {
		t.Fatal("Seek(ab) found nothing")
	}
	if got, want := keysOf(t, it), []string{"ab", "abc", "b"}; !slices.Equal(got, want) {
		t.Fatalf("after Seek(ab): %q, want %q", got, want)
	}
	it, _ = st.Iterator()
	if it.Seek([]byte("zz")) || it.Next() {
		t.Fatal("Seek past the last key found one")
	}

	it, _ = st.IteratorWithRange([]byte("a"), nil)
	if got, want := keysOf(t, it), []string{"a", "aa", "ab", "abc"}; !slices.Equal(got, want) {
		t.Fatalf("prefix a: %q, want %q", got, want)
	}
	it, _ = st.IteratorWithRange([]byte("aa"), []byte("b"))
	if got, want := keysOf(t, it), []string{"aa", "ab", "abc"}; !slices.Equal(got, want) {
		t.Fatalf("range [aa, b): %q, want %q", got, want)
	}
	it.Release()
	if it.Next() {
		t.Fatal("released iterator moved on")
	}
}

// The storage is written by one goroutine while others read (goka's
// views); run with -race.
func TestMemoryStorageConcurrentReaders(t *testing.T) {
	st, _ := MemoryStorage()("table", 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			_ = st.Set(fmt.Sprint(i%100), []byte("v"))
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
			_, _ = st.Get("7")
			it, _ := st.Iterator()
			for it.Next() {
			}
		}
	}
}

func TestPrefixLimit(t *testing.T) {
	for _, c := range []struct{ p, want string }{{"a", "b"}, {"a\xff", "b"}, {"\xff\xff", ""}, {"", ""}} {
		if got := string(prefixLimit([]byte(c.p))); got != c.want {
			t.Errorf("prefixLimit(%q) = %q, want %q", c.p, got, c.want)
		}
	}
}

// BenchmarkTableNewKeys writes 20,000 new keys, as a table meeting the
// sites of a large sites file for the first time (or recovering them), into
// goka's memory storage and into MemoryStorage, in the same run.
func BenchmarkTableNewKeys(b *testing.B) {
	keys := make([]string, 20000)
	for i := range keys {
		keys[i] = fmt.Sprintf("https://site-%d.example/", i*7919%len(keys))
	}
	for _, c := range []struct {
		name string
		b    storage.Builder
	}{{"goka-memory", storage.MemoryBuilder()}, {"kafkarun-memory", MemoryStorage()}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				st, _ := c.b("t", 0)
				for _, k := range keys {
					_ = st.Set(k, []byte("v"))
				}
			}
		})
	}
}
