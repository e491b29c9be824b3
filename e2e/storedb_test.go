//go:build e2e

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/storepack/storepack/store"
)

// TestStoreDB builds a Nix closure with STORE --with-db through `docker
// build` on Docker 20.10 (hashed in the builder by the frontend binary) and
// through the plugin on buildkitd (hashed on the host), exports the
// image's file system, and has Nix on the host read it as a store: every
// path of the closure verifies with its contents, and has the references
// the store it was built in records.
func TestStoreDB(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	extra := "STORE --with-db /nix/store"
	for _, b := range bothBuilders(t) {
		t.Run(b.name, func(t *testing.T) {
			b.use(t)
			result, graph := b.paths(c)
			tag := b.build(t, c, "storedb", manifest(result, graph, extra))
			root := exportRootFS(t, tag)
			storeURI := "local?root=" + root
			out := must(t, nil, "nix-store", "--store", storeURI, "--verify", "--check-contents")
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				switch line {
				case "", "reading the Nix store...", "checking path existence...", "checking link hashes...", "checking store hashes...":
				default:
					t.Errorf("nix-store --verify --check-contents on the image complains:\n%s", out)
				}
			}
			for _, p := range c.paths {
				got := must(t, nil, "nix-store", "--store", storeURI, "-q", "--references", p.String())
				want := must(t, nil, "nix-store", "-q", "--references", p.String())
				if got != want {
					t.Errorf("references of %s in the image:\n%s\nin the store:\n%s", p, got, want)
				}
				if got, want := must(t, nil, "nix-store", "--store", storeURI, "-q", "--hash", p.String()), must(t, nil, "nix-store", "-q", "--hash", p.String()); got != want {
					t.Errorf("NAR hash of %s in the image %s, in the store %s", p, got, want)
				}
			}
		})
	}
}

// exportRootFS extracts the file system of image ref into a new directory
// and returns it.
func exportRootFS(t *testing.T, ref string) string {
	t.Helper()
	// A command of its own, for an image without one; it is never run.
	id := strings.TrimSpace(stdoutOf(t, bed.docker, "create", ref, "true"))
	t.Cleanup(func() { cmd(nil, bed.docker, "rm", "-f", id) })
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must(t, nil, bed.docker, "export", "-o", filepath.Join(dir, "fs.tar"), id)
	must(t, nil, "mkdir", root)
	must(t, nil, "tar", "-x", "-f", filepath.Join(dir, "fs.tar"), "-C", root)
	return root
}

// TestStoreDBGuix builds a Guix-style closure (no GRAPH: found by scanning)
// with STORE --with-db through `docker build` on Docker 20.10 (the store
// under the context, hashed in the builder) and through the plugin (the
// store under --store-root, hashed on the host): the image holds Guix's
// database at /var/guix/db registering exactly the closure, with the NAR
// hashes and sizes of its paths, their references and the fixed
// registration time. Guix itself is not on this machine to read it.
func TestStoreDBGuix(t *testing.T) {
	installPlugin(t)
	g := guixClosure(t)
	text := "# syntax=storepack\nCLOSURE ./result\nSTORE --with-db /gnu/store\n"
	df := writeFile(t, t.TempDir(), "guix-db.storepack", text)
	for _, b := range []struct {
		name  string
		build func(tag string)
	}{
		{"docker build", func(tag string) {
			if r := engineBuild(t, "-f", df, "-t", tag, g.root); r.err != nil {
				t.Fatalf("build failed:\n%s", r)
			}
		}},
		{"plugin", func(tag string) {
			mustPluginEnv(t, engineEnv, "build", "--progress=plain", "--store-root", g.root, "-f", df, "-t", tag, g.root)
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			tag := "storepack-e2e/guix-db:latest"
			b.build(tag)
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
			root := exportRootFS(t, tag)
			if schema, err := os.ReadFile(filepath.Join(root, "var/guix/db/schema")); err != nil || string(schema) != "7" {
				t.Errorf("/var/guix/db/schema: %q (%v), want 7", schema, err)
			}
			db, err := sql.Open("sqlite", filepath.Join(root, "var/guix/db/db.sqlite"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var got []string
			rows, err := db.Query("SELECT path, hash, narSize, registrationTime FROM ValidPaths ORDER BY path")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var p, hash string
				var size, registered int64
				if err := rows.Scan(&p, &hash, &size, &registered); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %s %d %d", p, hash, size, registered))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			var want []string
			storeFS := os.DirFS(filepath.Join(g.root, "gnu/store"))
			for _, p := range sortedCopy([]string{g.busybox, g.data, g.app}) {
				sp, err := store.ParsePath(p)
				if err != nil {
					t.Fatal(err)
				}
				hash, size, err := store.NarHash(context.Background(), storeFS, sp)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprintf("%s %s %d 1", p, hash, size))
			}
			if !slices.Equal(got, want) {
				t.Errorf("ValidPaths:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			got = nil
			rows, err = db.Query("SELECT a.path, b.path FROM Refs JOIN ValidPaths a ON a.id = Refs.referrer JOIN ValidPaths b ON b.id = Refs.reference ORDER BY a.path, b.path")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var from, to string
				if err := rows.Scan(&from, &to); err != nil {
					t.Fatal(err)
				}
				got = append(got, from+" -> "+to)
			}
			if want := []string{g.app + " -> " + g.busybox, g.app + " -> " + g.data}; !slices.Equal(got, sortedCopy(want)) {
				t.Errorf("Refs:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
