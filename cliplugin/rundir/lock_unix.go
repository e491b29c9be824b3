//go:build unix

package rundir

import (
	"os"
	"strconv"
	"syscall"
)

// hold creates the lock file name, locks it for the rest of this process's
// life, and writes the pid into it. The descriptor is not inherited: a
// long-lived child (podman's pause process) would keep the lock forever.
func hold(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tryLock tells whether f could be locked: no live process holds its lock.
func tryLock(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
