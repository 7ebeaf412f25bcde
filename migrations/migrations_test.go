package migrations

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// Every migration is a well-named up/down pair, numbered without gaps, so
// golang-migrate applies them in order and can undo each one.
func TestFilesArePairs(t *testing.T) {
	names, err := fs.Glob(FS, "*")
	if err != nil {
		t.Fatal(err)
	}
	pattern := regexp.MustCompile(`^(\d{6})_[a-z0-9_]+\.(up|down)\.sql$`)
	ups := map[string]bool{}
	downs := map[string]bool{}
	for _, n := range names {
		m := pattern.FindStringSubmatch(n)
		if m == nil {
			t.Errorf("%s: want NNNNNN_name.up.sql or NNNNNN_name.down.sql", n)
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(n, ".up.sql"), ".down.sql")
		if m[2] == "up" {
			ups[base] = true
		} else {
			downs[base] = true
		}
		if b, _ := fs.ReadFile(FS, n); len(strings.TrimSpace(string(b))) == 0 {
			t.Errorf("%s is empty", n)
		}
	}
	if len(ups) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i := 1; i <= len(ups); i++ {
		found := false
		for base := range ups {
			if strings.HasPrefix(base, fmt.Sprintf("%06d_", i)) {
				found = true
				if !downs[base] {
					t.Errorf("%s.up.sql has no down migration", base)
				}
			}
		}
		if !found {
			t.Errorf("migration %d missing: numbers must run 1..%d without gaps", i, len(ups))
		}
	}
	for base := range downs {
		if !ups[base] {
			t.Errorf("%s.down.sql has no up migration", base)
		}
	}
}
