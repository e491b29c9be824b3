package cliplugin

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/storetest"
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
	s := storetest.NewHostStore(t)
	out := mustRun(t, "graph", s.Result())

	// The references a scan finds, written out.
	got := decodeGraph(t, out)
	want := map[string][]string{
		s.App.String():  strs(s.App, s.Lib, s.Data),
		s.Lib.String():  strs(s.Libc),
		s.Libc.String(): strs(s.Libc),
		s.Data.String(): {},
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
	if wantOut := graphJSON(t, s.Graph(t)); out != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", out, wantOut)
	}
	if !strings.HasPrefix(out, "{\n  \""+s.App.Dir) || !strings.HasSuffix(out, "\n}\n") {
		t.Errorf("layout:\n%s", out)
	}

	// The flags reach the library: the ways of naming a root and the
	// sources that scan give the same graph (hoststore tests the rest).
	t.Chdir(s.Work)
	for _, args := range [][]string{
		{"graph", "./result"},
		{"graph", s.App.String() + "/bin/app"},
		{"graph", "--from", "scan", "./result"},
		{"graph", "--from=auto", "--store-dir", s.Dir, "./result"},
		{"graph", "./result", s.Lib.String()}, // lib is in app's closure
	} {
		if got := mustRun(t, args...); got != out {
			t.Errorf("%v:\n%s\nwant:\n%s", args, got, out)
		}
	}

	// Two roots: the union of their closures.
	both := decodeGraph(t, mustRun(t, "graph", s.Unrelated.String(), s.Lib.String()))
	if len(both) != 5 {
		t.Errorf("closure of unrelated and lib has %d paths, want 5: %v", len(both), both)
	}
}

func TestGraphFromFile(t *testing.T) {
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
	reg := s.Registration(t, infos)
	out := mustRun(t, "graph", "--from", reg, s.Result())
	want, err := store.NewGraph(infos[:3])
	if err != nil {
		t.Fatal(err)
	}
	if wantOut := graphJSON(t, want); out != wantOut {
		t.Errorf("--from registration:\n%s\nwant:\n%s", out, wantOut)
	}

	// The output is a graph file too, and reads back the same.
	again := s.WriteFile(t, "graph.json", out)
	if got := mustRun(t, "graph", "--from", again, s.Result()); got != out {
		t.Errorf("--from its own output:\n%s\nwant:\n%s", got, out)
	}

	// A root the file lacks, and a file that is not there, are named.
	other := s.Registration(t, infos[1:3])
	mustFail(t, []string{"root " + s.Result(), s.App.String(), "is not in " + other}, "graph", "--from", other, s.Result())
	mustFail(t, []string{"missing.json", "no such file"}, "graph", "--from", filepath.Join(s.Work, "missing.json"), s.Result())
}

func TestGraphErrors(t *testing.T) {
	s := storetest.NewHostStore(t)
	missing := filepath.Join(s.Work, "missing")
	mustFail(t, []string{"root " + missing, "no such file"}, "graph", missing)

	// A store path that is not in the store directory on disk.
	gone := storetest.FakePath(t, s.Dir, "gone")
	mustFail(t, []string{"root " + gone.String(), "is not in " + s.Dir}, "graph", gone.String())

	// Roots in two store directories, and a root outside --store-dir.
	other := storetest.NewHostStore(t)
	mustFail(t, []string{"different store directories", "--store-dir"}, "graph", s.Result(), other.Result())
	mustFail(t, []string{"root " + s.Result(), "leads to " + s.App.String(), "which is not in " + other.Dir}, "graph", "--store-dir", other.Dir, s.Result())
	mustFail(t, []string{"--store-dir=/", "cannot be /"}, "graph", "--store-dir", "/", s.Result())
	// A graph file in another store directory.
	reg := other.Registration(t, []store.Info{{Path: other.App, NarHash: storetest.NarHash(other.App)}})
	mustFail(t, []string{reg, "its paths are in " + other.Dir}, "graph", "--from", reg, s.Result())

	// The sources that a temporary store lacks.
	mustFail(t, []string{"--from db", "no database is known", s.Dir}, "graph", "--from", "db", s.Result())
	t.Setenv("PATH", t.TempDir())
	mustFail(t, []string{"--from nix", "not found"}, "graph", "--from", "nix", s.Result())

	err := mustFail(t, []string{"requires at least 1 argument"}, "graph")
	if !strings.Contains(err.Error(), "graph [OPTIONS] ROOT [ROOT...]") {
		t.Errorf("usage missing from %q", err)
	}
}
