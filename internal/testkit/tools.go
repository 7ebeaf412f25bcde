package testkit

import (
	"os"
	"os/exec"
	"testing"
)

// Missing skips the test loudly because something it needs is not on
// this machine, except under CI=true, where .ci/run has installed
// everything and a missing tool is a failure.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run should have installed it)", msg)
	}
	t.Skip(msg)
}

// Tool returns the path of the command name, or calls Missing with what
// goes untested and how to install it.
func Tool(t testing.TB, name, untested, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "NO "+name+": "+untested+" ("+install+")")
	}
	return path
}
