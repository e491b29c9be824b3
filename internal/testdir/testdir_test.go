package testdir

import (
	"os"
	"path/filepath"
	"testing"
)

// TestForStore: a read-only tree below the directory is removed with it.
func TestForStore(t *testing.T) {
	var dir string
	t.Run("store", func(t *testing.T) {
		dir = ForStore(t)
		path := filepath.Join(dir, "nix", "store", "x-hello", "bin")
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, "hello"), []byte("hi"), 0o555); err != nil {
			t.Fatal(err)
		}
		for p := path; p != dir; p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o555); err != nil {
				t.Fatal(err)
			}
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s after the test: %v, want it removed", dir, err)
	}
}
