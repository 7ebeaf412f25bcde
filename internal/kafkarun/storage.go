package kafkarun

import "github.com/lovoo/goka/storage"

// Storage is where a goka group keeps its local copy of the group table:
// on disk under dir, which a restart reuses instead of reading the whole
// table topic again, or in memory when dir is empty (-state-dir unset).
func Storage(dir string) storage.Builder {
	if dir != "" {
		return storage.DefaultBuilder(dir)
	}
	return MemoryStorage()
}
