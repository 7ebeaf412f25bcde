package testkit

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

// CacheVerifier checks, in a package's tests, every value a
// kafkarun.CachedCodec hands back from memory instead of decoding it: Verify
// is the codec's Verify hook, Run runs the tests and fails the run when a
// value differed from a fresh decode of its stored bytes.
type CacheVerifier struct {
	// Diff compares the value from memory with the decode of its bytes
	// ("" when they are the same).
	Diff func(cached, decoded any) string
	// Hits counts the values handed back from memory.
	Hits   atomic.Int64
	faults atomic.Int64
}

// Verify is a kafkarun.CachedCodec Verify function.
func (v *CacheVerifier) Verify(cached, decoded any, err error) {
	v.Hits.Add(1)
	if err == nil && v.Diff != nil {
		if d := v.Diff(cached, decoded); d != "" {
			err = fmt.Errorf("the value in memory differs from its stored bytes: %s", d)
		}
	}
	if err != nil && v.faults.Add(1) <= 3 {
		fmt.Fprintln(os.Stderr, "state cache:", err)
	}
}

// Run runs the tests (TestMain's m.Run) and returns the exit code, 1 when a
// value from memory did not hold.
func (v *CacheVerifier) Run(m *testing.M) int {
	code := m.Run()
	if n := v.faults.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d of %d values handed back from memory differed from their stored bytes\n", n, v.Hits.Load())
		code = 1
	}
	return code
}
