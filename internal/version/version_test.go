package version_test

import (
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/internal/version"
)

func TestFromBuildInfo(t *testing.T) {
	main := debug.Module{Path: "github.com/sitewatch/sitewatch"}
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	cases := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{
			name: "go install of a tag",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: main.Path, Version: "v1.2.0"},
				Settings: settings("vcs.revision", "3f2a9c1d07be5e3bb0c1e2d3f4a5b6c7d8e9f001", "vcs.time", "2026-12-01T09:00:00Z", "vcs.modified", "false")},
			ok:   true,
			want: "v1.2.0 (revision 3f2a9c1d07be, 2026-12-01T09:00:00Z) go1.26.8",
		},
		{
			name: "go install without VCS data",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: main.Path, Version: "v1.2.0"}},
			ok:   true,
			want: "v1.2.0 go1.26.8",
		},
		{
			name: "build from a dirty clone",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: main.Path, Version: "v0.0.0-20261201090000-3f2a9c1d07be+dirty"},
				Settings: settings("vcs.revision", "3f2a9c1d07be5e3b", "vcs.time", "2026-12-01T09:00:00Z", "vcs.modified", "true", "-trimpath", "true")},
			ok:   true,
			want: "v0.0.0-20261201090000-3f2a9c1d07be+dirty (revision 3f2a9c1d07be, 2026-12-01T09:00:00Z, modified) go1.26.8",
		},
		{
			name: "devel build outside a repository",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: main.Path, Version: "(devel)"}},
			ok:   true,
			want: "devel go1.26.8",
		},
		{name: "no build info", ok: false, want: "devel"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := version.FromBuildInfo(tc.bi, tc.ok).String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestFromBuildInfoFields(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "m", Version: "v1.0.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-12-01T09:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	got := version.FromBuildInfo(bi, true)
	want := version.Info{Module: "m", Version: "v1.0.0", Revision: "abc", Time: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Modified: true}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestLineOfTheTestBinary: the running binary (the test) has build info
// from the go command; Line names the program and the toolchain.
func TestLineOfTheTestBinary(t *testing.T) {
	line := version.Line("emitter")
	bi, _ := debug.ReadBuildInfo()
	if !strings.HasPrefix(line, "emitter ") || !strings.HasSuffix(line, " "+bi.GoVersion) {
		t.Errorf("Line = %q, want \"emitter <version> ... %s\"", line, bi.GoVersion)
	}
}
