package hostbuild

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
)

// TestStoreDirFS: a layer's transfer walks the image's store directory and
// its parents (root's, mode 0755), then only the included store paths;
// absolute symlinks keep their targets and hard links are files of their
// own.
func TestStoreDirFS(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"aaaa-foo/bin", "bbbb-bar/lib", "cccc-other"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "aaaa-foo/bin/x"), []byte("x"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "aaaa-foo/bin/x"), filepath.Join(dir, "aaaa-foo/y")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nix/store/bbbb-bar/lib", filepath.Join(dir, "aaaa-foo/lib")); err != nil {
		t.Fatal(err)
	}
	host, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	served, err := fsutil.NewFilterFS(storeDirFS{store: host, dir: "nix/store"}, &fsutil.FilterOpt{
		IncludePatterns: []string{"nix/store/aaaa-foo", "nix/store/bbbb-bar"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var walked []string
	stats := map[string]*types.Stat{}
	err = served.Walk(context.Background(), "/", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*types.Stat)
		if st.Path != p {
			t.Errorf("walked %s, its stat says %s", p, st.Path)
		}
		walked = append(walked, p)
		stats[p] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"nix", "nix/store", "nix/store/aaaa-foo", "nix/store/aaaa-foo/bin", "nix/store/aaaa-foo/bin/x",
		"nix/store/aaaa-foo/lib", "nix/store/aaaa-foo/y", "nix/store/bbbb-bar", "nix/store/bbbb-bar/lib"}
	if !slices.Equal(walked, want) {
		t.Fatalf("walked %q, want %q", walked, want)
	}
	for _, p := range []string{"nix", "nix/store"} {
		if st := stats[p]; os.FileMode(st.Mode) != os.ModeDir|0o755 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: mode %v, owner %d:%d; want a directory of mode 0755 owned by root", p, os.FileMode(st.Mode), st.Uid, st.Gid)
		}
	}
	if got := stats["nix/store/aaaa-foo/lib"].Linkname; got != "/nix/store/bbbb-bar/lib" {
		t.Errorf("symlink target %q", got)
	}
	if got := stats["nix/store/aaaa-foo/y"]; got.Linkname != "" || got.Size != 1 {
		t.Errorf("a hard link is sent as a link to %q, size %d", got.Linkname, got.Size)
	}

	r, err := served.Open("nix/store/aaaa-foo/bin/x")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if data, err := io.ReadAll(r); err != nil || string(data) != "x" {
		t.Errorf("read %q, %v", data, err)
	}
	for _, p := range []string{"aaaa-foo/bin/x", "nix/store/cccc-other", "nix/store/../store/aaaa-foo/../../../etc/passwd"} {
		if r, err := served.Open(p); err == nil {
			r.Close()
			t.Errorf("%s opened", p)
		}
	}
	if err := (storeDirFS{store: host, dir: "nix/store"}).Walk(context.Background(), "nix/store/aaaa-foo", func(string, fs.DirEntry, error) error { return nil }); err == nil {
		t.Error("a walk below the root is served")
	}
}
