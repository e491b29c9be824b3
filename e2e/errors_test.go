//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadManifests checks that bad input fails with an error naming the
// manifest line or the path, and tags nothing.
func TestBadManifests(t *testing.T) {
	c := nixClosure(t)
	dir := c.dir
	if err := os.Symlink("/tmp", filepath.Join(dir, "outside")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "garbage.json", "{\"/nix/store/not-a-store-path\": {\"references\": 7}}\n")
	// A graph that holds only the closure's busybox, not the root.
	var busybox string
	for _, p := range c.paths {
		if p.Name == "busybox" {
			busybox = p.String()
		}
	}
	writeFile(t, dir, "partial.json", must(t, nil, "nix", "path-info", "--json", busybox))
	graph := dir + "/path-info.json"
	for _, tc := range []struct {
		name     string
		manifest string
		want     []string // all of these in the output
	}{
		{"unknown instruction", "# syntax=storepack\nCLOSURE " + dir + "/result\nCLOSUR x\n",
			[]string{"app.storepack:3", "unknown instruction: CLOSUR"}},
		{"missing root", "# syntax=storepack\nGRAPH " + graph + "\nCLOSURE " + dir + "/no-such-result\n",
			[]string{"app.storepack:3", dir + "/no-such-result", "not in the build context"}},
		{"root outside the store", "# syntax=storepack\nGRAPH " + graph + "\nCLOSURE " + dir + "/outside\n",
			[]string{"app.storepack:3", "outside the store"}},
		{"malformed graph", "# syntax=storepack\nCLOSURE " + dir + "/result\nGRAPH " + dir + "/garbage.json\n",
			[]string{"app.storepack:3", "garbage.json"}},
		{"root not in the store", "# syntax=storepack\nCLOSURE /nix/store/00000000000000000000000000000000-absent\nGRAPH " + graph + "\n",
			[]string{"app.storepack:2", "root /nix/store/00000000000000000000000000000000-absent is not in the build context"}},
		{"root not in graph", "# syntax=storepack\nCLOSURE " + dir + "/result\nGRAPH " + dir + "/partial.json\n",
			[]string{"app.storepack:2", c.root.String(), "not in the GRAPH"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			df := writeFile(t, t.TempDir(), "app.storepack", tc.manifest)
			tag := "storepack-e2e/bad:" + strings.ReplaceAll(tc.name, " ", "-")
			r := engineBuild(t, "-f", df, "-t", tag, "/")
			if r.err == nil {
				cmd(nil, bed.docker, "rmi", "-f", tag)
				t.Fatalf("build succeeded:\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r)
				}
			}
			if cmd(nil, bed.docker, "image", "inspect", tag).err == nil {
				t.Errorf("%s was tagged", tag)
			}
		})
	}
}

// TestStorePathMissingFromContext names the store path the store context lacks.
func TestStorePathMissingFromContext(t *testing.T) {
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json"))
	empty := t.TempDir()
	r := buildxBuild(t, "-f", df, "--build-context", "store="+empty, "-o", "type=oci,dest="+filepath.Join(t.TempDir(), "x.tar"), c.dir)
	if r.err == nil {
		t.Fatalf("build succeeded:\n%s", r)
	}
	if !strings.Contains(r.out, "is not in the build context \"store\"") || !strings.Contains(r.out, "/nix/store/") {
		t.Errorf("output does not name the missing store path:\n%s", r)
	}
}
