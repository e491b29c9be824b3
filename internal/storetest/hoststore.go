package storetest

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/store"
)

// HostStore is a small store in a temporary directory, read by the paths'
// own names (a store whose directory is not /nix/store): store paths whose
// files mention each other's paths, as a build leaves them, and a work
// directory with nix-build's result symlink.
type HostStore struct {
	Dir  string // the store directory
	Work string // holds result -> App, and result-chain -> result
	// App references Lib, Data and itself; Lib references Libc; Libc
	// itself; Data nothing. Unrelated references App, but nothing
	// references it.
	App, Lib, Libc, Data, Unrelated store.Path
}

// FakePath makes a valid store path in dir with a hash derived from name.
func FakePath(t testing.TB, dir, name string) store.Path {
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

// NewHostStore lays out a HostStore in a temporary directory of t.
func NewHostStore(t testing.TB) *HostStore {
	t.Helper()
	base := t.TempDir()
	s := &HostStore{Dir: filepath.Join(base, "store"), Work: filepath.Join(base, "work")}
	s.App = FakePath(t, s.Dir, "app-1.0")
	s.Lib = FakePath(t, s.Dir, "lib-2.1")
	s.Libc = FakePath(t, s.Dir, "libc-2.39")
	s.Data = FakePath(t, s.Dir, "data")
	s.Unrelated = FakePath(t, s.Dir, "unrelated")
	files := map[string]string{
		s.App.Base() + "/bin/app":        "#!" + s.App.String() + "/bin/sh\nexec " + s.Lib.String() + "/lib/liblib.so\n",
		s.App.Base() + "/share/greeting": "see " + s.Data.String(),
		s.Lib.Base() + "/lib/liblib.so":  "\x7fELF? no: " + s.Libc.String() + "/lib/libc.so",
		s.Libc.Base() + "/lib/libc.so":   "rpath " + s.Libc.String() + "/lib",
		s.Data.Base():                    "just data, and the hash of a path that is not there: " + FakePath(t, s.Dir, "gone").String(),
		s.Unrelated.Base() + "/x":        s.App.String(),
	}
	for name, content := range files {
		file := filepath.Join(s.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../bin/app", filepath.Join(s.Dir, s.App.Base(), "share", "app")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.Work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.App.String(), s.Result()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("result", filepath.Join(s.Work, "result-chain")); err != nil {
		t.Fatal(err)
	}
	return s
}

// Result is the work directory's result symlink, to App.
func (s *HostStore) Result() string { return filepath.Join(s.Work, "result") }

// Graph is App's closure as a scan finds it, with measured sizes.
func (s *HostStore) Graph(t testing.TB) *store.Graph {
	t.Helper()
	infos := []store.Info{
		{Path: s.App, References: []store.Path{s.App, s.Lib, s.Data}},
		{Path: s.Lib, References: []store.Path{s.Libc}},
		{Path: s.Libc, References: []store.Path{s.Libc}},
		{Path: s.Data},
	}
	fsys := os.DirFS(s.Dir)
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

// NarHash makes up a NAR hash for p, of the right shape for a graph.
func NarHash(p store.Path) digest.Digest {
	return digest.FromString(p.String())
}

// Registration writes closureInfo-style registration records for infos
// into a file in the work directory and returns its path. Every info needs
// a NAR hash: the records hold one.
func (s *HostStore) Registration(t testing.TB, infos []store.Info) string {
	t.Helper()
	var b strings.Builder
	for _, info := range infos {
		nixHash, err := store.NixHash(info.NarHash)
		if err != nil {
			t.Fatalf("registration record of %s: %v", info.Path, err)
		}
		fmt.Fprintf(&b, "%s\n%s\n%d\n\n%d\n", info.Path, nixHash, info.NarSize, len(info.References))
		for _, ref := range info.References {
			fmt.Fprintln(&b, ref)
		}
	}
	return s.WriteFile(t, "registration", b.String())
}

// WriteFile writes a file in the work directory and returns its path.
func (s *HostStore) WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	file := filepath.Join(s.Work, name)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
