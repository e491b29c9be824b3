//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/testdir"
	"github.com/storepack/storepack/store"
)

// alterOneByte changes the first byte of the first non-empty regular file
// of the store path at dir, keeping its size and mode: only its NAR hash
// tells the change.
func alterOneByte(t *testing.T, dir string) string {
	t.Helper()
	var file string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if info, ierr := os.Lstat(p); err == nil && ierr == nil && file == "" && info.Mode().IsRegular() && info.Size() > 0 {
			file = p
		}
		return nil
	})
	if file == "" {
		t.Fatalf("%s holds no file to alter", dir)
	}
	info, err := os.Lstat(file)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 0x20
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestChangedStorePath: a store path that changed after its graph was
// recorded (one byte of one file, in a copy of the store under another
// root with the same GRAPH) is refused by a plugin build, naming it, with
// nothing tagged, no temporary file and no entry in the host's cache of
// layer digests; with the cache holding the unchanged layer's digest, the
// path is refused as the layer is written for the image (the changed path
// last in its layer, for Guix). For Nix (the GRAPH Nix wrote) and Guix
// (one written from the store's NAR hashes).
func TestChangedStorePath(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	g := guixClosure(t)
	guixGraph := guixGraphFile(t, g)
	nixRoot := testdir.ForStore(t)
	if err := os.MkdirAll(filepath.Join(nixRoot, "nix", "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.paths {
		must(t, nil, "cp", "-a", p.String(), filepath.Join(nixRoot, "nix", "store")+"/")
	}
	for _, tc := range []struct {
		name, context, manifest string
		pristine, altered       string // store roots; "" is /
		changed                 string // the store path altered
	}{
		{"nix", c.dir, manifest("./result", "path-info.json", "LAYERS --max=2"), "", nixRoot, c.root.String()},
		{"guix", g.root, "# syntax=storepack\nCLOSURE ./result\nSTORE /gnu/store\nGRAPH " + guixGraph + "\nLINK /bin -> bin\nLAYERS --max=2\n", g.root, g.root, g.app},
	} {
		t.Run(tc.name, func(t *testing.T) {
			df := writeFile(t, t.TempDir(), "app.storepack", tc.manifest)
			cacheHome, tmp := t.TempDir(), t.TempDir()
			env := append([]string{"XDG_CACHE_HOME=" + cacheHome, "TMPDIR=" + tmp}, buildkitEnv...)
			tag := "storepack-e2e/changed-" + tc.name + ":1"
			build := func(root string) result {
				args := []string{"storepack", "build", "--progress=plain", "-f", df, "-t", tag, "--load"}
				if root != "" {
					args = append(args, "--store-root", root)
				}
				return cmd(env, "docker", append(args, tc.context)...)
			}
			pristine := tc.pristine
			if pristine == tc.altered {
				pristine = testdir.ForStore(t)
				must(t, nil, "cp", "-a", tc.altered+"/.", pristine)
			}
			alterOneByte(t, filepath.Join(tc.altered, tc.changed))
			refused := func(when string) {
				t.Helper()
				r := build(tc.altered)
				if r.err == nil {
					t.Fatalf("%s: the build of a changed store path succeeded:\n%s", when, r)
				}
				if want := "store path " + tc.changed + " changed since its graph was recorded: its NAR is sha256:"; !strings.Contains(r.out, want) {
					t.Errorf("%s: the error does not say %q:\n%s", when, want, r)
				}
				checkNotTagged(t, tag)
				checkCacheEntries(t, cacheHome)
				if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
					t.Errorf("%s: temporary files left: %v (%v)", when, left, err)
				}
			}
			refused("no cache")
			if entries, _ := filepath.Glob(filepath.Join(cacheHome, "storepack", "layers", "*.json")); len(entries) != 0 {
				t.Errorf("the refused build left cache entries: %v", entries)
			}
			// The unchanged store builds, and caches its one store layer.
			r := build(pristine)
			if r.err != nil {
				t.Fatalf("the build of the unchanged store failed:\n%s", r)
			}
			if written, cached := cacheUse(t, r.out); written != 1 || cached != 0 {
				t.Errorf("unchanged store: %d layers written, %d cached; want 1 written", written, cached)
			}
			must(t, nil, bed.docker, "rmi", tag)
			refused("the unchanged layer cached")
		})
	}
}

// guixGraphFile writes a GRAPH of g's closure with its NAR hashes, as a
// store database would record them, in the closure's directory, and
// returns its name there.
func guixGraphFile(t *testing.T, g guixStore) string {
	t.Helper()
	storeDir := filepath.Join(g.root, "gnu", "store")
	app, err := store.ParsePath(g.app)
	if err != nil {
		t.Fatal(err)
	}
	scanned, err := store.Discover(context.Background(), storeDir, []store.Path{app})
	if err != nil {
		t.Fatal(err)
	}
	var infos []store.Info
	for _, p := range scanned.Paths() {
		info, _ := scanned.Info(p)
		if info.NarHash, info.NarSize, err = store.NarHash(context.Background(), os.DirFS(storeDir), p); err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	recorded, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := store.WritePathInfoJSON(&buf, recorded); err != nil {
		t.Fatal(err)
	}
	writeFile(t, g.root, "graph.json", buf.String())
	return "graph.json"
}
