package hoststore

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
)

// root is the Root that ResolveRoots makes of a store path argument.
func root(p store.Path) Root { return Root{Arg: p.String(), Path: p} }

// resultRoot is the Root of the work directory's result symlink.
func resultRoot(s *storetest.HostStore) Root {
	return Root{Arg: s.Result(), Path: s.App}
}

// load is LoadClosure of roots in the test store.
func load(t *testing.T, s *storetest.HostStore, from GraphSource, opt Options, roots ...Root) (*store.Graph, error) {
	t.Helper()
	return LoadClosure(t.Context(), roots, s.Dir, from, opt)
}

// database writes a store database holding infos, in the schema Nix and
// Guix share, and returns Options that make it the test store's database.
func database(t *testing.T, s *storetest.HostStore, infos []store.Info) Options {
	t.Helper()
	file := filepath.Join(filepath.Dir(s.Dir), "db.sqlite")
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
			info.Path.String(), string(info.NarHash), info.NarSize)
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
	return Options{Databases: map[string]string{s.Dir: file}}
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
