//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
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
	for _, b := range bothBuilders {
		t.Run(b.name, func(t *testing.T) {
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
	id := strings.TrimSpace(stdoutOf(t, bed.docker, "create", ref))
	t.Cleanup(func() { cmd(nil, bed.docker, "rm", "-f", id) })
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must(t, nil, bed.docker, "export", "-o", filepath.Join(dir, "fs.tar"), id)
	must(t, nil, "mkdir", root)
	must(t, nil, "tar", "-x", "-f", filepath.Join(dir, "fs.tar"), "-C", root)
	return root
}
