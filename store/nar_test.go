package store

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// testPath makes a valid store path in /nix/store from a name; its hash
// part is derived from the name.
func testPath(name string) Path {
	sum := sha256.Sum256([]byte(name))
	hash := make([]byte, hashLen)
	for i := range hash {
		hash[i] = hashAlphabet[sum[i]%32]
	}
	return Path{Dir: "/nix/store", Hash: string(hash), Name: name}
}

// storeFiles writes a tree under dir: each key is a slash-separated path;
// a value "->target" makes a symlink, "dir" an empty directory, a leading
// "x:" an executable file, anything else a file with that content.
func storeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, value := range files {
		file := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(value, "->"):
			err = os.Symlink(value[2:], file)
		case value == "dir":
			err = os.MkdirAll(file, 0o755)
		case strings.HasPrefix(value, "x:"):
			err = os.WriteFile(file, []byte(value[2:]), 0o755)
		default:
			err = os.WriteFile(file, []byte(value), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// writeNAR serialises the file system object at file as a NAR, written
// independently of nar.go from the format's description, so that NarSize
// can be checked against the length of a real serialisation.
func writeNAR(t testing.TB, w io.Writer, file string) {
	str := func(s string) {
		var length [8]byte
		binary.LittleEndian.PutUint64(length[:], uint64(len(s)))
		w.Write(length[:])
		io.WriteString(w, s)
		w.Write(make([]byte, (8-len(s)%8)%8))
	}
	var node func(file string)
	node = func(file string) {
		info, err := os.Lstat(file)
		if err != nil {
			t.Fatal(err)
		}
		str("(")
		str("type")
		switch {
		case info.Mode().IsRegular():
			str("regular")
			if info.Mode()&0o100 != 0 {
				str("executable")
				str("")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			str("contents")
			str(string(data))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(file)
			if err != nil {
				t.Fatal(err)
			}
			str("symlink")
			str("target")
			str(target)
		case info.IsDir():
			str("directory")
			entries, err := os.ReadDir(file)
			if err != nil {
				t.Fatal(err)
			}
			names := make([]string, len(entries))
			for i, e := range entries {
				names[i] = e.Name()
			}
			slices.Sort(names)
			for _, name := range names {
				str("entry")
				str("(")
				str("name")
				str(name)
				str("node")
				node(filepath.Join(file, name))
				str(")")
			}
		default:
			t.Fatalf("%s: unsupported type", file)
		}
		str(")")
	}
	str("nix-archive-1")
	node(file)
}

type countingWriter struct{ n uint64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	return len(p), nil
}

func TestNarSize(t *testing.T) {
	storeDir := t.TempDir()
	var sizes strings.Builder // contents of every length around the padding
	tree := map[string]string{
		"bin/hello": "x:#!/bin/sh\necho hello\n", "bin/sh": "->hello", "bin/abs": "->/nix/store/" + testPath("dep").Base() + "/bin/x",
		"share/empty": "dir", "share/doc/README": "read me", "lib/empty-file": "", "lib/a/b/c/d/deep": "deep",
		"lib/name with spaces and ünïcödé": "ok", "lib/executable-empty": "x:",
	}
	for n := range 17 {
		sizes.WriteString("z")
		tree["sizes/"+strings.Repeat("n", n+1)] = sizes.String()
	}
	paths := []struct {
		path  Path
		files map[string]string
	}{
		{testPath("tree"), tree},
		{testPath("empty-dir"), map[string]string{"": "dir"}},
	}
	for _, tc := range paths {
		storeFiles(t, filepath.Join(storeDir, tc.path.Base()), tc.files)
	}
	// Store paths that are a single file or a symlink.
	storeFiles(t, storeDir, map[string]string{
		testPath("file.drv").Base():   "Derive([])",
		testPath("script").Base():     "x:#!/bin/sh",
		testPath("link").Base():       "->" + testPath("tree").Base(),
		testPath("empty-file").Base(): "",
	})
	fsys := os.DirFS(storeDir)
	for _, p := range []Path{testPath("tree"), testPath("empty-dir"), testPath("file.drv"), testPath("script"), testPath("link"), testPath("empty-file")} {
		var want countingWriter
		writeNAR(t, &want, filepath.Join(storeDir, p.Base()))
		got, err := NarSize(fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		if got != want.n {
			t.Errorf("NarSize(%s) = %d, want %d", p.Name, got, want.n)
		}
	}
}

func TestNarSizeErrors(t *testing.T) {
	storeDir := t.TempDir()
	withFifo := testPath("with-fifo")
	storeFiles(t, filepath.Join(storeDir, withFifo.Base()), map[string]string{"ok": "ok"})
	if err := syscall.Mkfifo(filepath.Join(storeDir, withFifo.Base(), "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	withSetuid, withSetgidDir := testPath("with-setuid"), testPath("with-setgid-dir")
	storeFiles(t, filepath.Join(storeDir, withSetuid.Base()), map[string]string{"bin/su": "x:#!/bin/sh"})
	storeFiles(t, filepath.Join(storeDir, withSetgidDir.Base()), map[string]string{"share/ok": "ok"})
	for name, mode := range map[string]os.FileMode{
		filepath.Join(withSetuid.Base(), "bin/su"):   0o555 | os.ModeSetuid,
		filepath.Join(withSetgidDir.Base(), "share"): 0o555 | os.ModeDir | os.ModeSetgid,
	} {
		if err := os.Chmod(filepath.Join(storeDir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	fsys := os.DirFS(storeDir)
	tests := []struct {
		path    Path
		wantErr string
	}{
		{withSetuid, "/nix/store/" + withSetuid.Base() + "/bin/su: mode ur-xr-xr-x has the setuid or setgid bit"},
		{withSetgidDir, "/nix/store/" + withSetgidDir.Base() + "/share: mode dgr-xr-xr-x has the setuid or setgid bit"},
		{withFifo, "/nix/store/" + withFifo.Base() + "/fifo: p--------- is neither a regular file, a directory nor a symlink: a NAR cannot hold it"},
		{testPath("missing"), "/nix/store/" + testPath("missing").Base() + ": lstat: no such file or directory"},
		{Path{Dir: "/nix/store", Hash: "x", Name: "y"}, "invalid store path"},
	}
	for _, tc := range tests {
		if _, err := NarSize(fsys, tc.path); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("NarSize(%s) error = %v, want %q", tc.path.Name, err, tc.wantErr)
		}
	}
}
