package hoststore

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/storepack/storepack/store"
)

// fakeStore is a small store in a temporary directory: store paths whose
// files mention each other's paths, as a build leaves them, and a work
// directory with nix-build's result symlink.
type fakeStore struct {
	dir  string // the store directory
	work string // holds result -> app, and result-chain -> result
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
	if err := os.Symlink("../bin/app", filepath.Join(s.dir, s.app.Base(), "share", "app")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.app.String(), filepath.Join(s.work, "result")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("result", filepath.Join(s.work, "result-chain")); err != nil {
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

// root is the Root that ResolveRoots makes of a store path argument.
func root(p store.Path) Root { return Root{Arg: p.String(), Path: p} }

// result is the Root of the work directory's result symlink.
func (s *fakeStore) result() Root {
	return Root{Arg: filepath.Join(s.work, "result"), Path: s.app}
}

// load is LoadClosure of roots in the fake store.
func (s *fakeStore) load(t *testing.T, from GraphSource, opt Options, roots ...Root) (*store.Graph, error) {
	t.Helper()
	return LoadClosure(t.Context(), roots, s.dir, from, opt)
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
	return s.writeFile(t, "registration", b.String())
}

// database writes a store database holding infos, in the schema Nix and
// Guix share, and returns Options that make it the fake store's database.
func (s *fakeStore) database(t *testing.T, infos []store.Info) Options {
	t.Helper()
	file := filepath.Join(filepath.Dir(s.dir), "db.sqlite")
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		`CREATE TABLE ValidPaths (id integer primary key autoincrement not null, path text unique not null,
			hash text not null, registrationTime integer not null, deriver text, narSize integer)`,
		`CREATE TABLE Refs (referrer integer not null, reference integer not null, primary key (referrer, reference))`,
	}
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[store.Path]int64{}
	for _, info := range infos {
		res, err := db.Exec(`INSERT INTO ValidPaths (path, hash, registrationTime, narSize) VALUES (?, ?, 1, ?)`,
			info.Path.String(), "sha256:"+narHash(info.Path), info.NarSize)
		if err != nil {
			t.Fatal(err)
		}
		if ids[info.Path], err = res.LastInsertId(); err != nil {
			t.Fatal(err)
		}
	}
	for _, info := range infos {
		for _, ref := range info.References {
			if _, err := db.Exec(`INSERT INTO Refs VALUES (?, ?)`, ids[info.Path], ids[ref]); err != nil {
				t.Fatal(err)
			}
		}
	}
	return Options{Databases: map[string]string{s.dir: file}}
}

// writeFile writes a file in the work directory and returns its path.
func (s *fakeStore) writeFile(t *testing.T, name, content string) string {
	t.Helper()
	file := filepath.Join(s.work, name)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// graphJSON writes g as path-info JSON, to compare graphs by their bytes.
func graphJSON(t *testing.T, g *store.Graph) string {
	t.Helper()
	var b bytes.Buffer
	if err := store.WritePathInfoJSON(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// newGraph is store.NewGraph that must succeed.
func newGraph(t *testing.T, infos []store.Info) *store.Graph {
	t.Helper()
	g, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// wantError fails t unless err mentions every string of want.
func wantError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("no error, want one mentioning %q", want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}
