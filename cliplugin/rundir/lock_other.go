//go:build !unix

package rundir

import "os"

// hold creates the lock file name. Without flock, no run can tell that
// another is gone: Sweep removes nothing.
func hold(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

func tryLock(*os.File) bool { return false }
