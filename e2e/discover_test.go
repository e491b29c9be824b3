//go:build e2e

package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// TestDiscoverClosure builds manifests with CLOSURE and no GRAPH: the
// frontend scans the closure inside the builder. The image must hold
// exactly the closure Nix records, and run.
func TestDiscoverClosure(t *testing.T) {
	c := nixClosure(t)
	noGraph := func(result string) string {
		return "# syntax=storepack\nCLOSURE " + result + "\nLINK /bin -> bin\nENTRYPOINT [\"/bin/hello\"]\n"
	}
	t.Run("docker build", func(t *testing.T) {
		df := writeFile(t, t.TempDir(), "app.storepack", noGraph(c.dir+"/result"))
		engineBuildRunCheck(t, df, "storepack-e2e/discover:1", c)
	})
	t.Run("buildx", func(t *testing.T) {
		df := writeFile(t, c.dir, "app.storepack", noGraph("./result"))
		oci := filepath.Join(t.TempDir(), "image.tar")
		if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "-o", "type=oci,dest="+oci, c.dir); r.err != nil {
			t.Fatalf("build failed:\n%s", r)
		}
		checkImage(t, readArchive(t, oci), c, time.Unix(1, 0))
	})
}
