// Package rundir gives each run of the plugin a temporary directory of its
// own, which holds every temporary file of the run (the plugin points
// TMPDIR at it), and removes those of earlier runs that were killed before
// they could remove theirs (kill -9, out of memory), never a live run's.
//
// A run's directory is storepack-<pid>-<random> in the system's temporary
// directory. It holds a lock file, flock'ed by the run for as long as it
// lives and then holding the run's pid: the kernel drops the lock when the
// run ends, however it ends, so a lock that can be taken tells a directory
// whose owner is gone. A flock, unlike a pid, also tells a live run in
// another pid namespace sharing the directory.
package rundir

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The run's directory, while TMPDIR names it (Enter).
var (
	mu       sync.Mutex
	current  *Dir
	previous string // TMPDIR before Enter
	hadTMP   bool
)

// Enter removes the directories of runs that are gone in the system's
// temporary directory, makes this run's there and points TMPDIR at it, so
// that every temporary file of the run, its libraries' and tools' too,
// goes there.
func Enter() error {
	mu.Lock()
	defer mu.Unlock()
	if current != nil {
		return nil
	}
	d, err := Open(os.TempDir())
	if err != nil {
		return err
	}
	previous, hadTMP = os.LookupEnv("TMPDIR")
	current = d
	return os.Setenv("TMPDIR", d.Path())
}

// Leave removes this run's directory and gives TMPDIR back its value
// before Enter: at the end of the run, and before the process is replaced
// by another program (exec), which then never sees the directory.
func Leave() {
	mu.Lock()
	defer mu.Unlock()
	if current == nil {
		return
	}
	if hadTMP {
		os.Setenv("TMPDIR", previous)
	} else {
		os.Unsetenv("TMPDIR")
	}
	current.Close()
	current = nil
}

// Prefix begins the name of every run's directory.
const Prefix = "storepack-"

// lockName is the lock file in a run's directory.
const lockName = ".lock"

// Dir is the temporary directory of this run.
type Dir struct {
	path string
	lock *os.File
}

// Open removes the directories in parent of runs that are gone, and makes
// and locks this run's.
func Open(parent string) (*Dir, error) {
	Sweep(parent)
	path, err := os.MkdirTemp(parent, fmt.Sprintf("%s%d-", Prefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	lock, err := hold(filepath.Join(path, lockName))
	if err != nil {
		os.RemoveAll(path)
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Dir{path: path, lock: lock}, nil
}

// Path is the directory's name.
func (d *Dir) Path() string { return d.path }

// Close removes the directory and what it holds.
func (d *Dir) Close() error {
	err := os.RemoveAll(d.path)
	d.lock.Close()
	return err
}

// Sweep removes the directories in parent of runs that are gone: those
// whose lock file holds a pid and can be locked. A directory whose lock
// file is empty may be one being made, and stays.
func Sweep(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && isRunDir(e.Name()) {
			sweepOne(filepath.Join(parent, e.Name()))
		}
	}
}

// isRunDir tells whether name is that of a run's directory:
// storepack-<pid>-<random>.
func isRunDir(name string) bool {
	pid, _, ok := strings.Cut(strings.TrimPrefix(name, Prefix), "-")
	_, err := strconv.Atoi(pid)
	return ok && err == nil && strings.HasPrefix(name, Prefix)
}

func sweepOne(dir string) {
	f, err := os.Open(filepath.Join(dir, lockName))
	if err != nil {
		return // not a run's directory, or one being made
	}
	defer f.Close()
	if !tryLock(f) {
		return // its run lives
	}
	if info, err := f.Stat(); err != nil || info.Size() == 0 {
		return // locked but not yet written: a run being made
	}
	os.RemoveAll(dir)
}
