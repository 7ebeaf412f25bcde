// Package release_test checks `make release` the way a user receives it:
// static binaries that run anywhere, checksums that match, and -version
// naming the commit they were built from.
package release_test

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sitewatch/sitewatch/internal/testkit"
)

var commands = []string{"emitter", "processor", "sitewatch"}

// TestMakeRelease builds the linux/amd64 binaries with the release target
// (the full matrix of `make release` is the same loop over more
// platforms), then checks each one: listed in SHA256SUMS with its digest,
// statically linked, and `-version` exits 0 naming the program and, in a
// git clone, the checked-out commit.
func TestMakeRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("runs the linux/amd64 binaries; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	mk := testkit.Tool(t, "make", "`make release` is not tested", "apt-get install make")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	cmd := exec.Command(mk, "-C", root, "release", "PLATFORMS=linux/amd64", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}

	sums := readSums(t, filepath.Join(dist, "SHA256SUMS"))
	if len(sums) != len(commands) {
		t.Errorf("SHA256SUMS lists %d files, want %d: %v", len(sums), len(commands), sums)
	}
	wantRev := headRevision(t, root)
	for _, c := range commands {
		name := c + "-linux-amd64"
		path := filepath.Join(dist, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		digest := sha256.Sum256(data)
		if got := sums[name]; got != hex.EncodeToString(digest[:]) {
			t.Errorf("%s: SHA256SUMS says %q, the file's digest is %x", name, got, digest)
		}
		if err := static(path); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		out, err := exec.Command(path, "-version").Output()
		if err != nil {
			t.Errorf("%s -version: %v", name, err)
			continue
		}
		line := string(out)
		if !strings.HasPrefix(line, c+" ") || strings.Count(line, "\n") != 1 || !strings.Contains(line, runtime.Version()) {
			t.Errorf("%s -version printed %q, want one line \"%s <version> … %s\"", name, line, c, runtime.Version())
		}
		if wantRev != "" && !strings.Contains(line, "revision "+wantRev[:12]) {
			t.Errorf("%s -version printed %q, want the checked-out revision %s", name, line, wantRev[:12])
		}
	}
}

// readSums parses sha256sum output: "<hex>  <file>" per line.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		digest, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		sums[file] = digest
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sums
}

// static fails for an ELF file that asks for a dynamic loader.
func static(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return &staticError{p.Type}
		}
	}
	return nil
}

type staticError struct{ t elf.ProgType }

func (e *staticError) Error() string { return "not statically linked: has " + e.t.String() }

// headRevision is the commit checked out at root when root is a git clone
// (the go command stamps the revision only where .git is a directory, not
// in a linked worktree), else "".
func headRevision(t *testing.T, root string) string {
	t.Helper()
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		t.Logf("%s is not a git clone; -version's revision is not checked", root)
		return ""
	}
	out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Logf("git rev-parse HEAD: %v; -version's revision is not checked", err)
		return ""
	}
	return strings.TrimSpace(string(out))
}
