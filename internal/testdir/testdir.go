// Package testdir makes temporary directories for tests that lay out
// stores, which Nix and Guix leave read-only.
package testdir

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// ForStore returns a new temporary directory whose directories are made
// writable again before the testing package removes it, which it could not
// do below a read-only store path.
func ForStore(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	// Registered after TempDir's own cleanup, so it runs before it.
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(path, 0o755)
			}
			return nil
		})
	})
	return dir
}
