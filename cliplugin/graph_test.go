package cliplugin

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
)

// runCommand runs `docker storepack ARGS...` with the real DockerCli setup
// of the other tests and no daemon (none of these commands needs one).
func runCommand(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cli, out, errOut := newTestCLI(t, "unix:///nonexistent/docker.sock", &fakeAPIClient{})
	err = execute(t, NewRootCommand(cli), args...)
	return out.String(), errOut.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCommand(t, args...)
	if err != nil {
		t.Fatalf("%s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

func mustFail(t *testing.T, want []string, args ...string) error {
	t.Helper()
	stdout, _, err := runCommand(t, args...)
	if err == nil {
		t.Fatalf("%s: no error; stdout:\n%s", strings.Join(args, " "), stdout)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not mention %q", strings.Join(args, " "), err, w)
		}
	}
	if stdout != "" {
		t.Errorf("%s: failed, but wrote to stdout:\n%s", strings.Join(args, " "), stdout)
	}
	return err
}

// pathInfo is an entry of the JSON that graph prints.
type pathInfo struct {
	NarSize    uint64   `json:"narSize"`
	References []string `json:"references"`
}

func decodeGraph(t *testing.T, out string) map[string]pathInfo {
	t.Helper()
	var m map[string]pathInfo
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("output is not path-info JSON: %v\n%s", err, out)
	}
	return m
}

func strs(paths ...store.Path) []string {
	s := make([]string, len(paths))
	for i, p := range paths {
		s[i] = p.String()
	}
	slices.Sort(s)
	return s
}

func graphJSON(t *testing.T, g *store.Graph) string {
	t.Helper()
	var b bytes.Buffer
	if err := store.WritePathInfoJSON(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGraphScansTheStore(t *testing.T) {
	s := newFakeStore(t)
	out := mustRun(t, "graph", s.result())

	// The references a scan finds, written out.
	got := decodeGraph(t, out)
	want := map[string][]string{
		s.app.String():  strs(s.app, s.lib, s.data),
		s.lib.String():  strs(s.libc),
		s.libc.String(): strs(s.libc),
		s.data.String(): {},
	}
	if len(got) != len(want) {
		t.Errorf("paths: got %d, want %d (unrelated must not be in the closure):\n%s", len(got), len(want), out)
	}
	for p, refs := range want {
		info, ok := got[p]
		if !ok {
			t.Errorf("%s is missing", p)
			continue
		}
		if !slices.Equal(info.References, refs) {
			t.Errorf("%s references %v, want %v", p, info.References, refs)
		}
		if info.NarSize == 0 {
			t.Errorf("%s: no size", p)
		}
	}
	// The exact bytes: sorted keys and references, two-space indent,
	// measured sizes, a trailing newline.
	if wantOut := graphJSON(t, s.graph(t)); out != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", out, wantOut)
	}
	if !strings.HasPrefix(out, "{\n  \""+s.app.Dir) || !strings.HasSuffix(out, "\n}\n") {
		t.Errorf("layout:\n%s", out)
	}

	// Every way of naming the root gives the same graph, and so does
	// every source that scans.
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(cwd) })
	if err := os.Chdir(s.work); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"graph", "./result"},
		{"graph", "result-chain"},
		{"graph", s.app.String()},
		{"graph", s.app.String() + "/bin/app"},
		{"graph", "./result/bin/app"},
		{"graph", s.app.String() + "/share/app"}, // a symlink inside a store path is that store path
		{"graph", "--from", "scan", "./result"},
		{"graph", "--from=auto", "--store-dir", s.dir, "./result"},
		{"graph", "./result", s.lib.String()}, // lib is in app's closure
	} {
		if got := mustRun(t, args...); got != out {
			t.Errorf("%v:\n%s\nwant:\n%s", args, got, out)
		}
	}

	// Two roots: the union of their closures.
	both := decodeGraph(t, mustRun(t, "graph", s.unrelated.String(), s.lib.String()))
	if len(both) != 5 {
		t.Errorf("closure of unrelated and lib has %d paths, want 5: %v", len(both), both)
	}
}

func TestGraphFromFile(t *testing.T) {
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
	reg := s.registration(t, infos)
	out := mustRun(t, "graph", "--from", reg, s.result())
	want, err := store.NewGraph(infos[:3])
	if err != nil {
		t.Fatal(err)
	}
	if wantOut := graphJSON(t, want); out != wantOut {
		t.Errorf("--from registration:\n%s\nwant:\n%s", out, wantOut)
	}

	// The output is a graph file too, and reads back the same.
	again := s.writeFile(t, "graph.json", out)
	if got := mustRun(t, "graph", "--from", again, s.result()); got != out {
		t.Errorf("--from its own output:\n%s\nwant:\n%s", got, out)
	}

	// A root the file lacks, and a file that is not there, are named.
	other := s.registration(t, infos[1:3])
	mustFail(t, []string{"root " + s.result(), s.app.String(), "is not in " + other}, "graph", "--from", other, s.result())
	mustFail(t, []string{"missing.json", "no such file"}, "graph", "--from", filepath.Join(s.work, "missing.json"), s.result())
	bad := s.writeFile(t, "bad.json", `{"`+s.app.String()+`": {"narSize": 1}}`)
	mustFail(t, []string{bad, "references"}, "graph", "--from", bad, s.result())
}

func TestGraphFromDatabase(t *testing.T) {
	s := newFakeStore(t)

	// Without a database for the store, db is an error and auto scans.
	mustFail(t, []string{"--from db", "no database is known", s.dir}, "graph", "--from", "db", s.result())

	infos := []store.Info{
		{Path: s.app, References: []store.Path{s.lib}, NarSize: 11},
		{Path: s.lib, References: []store.Path{s.libc}, NarSize: 22},
		{Path: s.libc, NarSize: 33},
	}
	s.database(t, infos)
	want, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	wantOut := graphJSON(t, want)
	for _, from := range []string{"auto", "db"} {
		if got := mustRun(t, "graph", "--from", from, s.result()); got != wantOut {
			t.Errorf("--from %s:\n%s\nwant:\n%s", from, got, wantOut)
		}
	}
	// A database file as a graph file.
	if got := mustRun(t, "graph", "--from", storeDatabases[s.dir], s.result()); got != wantOut {
		t.Errorf("--from DB file:\n%s\nwant:\n%s", got, wantOut)
	}
	// data is not registered: auto scans, db fails.
	scanned := mustRun(t, "graph", "--from", "scan", s.data.String())
	if got := mustRun(t, "graph", s.data.String()); got != scanned {
		t.Errorf("auto with a root the database lacks:\n%s\nwant the scan:\n%s", got, scanned)
	}
	mustFail(t, []string{"root " + s.data.String(), "is not in " + storeDatabases[s.dir]}, "graph", "--from", "db", s.data.String())
}

func TestGraphFromNix(t *testing.T) {
	s := newFakeStore(t)
	// A fake nix that records its arguments and prints the array form of
	// Nix ≤ 2.18 for app's closure.
	bin := t.TempDir()
	argsFile := filepath.Join(bin, "args")
	output := `[{"path":"` + s.app.String() + `","narSize":5,"references":["` + s.lib.String() + `"]},` +
		`{"path":"` + s.lib.String() + `","narSize":6,"references":[]}]`
	script := "#!/bin/sh\necho \"$@\" > " + argsFile + "\ncat <<'EOF'\n" + output + "\nEOF\n"
	if err := os.WriteFile(filepath.Join(bin, "nix"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	out := mustRun(t, "graph", "--from", "nix", s.result(), s.app.String())
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := "--extra-experimental-features nix-command path-info --json --recursive " + s.app.String() + "\n"; string(args) != want {
		t.Errorf("nix ran with %q, want %q", args, want)
	}
	got := decodeGraph(t, out)
	if len(got) != 2 || got[s.app.String()].NarSize != 5 || !slices.Equal(got[s.app.String()].References, strs(s.lib)) {
		t.Errorf("--from nix:\n%s", out)
	}

	// nix failing: its message is passed on.
	failing := "#!/bin/sh\necho \"error: path '$6' is not valid\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "nix"), []byte(failing), 0o755); err != nil {
		t.Fatal(err)
	}
	mustFail(t, []string{"nix path-info", "is not valid"}, "graph", "--from", "nix", s.result())

	// No nix at all.
	t.Setenv("PATH", t.TempDir())
	mustFail(t, []string{"--from nix", "not found"}, "graph", "--from", "nix", s.result())
}

func TestGraphErrors(t *testing.T) {
	s := newFakeStore(t)
	missing := filepath.Join(s.work, "missing")
	mustFail(t, []string{"root " + missing, "no such file"}, "graph", missing)

	notALink := s.writeFile(t, "file", "hello")
	mustFail(t, []string{"root " + notALink, "not a store path"}, "graph", notALink)

	outside := filepath.Join(s.work, "outside")
	if err := os.Symlink(notALink, outside); err != nil {
		t.Fatal(err)
	}
	mustFail(t, []string{"root " + outside, "leads to " + notALink}, "graph", outside)

	loop := filepath.Join(s.work, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	mustFail(t, []string{"root " + loop, "symlinks"}, "graph", loop)

	// A store path that is not in the store directory on disk.
	gone := fakePath(t, s.dir, "gone")
	mustFail(t, []string{"root " + gone.String(), "is not in " + s.dir}, "graph", gone.String())
	mustFail(t, []string{"root " + gone.String(), "is not in " + s.dir}, "graph", "--from", "scan", gone.String())

	// Roots in two store directories, and a root outside --store-dir.
	other := newFakeStore(t)
	mustFail(t, []string{"different store directories", "--store-dir"}, "graph", s.result(), other.result())
	mustFail(t, []string{"root " + s.result(), "leads to " + s.app.String(), "which is not in " + other.dir}, "graph", "--store-dir", other.dir, s.result())
	// A graph file in another store directory.
	reg := other.registration(t, []store.Info{{Path: other.app}})
	mustFail(t, []string{reg, "its paths are in " + other.dir}, "graph", "--from", reg, s.result())

	err := mustFail(t, []string{"requires at least 1 argument"}, "graph")
	if !strings.Contains(err.Error(), "graph [OPTIONS] ROOT [ROOT...]") {
		t.Errorf("usage missing from %q", err)
	}
	mustFail(t, []string{"--store-dir=/", "cannot be /"}, "graph", "--store-dir", "/", s.result())
}
