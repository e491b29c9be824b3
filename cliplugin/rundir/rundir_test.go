//go:build unix

package rundir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// deadRun lays out the directory of a run that is gone: its lock file
// holds a pid, and nobody holds the lock.
func deadRun(t *testing.T, parent, name, lock string) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(filepath.Join(dir, "stage-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lockName), []byte(lock), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOpen: a run's directory is made locked, and removed by Close; Open
// removes the directories of runs that are gone and keeps those of live
// runs, runs being made (empty lock file) and what is not a run's.
func TestOpen(t *testing.T) {
	parent := t.TempDir()
	live, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	if !isRunDir(filepath.Base(live.Path())) {
		t.Errorf("%s is not named as a run's directory", live.Path())
	}
	deadRun(t, parent, "storepack-99999999-1", "99999999\n")
	deadRun(t, parent, "storepack-2-beingmade", "")
	deadRun(t, parent, "storepack-e2e-notarun", "1\n")
	if err := os.Mkdir(filepath.Join(parent, "storepack-3-nolock"), 0o700); err != nil {
		t.Fatal(err)
	}
	second, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, parent)
	want := []string{filepath.Base(live.Path()), filepath.Base(second.Path()), "storepack-2-beingmade", "storepack-3-nolock", "storepack-e2e-notarun"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after Open: %v, want %v", got, want)
	}
	for _, d := range []*Dir{live, second} {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(d.Path()); !os.IsNotExist(err) {
			t.Errorf("%s left after Close: %v", d.Path(), err)
		}
	}
}

// TestEnterLeave: Enter points TMPDIR at this run's directory, in the
// temporary directory it had; Leave removes it and gives TMPDIR back.
func TestEnterLeave(t *testing.T) {
	parent := t.TempDir()
	t.Setenv("TMPDIR", parent)
	if err := Enter(); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("TMPDIR")
	if filepath.Dir(dir) != parent || !isRunDir(filepath.Base(dir)) {
		t.Errorf("TMPDIR %s, want a run's directory in %s", dir, parent)
	}
	Leave()
	if got := os.Getenv("TMPDIR"); got != parent {
		t.Errorf("TMPDIR %s after Leave, want %s", got, parent)
	}
	if left := names(t, parent); len(left) > 0 {
		t.Errorf("left after Leave: %v", left)
	}
}
