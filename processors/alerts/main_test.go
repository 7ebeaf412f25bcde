package alerts

import (
	"fmt"
	"os"
	"reflect"
	"sync/atomic"
	"testing"
)

// cacheHits counts the states handed back from memory instead of decoded
// (kafkarun.CachedCodec) while the tests ran; every one is checked.
var cacheHits, cacheFaults atomic.Int64

func TestMain(m *testing.M) {
	verifyCache = func(cached, decoded any, err error) {
		cacheHits.Add(1)
		if err == nil && !reflect.DeepEqual(cached, decoded) {
			err = fmt.Errorf("the state in memory differs from its stored bytes:\n%+v\n%+v", cached, decoded)
		}
		if err != nil && cacheFaults.Add(1) <= 3 {
			fmt.Fprintln(os.Stderr, "state cache:", err)
		}
	}
	code := m.Run()
	if n := cacheFaults.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d of %d states handed back from memory differed from their stored bytes\n", n, cacheHits.Load())
		code = 1
	}
	os.Exit(code)
}
