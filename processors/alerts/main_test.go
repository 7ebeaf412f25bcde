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
	if reflect.DeepEqual(a, b) {
		return ""
	}
	return fmt.Sprintf("\n%+v\n%+v", a, b)
}}

func TestMain(m *testing.M) {
	verifyCache = cacheCheck.Verify
	os.Exit(cacheCheck.Run(m))
}
