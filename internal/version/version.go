// Package version reports what a sitewatch binary was built from: the module
// version (a tag for `go install …@vX.Y.Z`, a pseudo-version for a build from
// a clone) and the VCS revision, commit time and dirty flag that the go
// command stamps into every binary built inside a repository. Nothing is set
// with -ldflags, so `go install`, `go build` and `make release` report the
// same way.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// Info is the build of the running binary.
type Info struct {
	Module    string    // module path, e.g. github.com/sitewatch/sitewatch
	Version   string    // module version; "(devel)" or "" when the go command knew none
	Revision  string    // VCS commit, empty when built outside a repository
	Time      time.Time // commit time, zero when unknown
	Modified  bool      // the work tree had uncommitted changes
	GoVersion string    // toolchain that built the binary
}

// Read returns the running binary's Info.
func Read() Info { return FromBuildInfo(debug.ReadBuildInfo()) }

// FromBuildInfo extracts Info from what debug.ReadBuildInfo returned; ok
// false (a binary built without module support) gives an Info that says
// "unknown".
func FromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	if !ok || bi == nil {
		return Info{}
	}
	info := Info{Module: bi.Main.Path, Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			// An unparsable time is left zero rather than failing -version.
			info.Time, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one line -version prints after the program's name:
//
//	v1.2.0 (revision 3f2a9c1d07be, 2026-12-01T09:00:00Z) go1.26.8
//	v0.0.0-20261201090000-3f2a9c1d07be+dirty (revision 3f2a9c1d07be, 2026-12-01T09:00:00Z, modified) go1.26.8
func (i Info) String() string {
	var b strings.Builder
	v := i.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	b.WriteString(v)
	var details []string
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		details = append(details, "revision "+rev)
	}
	if !i.Time.IsZero() {
		details = append(details, i.Time.UTC().Format(time.RFC3339))
	}
	if i.Modified {
		details = append(details, "modified")
	}
	if len(details) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(details, ", "))
	}
	if i.GoVersion != "" {
		b.WriteString(" " + i.GoVersion)
	}
	return b.String()
}

// Line is the whole -version output of the program prog.
func Line(prog string) string { return prog + " " + Read().String() }
