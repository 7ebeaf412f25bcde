package alerts

import (
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/sitewatch/sitewatch/internal/testkit"
)

// cacheCheck checks every state handed back from memory instead of
// decoded (kafkarun.CachedCodec) while the tests run: it must equal the
// decode exactly, as the codec's round trip does.
var cacheCheck = &testkit.CacheVerifier{Diff: func(a, b any) string {
	if sameState(a, b) {
		return ""
	}
	return fmt.Sprintf("\n%+v\n%+v", a, b)
}}

// readBack writes st as the table stores it and reads it back, returning
// the state read and the bytes stored.
func readBack(t testing.TB, st *state) (*state, []byte) {
	t.Helper()
	return testkit.Stored(t, stateCodec{}, st)
}

// sameState reports whether a and b are the same state as stored. The held
// events' index in memory is not stored: it must agree with a's and b's
// own events (a fresh index of them) and is otherwise ignored.
func sameState(a, b any) bool {
	sa, ok1 := a.(*state)
	sb, ok2 := b.(*state)
	if !ok1 || !ok2 || sa == nil || sb == nil {
		return reflect.DeepEqual(a, b)
	}
	stored := func(st *state) (state, bool) {
		c := *st
		fresh := heldEvents{list: c.held.list}
		fresh.index()
		ok := !c.held.indexed || (reflect.DeepEqual(c.held.ats, fresh.ats) && reflect.DeepEqual(c.held.ids, fresh.ids)) ||
			(len(c.held.ats) == 0 && len(fresh.ats) == 0 && len(c.held.ids) == 0 && len(fresh.ids) == 0)
		if c.held.oldest != nil {
			ok = ok && reflect.DeepEqual(c.held.oldest, fresh.first(c.URL))
		}
		c.held = heldEvents{list: c.held.list}
		return c, ok
	}
	ca, okA := stored(sa)
	cb, okB := stored(sb)
	return okA && okB && reflect.DeepEqual(ca, cb)
}

func TestMain(m *testing.M) {
	verifyCache = cacheCheck.Verify
	os.Exit(cacheCheck.Run(m))
}
