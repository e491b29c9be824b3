//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storepack/storepack/cliplugin/layertar"
)

// TestHostLayersMatchBuildKit: the layers the plugin writes on the host
// are byte for byte those BuildKit's differ writes for the same store
// paths: for every layer of images that `docker buildx build` with the
// frontend makes on buildkitd, of a Nix closure and of a Guix store whose
// paths hold symlinks, empty files, long and non-ASCII names.
func TestHostLayersMatchBuildKit(t *testing.T) {
	c := nixClosure(t)
	g := guixClosure(t)
	odd := "/gnu/store/" + strings.Repeat("p", 32) + "-odd-1.0"
	deep := odd + "/share/" + strings.Repeat("long-directory-name/", 6) + "file-with-a-name-longer-than-a-tar-header-holds.txt"
	for name, content := range map[string]string{
		odd + "/empty":       "",
		odd + "/bin/tool":    "#!/bin/sh\n",
		deep:                 "deep\n",
		odd + "/share/naïve": "non-ASCII name\n",
	} {
		f := filepath.Join(g.root, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o444)
		if strings.Contains(name, "/bin/") {
			mode = 0o555
		}
		if err := os.WriteFile(f, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{odd + "/lib": "share", odd + "/hello": g.app + "/bin/hello", odd + "/dangling": "../nowhere"} {
		if err := os.Symlink(target, filepath.Join(g.root, link)); err != nil {
			t.Fatal(err)
		}
	}
	// Store directories are read-only, as Nix and Guix leave them.
	if err := filepath.Walk(filepath.Join(g.root, odd), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			err = os.Chmod(p, 0o555)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, storeDir, hostDir, context, manifest string
	}{
		{"nix", "/nix/store", "/nix/store", c.dir, manifest("./result", "path-info.json", "LAYERS --strategy=per-path")},
		{"guix", "/gnu/store", filepath.Join(g.root, "gnu/store"), g.root,
			"# syntax=storepack\nSTORE /gnu/store\nCLOSURE ./result " + odd + "\nLAYERS --strategy=per-path\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			df := writeFile(t, t.TempDir(), "app.storepack", tc.manifest)
			oci := filepath.Join(t.TempDir(), "image.tar")
			if r := buildxBuild(t, "-f", df, "--build-context", "store="+tc.hostDir, "-o", "type=oci,dest="+oci, tc.context); r.err != nil {
				t.Fatalf("build failed:\n%s", r)
			}
			img := readArchive(t, oci)
			plan := img.plan(t)
			if len(plan.Layers) < 2 {
				t.Fatalf("%d store layers: too few to compare", len(plan.Layers))
			}
			for i, l := range plan.Layers {
				h := sha256.New()
				err := layertar.Write(context.Background(), h, layertar.Layer{StoreDir: tc.storeDir, HostDir: tc.hostDir, Paths: l.Paths, Epoch: time.Unix(1, 0)})
				if err != nil {
					t.Fatal(err)
				}
				if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != img.layers[i].diffID {
					t.Errorf("layer %d (%s): written on the host %s, BuildKit's %s", i, l.Key, got, img.layers[i].diffID)
				}
			}
		})
	}
}
