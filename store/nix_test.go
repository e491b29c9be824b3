//go:build nix

package store

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/internal/testdir"
)

// nixStore is a store built by a real Nix for the test, in a directory of
// its own (--store local?root=DIR): its paths are /nix/store/… to Nix and
// DIR/nix/store/… on disk.
type nixStore struct {
	uri    string // for --store
	onDisk string // the store directory on disk
	dbFile string
}

// TestNix checks the scanner, NarSize and every graph format that Nix 2.8
// writes against Nix itself, on a store built with nix-build from
// testdata/nixstore.nix. It needs nix-build, nix-store, nix (with the
// nix-command feature) and busybox, and fails without them: run it with
// go test -tags nix (see ENVIRONMENT.md for installing Nix offline).
func TestNix(t *testing.T) {
	s := buildNixStore(t)
	app, graphOut := s.build(t)

	allPaths := s.validPaths(t)
	if len(allPaths) < 10 {
		t.Fatalf("the test store has %d paths, want at least 10", len(allPaths))
	}
	closure := s.pathsOf(t, s.run(t, "nix-store", "--query", "--requisites", app.String()))
	t.Logf("test store: %d paths; closure of %s: %d paths", len(allPaths), app, len(closure))
	s.checkTestStore(t, app)

	t.Run("NarSize", func(t *testing.T) {
		db, err := LoadDB(s.dbFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range allPaths {
			info, _ := db.Info(p)
			got, err := NarSize(os.DirFS(s.onDisk), p)
			if err != nil || got != info.NarSize {
				t.Errorf("NarSize(%s) = %d, %v; Nix says %d", p, got, err, info.NarSize)
			}
		}
	})

	t.Run("Scan", func(t *testing.T) {
		// Every path of the store is a candidate: a superset of what Nix
		// looked for in each build (its inputs and outputs).
		candidates, err := NewCandidates(allPaths)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range allPaths {
			if strings.HasSuffix(p.Name, ".drv") {
				// A derivation's references are its inputs, which Nix
				// records without scanning (the text also names outputs).
				continue
			}
			want := s.pathsOf(t, s.run(t, "nix-store", "--query", "--references", p.String()))
			info, err := Scan(context.Background(), os.DirFS(s.onDisk), p, candidates)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.References, want) {
				t.Errorf("Scan(%s):\n got %v\nwant %v (nix-store --query --references)", p, info.References, want)
			}
		}
	})

	// The reference graph: nix path-info --json --recursive, with sizes,
	// NAR hashes and self-references. Every other format must give the same
	// graph, less what the format cannot hold.
	pathInfo := s.run(t, "nix", "path-info", "--json", "--recursive", app.String())
	want := s.load(t, "path-info.json", pathInfo)
	if !slices.Equal(want.Paths(), closure) {
		t.Fatalf("path-info JSON has paths %v, want the closure %v", want.Paths(), closure)
	}
	narHashes := s.checkNarHashes(t, want, pathInfo)
	unhashed := withoutNarHashes(t, want)
	unsized := withoutSizes(t, unhashed)
	formats := []struct {
		name string
		load func(t *testing.T) *Graph
		want *Graph
	}{
		{"dump-db", func(t *testing.T) *Graph {
			return s.load(t, "dump-db", s.run(t, append([]string{"nix-store", "--dump-db"}, pathStrings(closure)...)...))
		}, want},
		{"exportReferencesGraph", func(t *testing.T) *Graph {
			data, err := os.ReadFile(filepath.Join(s.onDisk, graphOut.Base()))
			if err != nil {
				t.Fatal(err)
			}
			return s.load(t, "closure", data)
		}, unsized},
		{"SQLite database", func(t *testing.T) *Graph {
			g, err := LoadDB(s.dbFile)
			if err != nil {
				t.Fatal(err)
			}
			if g.Len() != len(allPaths) {
				t.Errorf("LoadDB: %d paths, want %d", g.Len(), len(allPaths))
			}
			sub, err := g.Closure(app)
			if err != nil {
				t.Fatal(err)
			}
			return sub
		}, want},
		{"dot", func(t *testing.T) *Graph {
			return s.load(t, "graph.dot", s.run(t, "nix-store", "--query", "--graph", app.String()))
		}, withoutSelfReferences(t, unsized)},
		{"Discover", func(t *testing.T) *Graph {
			g, err := Discover(context.Background(), s.onDisk, []Path{app})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}, unhashed},
	}
	for _, format := range formats {
		t.Run(format.name, func(t *testing.T) {
			g := format.load(t)
			checkInvariants(t, g)
			if !sameGraph(g, format.want) {
				t.Errorf("graph differs:\n got %v\nwant %v", dumpGraph(g), dumpGraph(format.want))
			}
			// A format either has every NAR hash, as Nix and the files
			// say, or none.
			hashed := format.want == want
			for _, p := range g.Paths() {
				if info, _ := g.Info(p); hashed && info.NarHash != narHashes[p] || !hashed && info.NarHash != "" {
					t.Errorf("NAR hash of %s: %q, want %q", p, info.NarHash, narHashes[p])
				}
			}
			// Where the format has no sizes, measuring them gives Nix's.
			measured, err := MeasureSizes(context.Background(), os.DirFS(s.onDisk), g)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range measured.Paths() {
				got, _ := measured.Info(p)
				nix, _ := want.Info(p)
				if got.NarSize != nix.NarSize {
					t.Errorf("measured size of %s: %d, Nix says %d", p, got.NarSize, nix.NarSize)
				}
			}
		})
	}
}

// checkNarHashes checks the NAR hashes of g, loaded from nix path-info
// --json output pathInfo, against the narHash strings of that output and
// against NarHash of the files, and returns them.
func (s *nixStore) checkNarHashes(t *testing.T, g *Graph, pathInfo []byte) map[Path]digest.Digest {
	t.Helper()
	var entries []struct { // Nix 2.8 writes the array form
		Path    string `json:"path"`
		NarHash string `json:"narHash"`
	}
	if err := json.Unmarshal(pathInfo, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != g.Len() {
		t.Fatalf("nix path-info gave %d entries, the graph has %d paths", len(entries), g.Len())
	}
	hashes := make(map[Path]digest.Digest)
	for _, entry := range entries {
		p := mustParse(t, entry.Path)
		info, _ := g.Info(p)
		computed, _, err := NarHash(context.Background(), os.DirFS(s.onDisk), p)
		if err != nil {
			t.Fatal(err)
		}
		if info.NarHash != computed || sriOf(t, info.NarHash) != entry.NarHash {
			t.Errorf("NAR hash of %s read from path-info JSON: %q; nix path-info says %s, NarHash of the files %s", p, info.NarHash, entry.NarHash, computed)
		}
		hashes[p] = computed
	}
	return hashes
}

func buildNixStore(t *testing.T) *nixStore {
	for _, tool := range []string{"nix-build", "nix-store", "nix", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for this test (apt-get install --no-install-recommends nix-bin busybox-static; see ENVIRONMENT.md): %v", tool, err)
		}
	}
	root := testdir.ForStore(t)
	return &nixStore{
		uri:    "local?root=" + root,
		onDisk: filepath.Join(root, "nix", "store"),
		dbFile: filepath.Join(root, "nix", "var", "nix", "db", "db.sqlite"),
	}
}

// build adds busybox to the store and builds testdata/nixstore.nix,
// returning app and the output of the exportReferencesGraph derivation.
func (s *nixStore) build(t *testing.T) (app, graph Path) {
	busybox, _ := exec.LookPath("busybox")
	src := filepath.Join(t.TempDir(), "busybox")
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	bb := strings.TrimSpace(string(s.run(t, "nix-store", "--add", src)))
	outputs := s.pathsOf(t, s.run(t, "nix-build", "--no-out-link", "--argstr", "busybox", bb, "-A", "app", "-A", "graph", "testdata/nixstore.nix"))
	if len(outputs) != 2 {
		t.Fatalf("nix-build gave %v, want app and graph", outputs)
	}
	if outputs[0].Name != "app" {
		outputs[0], outputs[1] = outputs[1], outputs[0]
	}
	return outputs[0], outputs[1]
}

// checkTestStore checks that Nix recorded the references the test store is
// made for, so that the comparisons with the scanner test each of them.
func (s *nixStore) checkTestStore(t *testing.T, app Path) {
	refs := s.pathsOf(t, s.run(t, "nix-store", "--query", "--references", app.String()))
	var names []string
	for _, ref := range refs {
		names = append(names, ref.Name)
	}
	for _, name := range []string{"app", "lib", "in-link", "in-name", "in-split", "doc"} {
		if !slices.Contains(names, name) {
			t.Fatalf("Nix did not record app's reference to %s (references: %v): testdata/nixstore.nix no longer tests what it should", name, names)
		}
	}
	mentioned, err := os.ReadFile(filepath.Join(s.onDisk, app.Base(), "share", "never-built"))
	if err != nil || !strings.HasPrefix(string(mentioned), "/nix/store/") || slices.Contains(names, "never-built") {
		t.Fatalf("app should mention never-built's path without referencing it: %q, %v, references %v", mentioned, err, names)
	}
}

// validPaths lists every path of the test store.
func (s *nixStore) validPaths(t *testing.T) []Path {
	db, err := LoadDB(s.dbFile)
	if err != nil {
		t.Fatal(err)
	}
	return db.Paths()
}

// run runs a Nix command on the test store and returns its output.
func (s *nixStore) run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(args[0], append([]string{"--store", s.uri}, args[1:]...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// pathsOf parses output with one store path per line, sorted.
func (s *nixStore) pathsOf(t *testing.T, out []byte) []Path {
	t.Helper()
	paths, err := ReadPathList("output", bytes.NewReader(out))
	if err != nil && len(bytes.TrimSpace(out)) > 0 {
		t.Fatal(err)
	}
	return paths
}

func (s *nixStore) load(t *testing.T, name string, data []byte) *Graph {
	t.Helper()
	g, err := Load(name, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func withoutNarHashes(t *testing.T, g *Graph) *Graph {
	return mapInfos(t, g, func(info *Info) { info.NarHash = "" })
}

func withoutSizes(t *testing.T, g *Graph) *Graph {
	return mapInfos(t, g, func(info *Info) { info.NarSize = 0 })
}

func withoutSelfReferences(t *testing.T, g *Graph) *Graph {
	return mapInfos(t, g, func(info *Info) {
		info.References = slices.DeleteFunc(info.References, func(ref Path) bool { return ref == info.Path })
	})
}

func mapInfos(t *testing.T, g *Graph, change func(*Info)) *Graph {
	var infos []Info
	for _, p := range g.Paths() {
		info, _ := g.Info(p)
		change(&info)
		infos = append(infos, info)
	}
	changed, err := NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}
