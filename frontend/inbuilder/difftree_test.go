package inbuilder

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDiffTrees: what a RUN added or changed (content, mode, owner,
// symlink) is written out with its parents and their modes and owners;
// what it left alone is not; what it removed, or made another type, is
// listed, topmost only, and its parent written out.
func TestDiffTrees(t *testing.T) {
	dir := t.TempDir()
	before, after, out := filepath.Join(dir, "before"), filepath.Join(dir, "after"), filepath.Join(dir, "out")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, root := range []string{before, after} {
		for name, content := range map[string]string{"etc/keep": "k", "etc/conf": "old", "data/a": "a", "bin/tool": "#!"} {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The same times on both sides, as the snapshots below a RUN have.
	epoch := time.Unix(1, 0)
	for _, root := range []string{before, after} {
		must(filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chtimes(p, epoch, epoch)
		}))
	}
	// The RUN: a changed file, a new file in a new directory, a chown, a
	// chmod with setuid, a symlink.
	must(os.WriteFile(filepath.Join(after, "etc/conf"), []byte("new!"), 0o644))
	must(os.MkdirAll(filepath.Join(after, "var/lib/app"), 0o755))
	must(os.Chmod(filepath.Join(after, "var/lib/app"), 0o750))
	must(os.WriteFile(filepath.Join(after, "var/lib/app/state"), []byte("s"), 0o600))
	must(os.Lchown(filepath.Join(after, "data/a"), 1000, 1000))
	must(os.Chmod(filepath.Join(after, "bin/tool"), os.ModeSetuid|0o755))
	must(os.Symlink("/bin/tool", filepath.Join(after, "bin/alias")))
	// The runtime's mount points, left by an older builder: not changes.
	for _, d := range []string{"dev", "proc", "sys"} {
		must(os.Mkdir(filepath.Join(after, d), 0o755))
	}
	must(os.MkdirAll(out, 0o755))
	removed, err := diffTrees(before, after, out)
	must(err)
	if len(removed) != 0 {
		t.Errorf("removed %q, want none", removed)
	}

	var got []string
	must(filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == out {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		st := fi.Sys().(*syscall.Stat_t)
		got = append(got, rel+" "+fi.Mode().String()+" "+strconv.FormatUint(uint64(st.Uid), 10))
		return nil
	}))
	want := []string{
		"bin drwxr-xr-x 0", "bin/alias Lrwxrwxrwx 0", "bin/tool urwxr-xr-x 0",
		"data drwxr-xr-x 0", "data/a -rw-r--r-- 1000",
		"etc drwxr-xr-x 0", "etc/conf -rw-r--r-- 0",
		"var drwxr-xr-x 0", "var/lib drwxr-xr-x 0", "var/lib/app drwxr-x--- 0", "var/lib/app/state -rw------- 0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("out holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if data, _ := os.ReadFile(filepath.Join(out, "etc/conf")); string(data) != "new!" {
		t.Errorf("etc/conf holds %q", data)
	}

	// Removals: a file, a directory with its files, a file made a
	// directory with a file in it (removed, then written as the new
	// directory), and a file made a symlink.
	must(os.Remove(filepath.Join(after, "etc/keep")))
	must(os.RemoveAll(filepath.Join(after, "data")))
	must(os.Remove(filepath.Join(after, "bin/tool")))
	must(os.Mkdir(filepath.Join(after, "bin/tool"), 0o755))
	must(os.WriteFile(filepath.Join(after, "bin/tool/inside"), []byte("i"), 0o644))
	must(os.Remove(filepath.Join(after, "etc/conf")))
	must(os.Symlink("keep", filepath.Join(after, "etc/conf")))
	// A parent is written out even when the RUN put its time back.
	must(os.Chtimes(filepath.Join(after, "etc"), epoch, epoch))
	out = t.TempDir()
	removed, err = diffTrees(before, after, out)
	must(err)
	if want := []string{"/bin/tool", "/data", "/etc/conf", "/etc/keep"}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for name, typ := range map[string]os.FileMode{"etc": os.ModeDir, "bin/tool": os.ModeDir, "bin/tool/inside": 0, "etc/conf": os.ModeSymlink} {
		if fi, err := os.Lstat(filepath.Join(out, name)); err != nil || fi.Mode().Type() != typ {
			t.Errorf("out/%s: %v, want type %v", name, err, typ)
		}
	}
}

// TestDiffTreesUnfit: a fifo the RUN made is a problem naming its path in
// the image, not an I/O error.
func TestDiffTreesUnfit(t *testing.T) {
	dir := t.TempDir()
	before, after := filepath.Join(dir, "before"), filepath.Join(dir, "after")
	for _, d := range []string{before, filepath.Join(after, "srv")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(after, "srv/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := diffTrees(before, after, t.TempDir())
	var unfit *unfitError
	if !errors.As(err, &unfit) || err.Error() != "made /srv/fifo, a fifo: the layer holds regular files, directories and symlinks; remove it in the same RUN" {
		t.Errorf("a fifo: %v", err)
	}
}
