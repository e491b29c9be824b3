package cliplugin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
)

// fakeStore is a small store in a temporary directory: store paths whose
// files mention each other's paths, as a build leaves them, and a work
// directory with nix-build's result symlink.
type fakeStore struct {
	dir  string // the store directory
	work string // holds result -> app
	// app references lib, data and itself; lib references libc; libc
	// itself; data nothing. unrelated references app, but nothing
	// references it.
	app, lib, libc, data, unrelated store.Path
}

// fakePath makes a valid store path in dir with a hash derived from name.
func fakePath(t *testing.T, dir, name string) store.Path {
	t.Helper()
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	sum := sha256.Sum256([]byte(name))
	hash := make([]byte, 32)
	for i := range hash {
		hash[i] = alphabet[sum[i]%32]
	}
	p, err := store.ParsePath(dir + "/" + string(hash) + "-" + name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newFakeStore(t *testing.T) *fakeStore {
	t.Helper()
	base := t.TempDir()
	s := &fakeStore{dir: filepath.Join(base, "store"), work: filepath.Join(base, "work")}
	s.app = fakePath(t, s.dir, "app-1.0")
	s.lib = fakePath(t, s.dir, "lib-2.1")
	s.libc = fakePath(t, s.dir, "libc-2.39")
	s.data = fakePath(t, s.dir, "data")
	s.unrelated = fakePath(t, s.dir, "unrelated")
	files := map[string]string{
		s.app.Base() + "/bin/app":        "#!" + s.app.String() + "/bin/sh\nexec " + s.lib.String() + "/lib/liblib.so\n",
		s.app.Base() + "/share/greeting": "see " + s.data.String(),
		s.lib.Base() + "/lib/liblib.so":  "\x7fELF? no: " + s.libc.String() + "/lib/libc.so",
		s.libc.Base() + "/lib/libc.so":   "rpath " + s.libc.String() + "/lib",
		s.data.Base():                    "just data, and the hash of a path that is not there: " + fakePath(t, s.dir, "gone").String(),
		s.unrelated.Base() + "/x":        s.app.String(),
	}
	for name, content := range files {
		file := filepath.Join(s.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(s.work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.app.String(), filepath.Join(s.work, "result")); err != nil {
		t.Fatal(err)
	}
	return s
}

// graph is app's closure as a scan finds it, with measured sizes.
func (s *fakeStore) graph(t testing.TB) *store.Graph {
	t.Helper()
	infos := []store.Info{
		{Path: s.app, References: []store.Path{s.app, s.lib, s.data}},
		{Path: s.lib, References: []store.Path{s.libc}},
		{Path: s.libc, References: []store.Path{s.libc}},
		{Path: s.data},
	}
	fsys := os.DirFS(s.dir)
	for i := range infos {
		size, err := store.NarSize(fsys, infos[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		infos[i].NarSize = size
	}
	g, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// narHash is a NAR hash of the right shape for registration records.
func narHash(p store.Path) string {
	sum := sha256.Sum256([]byte(p.String()))
	return hex.EncodeToString(sum[:])
}

// registration writes closureInfo-style registration records for infos
// into a file in the work directory and returns its path.
func (s *fakeStore) registration(t *testing.T, infos []store.Info) string {
	t.Helper()
	var b strings.Builder
	for _, info := range infos {
		fmt.Fprintf(&b, "%s\n%s\n%d\n\n%d\n", info.Path, narHash(info.Path), info.NarSize, len(info.References))
		for _, ref := range info.References {
			fmt.Fprintln(&b, ref)
		}
	}
	file := filepath.Join(s.work, "registration")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func (s *fakeStore) result() string { return filepath.Join(s.work, "result") }

// writeFile writes a file in the work directory and returns its path.
func (s *fakeStore) writeFile(t *testing.T, name, content string) string {
	t.Helper()
	file := filepath.Join(s.work, name)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
