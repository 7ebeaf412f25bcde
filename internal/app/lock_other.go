//go:build !unix && !windows

package app

import "os"

// lockFile does nothing where no file lock is available: two processes on
// one data directory are then the user's to avoid.
func lockFile(*os.File) error { return nil }
