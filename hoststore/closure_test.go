package hoststore

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
)

// noDatabase is Options for a store without a database.
var noDatabase = Options{Databases: map[string]string{}}

func TestLoadClosureScans(t *testing.T) {
	s := newFakeStore(t)
	want := graphJSON(t, s.graph(t))
	for _, from := range []GraphSource{FromScan, FromAuto} {
		g, err := s.load(t, from, noDatabase, s.result())
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		if got := graphJSON(t, g); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", from, got, want)
		}
	}

	// Two roots: the union of their closures.
	g, err := s.load(t, FromScan, noDatabase, root(s.unrelated), root(s.lib))
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Path{s.app, s.data, s.lib, s.libc, s.unrelated}; !slices.Equal(sorted(g.Paths()), sorted(want)) {
		t.Errorf("closure of unrelated and lib: %v, want %v", g.Paths(), want)
	}

	// A store path that is not in the store directory on disk.
	gone := fakePath(t, s.dir, "gone")
	for _, from := range []GraphSource{FromScan, FromAuto} {
		_, err := s.load(t, from, noDatabase, root(gone))
		wantError(t, err, "root "+gone.String()+" is not in "+s.dir)
	}
}

func sorted(paths []store.Path) []store.Path {
	paths = slices.Clone(paths)
	slices.SortFunc(paths, store.Path.Compare)
	return paths
}

func TestLoadClosureFromFile(t *testing.T) {
	s := newFakeStore(t)
	// The file's graph differs from what a scan finds, to show that it is
	// the one used: app does not reference data here, and sizes are made up.
	infos := []store.Info{
		{Path: s.app, References: []store.Path{s.lib, s.app}, NarSize: 1000},
		{Path: s.lib, References: []store.Path{s.libc}, NarSize: 2000},
		{Path: s.libc, References: []store.Path{s.libc}, NarSize: 3000},
		{Path: s.data, NarSize: 4000},
		{Path: s.unrelated, References: []store.Path{s.app}, NarSize: 5000},
	}
	want := graphJSON(t, newGraph(t, infos[:3]))
	reg := s.registration(t, infos)
	g, err := s.load(t, GraphSource(reg), Options{}, s.result())
	if err != nil {
		t.Fatal(err)
	}
	if got := graphJSON(t, g); got != want {
		t.Errorf("registration:\n%s\nwant:\n%s", got, want)
	}
	// path-info JSON, and a store database, are graph files too.
	db := s.database(t, infos).Databases[s.dir]
	for _, file := range []string{s.writeFile(t, "graph.json", graphJSON(t, newGraph(t, infos))), db} {
		g, err := s.load(t, GraphSource(file), Options{}, s.result())
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := graphJSON(t, g); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", file, got, want)
		}
	}

	other := s.registration(t, infos[1:3])
	_, err = s.load(t, GraphSource(other), Options{}, s.result())
	wantError(t, err, "root "+s.result().String()+" is not in "+other)
	missing := filepath.Join(s.work, "missing.json")
	_, err = s.load(t, GraphSource(missing), Options{}, s.result())
	wantError(t, err, missing, "no such file")
	_, err = s.load(t, GraphSource(s.work), Options{}, s.result())
	wantError(t, err, "--from "+s.work+": a directory, not a graph file")
	bad := s.writeFile(t, "bad.json", `{"`+s.app.String()+`": {"narSize": 1}}`)
	_, err = s.load(t, GraphSource(bad), Options{}, s.result())
	wantError(t, err, bad, "references")

	// A graph of another store directory.
	elsewhere := newFakeStore(t)
	reg = elsewhere.registration(t, []store.Info{{Path: elsewhere.app}})
	_, err = s.load(t, GraphSource(reg), Options{}, s.result())
	wantError(t, err, reg+": its paths are in "+elsewhere.dir+", but the roots are in "+s.dir)
}

func TestLoadClosureFromDatabase(t *testing.T) {
	s := newFakeStore(t)

	// Without a database for the store, db is an error and auto scans.
	_, err := s.load(t, FromDB, Options{}, s.result())
	wantError(t, err, "--from db: no database is known for store directory "+s.dir, "/nix/var/nix/db/db.sqlite", "/var/guix/db/db.sqlite")
	missing := Options{Databases: map[string]string{s.dir: filepath.Join(s.work, "missing.sqlite")}}
	_, err = s.load(t, FromDB, missing, s.result())
	wantError(t, err, "--from db: store database of "+s.dir, "no such file")
	if g, err := s.load(t, FromAuto, missing, s.result()); err != nil || graphJSON(t, g) != graphJSON(t, s.graph(t)) {
		t.Errorf("auto with a database that is not there: %v, want the scan", err)
	}

	infos := []store.Info{
		{Path: s.app, References: []store.Path{s.lib}, NarSize: 11},
		{Path: s.lib, References: []store.Path{s.libc}, NarSize: 22},
		{Path: s.libc, NarSize: 33},
	}
	opt := s.database(t, infos)
	want := graphJSON(t, newGraph(t, infos))
	for _, from := range []GraphSource{FromAuto, FromDB} {
		g, err := s.load(t, from, opt, s.result())
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		if got := graphJSON(t, g); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", from, got, want)
		}
	}

	// data is not registered: auto scans, db fails.
	scanned, err := s.load(t, FromScan, opt, root(s.data))
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.load(t, FromAuto, opt, root(s.data), s.result())
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := g.Info(s.data); !ok || d.NarSize != mustInfo(t, scanned, s.data).NarSize || len(g.Paths()) != 4 {
		t.Errorf("auto with a root the database lacks: %v, want the scan", g.Paths())
	}
	_, err = s.load(t, FromDB, opt, root(s.data))
	wantError(t, err, "root "+s.data.String()+" is not in "+opt.Databases[s.dir])

	// A database that cannot be read: auto warns and scans.
	var warn strings.Builder
	opt = Options{Databases: map[string]string{s.dir: s.writeFile(t, "garbage.sqlite", "not a database")}, Warn: &warn}
	if g, err := s.load(t, FromAuto, opt, s.result()); err != nil || graphJSON(t, g) != graphJSON(t, s.graph(t)) {
		t.Errorf("auto with an unreadable database: %v, want the scan", err)
	}
	if !strings.HasPrefix(warn.String(), "WARNING: cannot read the store database, scanning "+s.dir+" instead: ") {
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
	s := newFakeStore(t)
	// The array form of Nix ≤ 2.18 for app's closure.
	output := `[{"path":"` + s.app.String() + `","narSize":5,"references":["` + s.lib.String() + `"]},` +
		`{"path":"` + s.lib.String() + `","narSize":6,"references":[]}]`
	opt, argsFile := fakeNix(t, "cat <<'EOF'\n"+output+"\nEOF\n")
	g, err := s.load(t, FromNix, opt, s.result(), root(s.app))
	if err != nil {
		t.Fatal(err)
	}
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	// Each store path once.
	if want := "--extra-experimental-features nix-command path-info --json --recursive " + s.app.String() + "\n"; string(args) != want {
		t.Errorf("nix ran with %q, want %q", args, want)
	}
	want := newGraph(t, []store.Info{{Path: s.app, References: []store.Path{s.lib}, NarSize: 5}, {Path: s.lib, NarSize: 6}})
	if got := graphJSON(t, g); got != graphJSON(t, want) {
		t.Errorf("nix:\n%s\nwant:\n%s", got, graphJSON(t, want))
	}

	// nix path-info takes a derivation for its outputs.
	drv := root(fakePath(t, s.dir, "app-1.0.drv"))
	_, err = s.load(t, FromNix, opt, drv)
	wantError(t, err, "root "+drv.Arg+" is not in the output of nix path-info, which lists a derivation's outputs")

	// nix failing: its message is passed on.
	opt, _ = fakeNix(t, "echo \"error: path '$6' is not valid\" >&2\nexit 1\n")
	_, err = s.load(t, FromNix, opt, s.result())
	wantError(t, err, "nix path-info: exit status 1: error: path '"+s.app.String()+"' is not valid")

	// No nix at all.
	t.Setenv("PATH", t.TempDir())
	_, err = s.load(t, FromNix, Options{}, s.result())
	wantError(t, err, "--from nix", "not found", "install Nix, or use --from scan")
}
