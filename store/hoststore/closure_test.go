package hoststore

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
)

// noDatabase is Options for a store without a database.
var noDatabase = Options{Databases: map[string]string{}}

func TestLoadClosureScans(t *testing.T) {
	s := storetest.NewHostStore(t)
	want := graphJSON(t, s.Graph(t))
	for _, from := range []GraphSource{FromScan, FromAuto} {
		g, err := load(t, s, from, noDatabase, resultRoot(s))
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		if got := graphJSON(t, g); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", from, got, want)
		}
	}

	// Two roots: the union of their closures.
	g, err := load(t, s, FromScan, noDatabase, root(s.Unrelated), root(s.Lib))
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Path{s.App, s.Data, s.Lib, s.Libc, s.Unrelated}; !slices.Equal(sorted(g.Paths()), sorted(want)) {
		t.Errorf("closure of unrelated and lib: %v, want %v", g.Paths(), want)
	}

	// A store path that is not in the store directory on disk.
	gone := storetest.FakePath(t, s.Dir, "gone")
	for _, from := range []GraphSource{FromScan, FromAuto} {
		_, err := load(t, s, from, noDatabase, root(gone))
		wantError(t, err, "root "+gone.String()+" is not in "+s.Dir)
	}
}

func sorted(paths []store.Path) []store.Path {
	paths = slices.Clone(paths)
	slices.SortFunc(paths, store.Path.Compare)
	return paths
}

func TestLoadClosureFromFile(t *testing.T) {
	s := storetest.NewHostStore(t)
	// The file's graph differs from what a scan finds, to show that it is
	// the one used: app does not reference data here, and sizes are made up.
	infos := []store.Info{
		{Path: s.App, References: []store.Path{s.Lib, s.App}, NarSize: 1000, NarHash: storetest.NarHash(s.App)},
		{Path: s.Lib, References: []store.Path{s.Libc}, NarSize: 2000, NarHash: storetest.NarHash(s.Lib)},
		{Path: s.Libc, References: []store.Path{s.Libc}, NarSize: 3000, NarHash: storetest.NarHash(s.Libc)},
		{Path: s.Data, NarSize: 4000, NarHash: storetest.NarHash(s.Data)},
		{Path: s.Unrelated, References: []store.Path{s.App}, NarSize: 5000, NarHash: storetest.NarHash(s.Unrelated)},
	}
	want := graphJSON(t, newGraph(t, infos[:3]))
	reg := s.Registration(t, infos)
	g, err := load(t, s, GraphSource(reg), Options{}, resultRoot(s))
	if err != nil {
		t.Fatal(err)
	}
	if got := graphJSON(t, g); got != want {
		t.Errorf("registration:\n%s\nwant:\n%s", got, want)
	}
	// path-info JSON, and a store database, are graph files too.
	db := database(t, s, infos).Databases[s.Dir]
	for _, file := range []string{s.WriteFile(t, "graph.json", graphJSON(t, newGraph(t, infos))), db} {
		g, err := load(t, s, GraphSource(file), Options{}, resultRoot(s))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := graphJSON(t, g); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", file, got, want)
		}
	}

	other := s.Registration(t, infos[1:3])
	_, err = load(t, s, GraphSource(other), Options{}, resultRoot(s))
	wantError(t, err, "root "+resultRoot(s).String()+" is not in "+other)
	missing := filepath.Join(s.Work, "missing.json")
	_, err = load(t, s, GraphSource(missing), Options{}, resultRoot(s))
	wantError(t, err, missing, "no such file")
	_, err = load(t, s, GraphSource(s.Work), Options{}, resultRoot(s))
	wantError(t, err, "--from "+s.Work+": a directory, not a graph file")
	bad := s.WriteFile(t, "bad.json", `{"`+s.App.String()+`": {"narSize": 1}}`)
	_, err = load(t, s, GraphSource(bad), Options{}, resultRoot(s))
	wantError(t, err, bad, "references")

	// A graph of another store directory.
	elsewhere := storetest.NewHostStore(t)
	reg = elsewhere.Registration(t, []store.Info{{Path: elsewhere.App, NarHash: storetest.NarHash(elsewhere.App)}})
	_, err = load(t, s, GraphSource(reg), Options{}, resultRoot(s))
	wantError(t, err, reg+": its paths are in "+elsewhere.Dir+", but the roots are in "+s.Dir)
}

func TestLoadClosureFromDatabase(t *testing.T) {
	s := storetest.NewHostStore(t)

	// Without a database for the store, db is an error and auto scans.
	_, err := load(t, s, FromDB, Options{}, resultRoot(s))
	wantError(t, err, "--from db: no database is known for store directory "+s.Dir, "/nix/var/nix/db/db.sqlite", "/var/guix/db/db.sqlite")
	missing := Options{Databases: map[string]string{s.Dir: filepath.Join(s.Work, "missing.sqlite")}}
	_, err = load(t, s, FromDB, missing, resultRoot(s))
	wantError(t, err, "--from db: store database of "+s.Dir, "no such file")
	if g, err := load(t, s, FromAuto, missing, resultRoot(s)); err != nil || graphJSON(t, g) != graphJSON(t, s.Graph(t)) {
		t.Errorf("auto with a database that is not there: %v, want the scan", err)
	}

	infos := []store.Info{
		{Path: s.App, References: []store.Path{s.Lib}, NarSize: 11, NarHash: storetest.NarHash(s.App)},
		{Path: s.Lib, References: []store.Path{s.Libc}, NarSize: 22, NarHash: storetest.NarHash(s.Lib)},
		{Path: s.Libc, NarSize: 33}, // a database written by hand may leave the hash empty
	}
	opt := database(t, s, infos)
	want := graphJSON(t, newGraph(t, infos))
	for _, from := range []GraphSource{FromAuto, FromDB} {
		g, err := load(t, s, from, opt, resultRoot(s))
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		if got := graphJSON(t, g); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", from, got, want)
		}
	}

	// data is not registered: auto scans, db fails.
	scanned, err := load(t, s, FromScan, opt, root(s.Data))
	if err != nil {
		t.Fatal(err)
	}
	g, err := load(t, s, FromAuto, opt, root(s.Data), resultRoot(s))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := g.Info(s.Data); !ok || d.NarSize != mustInfo(t, scanned, s.Data).NarSize || len(g.Paths()) != 4 {
		t.Errorf("auto with a root the database lacks: %v, want the scan", g.Paths())
	}
	_, err = load(t, s, FromDB, opt, root(s.Data))
	wantError(t, err, "root "+s.Data.String()+" is not in "+opt.Databases[s.Dir])

	// A database that cannot be read: auto warns and scans.
	var warn strings.Builder
	opt = Options{Databases: map[string]string{s.Dir: s.WriteFile(t, "garbage.sqlite", "not a database")}, Warn: &warn}
	if g, err := load(t, s, FromAuto, opt, resultRoot(s)); err != nil || graphJSON(t, g) != graphJSON(t, s.Graph(t)) {
		t.Errorf("auto with an unreadable database: %v, want the scan", err)
	}
	if !strings.HasPrefix(warn.String(), "WARNING: cannot read the store database, scanning "+s.Dir+" instead: ") {
		t.Errorf("warning %q", warn.String())
	}
}

func mustInfo(t *testing.T, g *store.Graph, p store.Path) store.Info {
	t.Helper()
	info, ok := g.Info(p)
	if !ok {
		t.Fatalf("%s is not in the graph", p)
	}
	return info
}

// fakeNix writes a nix that records its arguments in the file it returns
// and runs script, and Options that run it.
func fakeNix(t *testing.T, script string) (Options, string) {
	t.Helper()
	bin := t.TempDir()
	args := filepath.Join(bin, "args")
	nix := filepath.Join(bin, "nix")
	if err := os.WriteFile(nix, []byte("#!/bin/sh\necho \"$@\" > "+args+"\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return Options{Nix: nix}, args
}

func TestLoadClosureFromNix(t *testing.T) {
	s := storetest.NewHostStore(t)
	// The array form of Nix ≤ 2.18 for app's closure.
	output := `[{"path":"` + s.App.String() + `","narSize":5,"references":["` + s.Lib.String() + `"]},` +
		`{"path":"` + s.Lib.String() + `","narSize":6,"references":[]}]`
	opt, argsFile := fakeNix(t, "cat <<'EOF'\n"+output+"\nEOF\n")
	g, err := load(t, s, FromNix, opt, resultRoot(s), root(s.App))
	if err != nil {
		t.Fatal(err)
	}
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	// Each store path once.
	if want := "--extra-experimental-features nix-command path-info --json --recursive " + s.App.String() + "\n"; string(args) != want {
		t.Errorf("nix ran with %q, want %q", args, want)
	}
	want := newGraph(t, []store.Info{{Path: s.App, References: []store.Path{s.Lib}, NarSize: 5}, {Path: s.Lib, NarSize: 6}})
	if got := graphJSON(t, g); got != graphJSON(t, want) {
		t.Errorf("nix:\n%s\nwant:\n%s", got, graphJSON(t, want))
	}

	// nix path-info takes a derivation for its outputs.
	drv := root(storetest.FakePath(t, s.Dir, "app-1.0.drv"))
	_, err = load(t, s, FromNix, opt, drv)
	wantError(t, err, "root "+drv.Arg+" is not in the output of nix path-info, which lists a derivation's outputs")

	// nix failing: its message is passed on.
	opt, _ = fakeNix(t, "echo \"error: path '$6' is not valid\" >&2\nexit 1\n")
	_, err = load(t, s, FromNix, opt, resultRoot(s))
	wantError(t, err, "nix path-info: exit status 1: error: path '"+s.App.String()+"' is not valid")

	// No nix at all.
	t.Setenv("PATH", t.TempDir())
	_, err = load(t, s, FromNix, Options{}, resultRoot(s))
	wantError(t, err, "--from nix", "not found", "install Nix, or use --from scan")
}
