package windows

import (
	"os"
	"testing"

	"github.com/sitewatch/sitewatch/internal/testkit"
)

// cacheCheck checks every state handed back from memory instead of
// decoded (kafkarun.CachedCodec) while the tests run.
var cacheCheck = &testkit.CacheVerifier{Diff: func(a, b any) string { return stateDiff(a.(*state), b.(*state)) }}

func TestMain(m *testing.M) {
	verifyCache = cacheCheck.Verify
	os.Exit(cacheCheck.Run(m))
}
