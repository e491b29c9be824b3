//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/docker/go-units"

	"github.com/storepack/storepack/store"
)

// TestWarmTransfer rebuilds after only the application changed, from the
// same build context, and checks from BuildKit's progress that the warm
// build sent no more than the changed store paths and a small bound: the
// builder's copy of the closure is synced, not sent again.
func TestWarmTransfer(t *testing.T) {
	v1 := nixClosure(t, "--argstr", "appVersion", "transfer-1")
	v2 := nixClosure(t, "--argstr", "appVersion", "transfer-2")
	changed := sizeOfNew(t, v1, v2)
	// The manifest, the graph and the directory entries of the closure.
	const slack = 512 << 10
	largest := largestUnchanged(t, v1, v2)
	if largest <= slack {
		t.Fatalf("the closure's largest unchanged path has %d bytes: too small to tell a resend", largest)
	}
	for _, b := range []struct {
		name  string
		build func(t *testing.T, dir string) result
	}{
		{"docker build", func(t *testing.T, dir string) result {
			df := writeFile(t, dir, "app.storepack", manifest(dir+"/result", dir+"/path-info.json"))
			return engineBuild(t, "-f", df, "/")
		}},
		{"buildx", func(t *testing.T, dir string) result {
			df := writeFile(t, dir, "app.storepack", manifest("./result", "path-info.json"))
			return buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "-o", "type=tar,dest="+filepath.Join(t.TempDir(), "fs.tar"), dir)
		}},
		// The plugin transfers each layer on its own: the same holds.
		{"plugin", func(t *testing.T, dir string) result {
			installPlugin(t)
			df := writeFile(t, dir, "app.storepack", manifest("./result", "path-info.json"))
			args := []string{"storepack", "build", "--progress=plain", "--previous", "", "-f", df, "-o", "type=tar,dest=" + filepath.Join(t.TempDir(), "fs.tar"), dir}
			return cmd(engineEnv, "docker", args...)
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir() // one build context for both releases, as a project has
			var sent []int64
			for _, c := range []closure{v1, v2} {
				for _, name := range []string{"result", "path-info.json"} {
					os.Remove(filepath.Join(dir, name))
				}
				target, err := os.Readlink(filepath.Join(c.dir, "result"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, filepath.Join(dir, "result")); err != nil {
					t.Fatal(err)
				}
				data, err := os.ReadFile(filepath.Join(c.dir, "path-info.json"))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, dir, "path-info.json", string(data))
				r := b.build(t, dir)
				if r.err != nil {
					t.Fatalf("build failed:\n%s", r)
				}
				n, lines := transferred(t, r.out)
				t.Logf("transfers of %s:\n%s", c.root.Name, lines)
				sent = append(sent, n)
			}
			t.Logf("cold build sent %d bytes, warm build %d; changed paths %d bytes", sent[0], sent[1], changed)
			if sent[1] > changed+slack {
				t.Errorf("the warm build sent %d bytes, more than the changed paths (%d bytes) and %d", sent[1], changed, slack)
			}
		})
	}
}

// TestWarmTransferGuix: the same for a Guix store found by scanning (no
// GRAPH): both releases of the application lie in one store, as on a Guix
// host, and the build context's result link moves from one to the other.
// The cold build sends the closure once, though discovering it takes a
// transfer per round of the scan.
func TestWarmTransferGuix(t *testing.T) {
	g := guixClosure(t)
	app2 := "/gnu/store/" + strings.Repeat("j", 32) + "-hello-2.12.2"
	script := "#!" + g.busybox + "/bin/busybox sh\nexec " + g.busybox + "/bin/busybox cat " + g.data + "/share/greeting.txt # 2.12.2\n"
	if err := os.MkdirAll(filepath.Join(g.root, app2, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.root, app2, "bin", "hello"), []byte(script), 0o555); err != nil {
		t.Fatal(err)
	}
	changed := g.narSize(t, app2)
	closure := g.narSize(t, g.busybox) + g.narSize(t, g.data) + g.narSize(t, g.app) // of the first release
	const slack = 512 << 10                                                         // the manifest and the directory entries of the closure
	df := writeFile(t, t.TempDir(), "guix.storepack", "# syntax=storepack\nCLOSURE ./result\nSTORE /gnu/store\n")
	for _, b := range []struct {
		name  string
		build func(t *testing.T) result
	}{
		{"docker build", func(t *testing.T) result { return engineBuild(t, "-f", df, g.root) }},
		{"buildx", func(t *testing.T) result {
			return buildxBuild(t, "-f", df, "--build-context", "store="+filepath.Join(g.root, "gnu/store"), "-o", "type=tar,dest="+filepath.Join(t.TempDir(), "fs.tar"), g.root)
		}},
		{"plugin", func(t *testing.T) result {
			installPlugin(t)
			return cmd(engineEnv, "docker", "storepack", "build", "--progress=plain", "--previous", "", "--store-root", g.root, "-f", df, "-o", "type=tar,dest="+filepath.Join(t.TempDir(), "fs.tar"), g.root)
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			var sent []int64
			for _, app := range []string{g.app, app2} {
				link := filepath.Join(g.root, "result")
				if err := os.Remove(link); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(app, link); err != nil {
					t.Fatal(err)
				}
				r := b.build(t)
				if r.err != nil {
					t.Fatalf("build failed:\n%s", r)
				}
				n, lines := transferred(t, r.out)
				t.Logf("transfers of %s:\n%s", app, lines)
				sent = append(sent, n)
			}
			t.Logf("cold build sent %d bytes, warm build %d; changed paths %d bytes, the closure %d", sent[0], sent[1], changed, closure)
			if sent[0] < changed+slack {
				t.Fatalf("the cold build sent %d bytes: too few to tell a resend of busybox", sent[0])
			}
			// The discovery's rounds and the layers share their transfers.
			if sent[0] > closure+slack {
				t.Errorf("the cold build sent %d bytes, more than the closure (%d bytes) and %d", sent[0], closure, slack)
			}
			if sent[1] > changed+slack {
				t.Errorf("the warm build sent %d bytes, more than the changed paths (%d bytes) and %d", sent[1], changed, slack)
			}
		})
	}
}

// narSize is the NAR size of store path p of the store.
func (g guixStore) narSize(t *testing.T, p string) int64 {
	t.Helper()
	sp, err := store.ParsePath(p)
	if err != nil {
		t.Fatal(err)
	}
	n, err := store.NarSize(os.DirFS(filepath.Join(g.root, "gnu/store")), sp)
	if err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

// transferPattern matches a transfer's progress in plain output, such as
// "#5 transferring store: 2.05MB 0.1s done".
var transferPattern = regexp.MustCompile(`(?m)^#(\d+) transferring [^:]+: ([0-9.]+[kMGT]?B)`)

// transferred sums the last reported size of each transfer of a build,
// and returns the progress lines that report them.
func transferred(t *testing.T, progress string) (int64, string) {
	t.Helper()
	last := map[string]int64{}
	var lines []string
	for _, m := range transferPattern.FindAllStringSubmatch(progress, -1) {
		lines = append(lines, m[0])
		n, err := units.FromHumanSize(m[2])
		if err != nil {
			t.Fatalf("transfer size %q: %v", m[2], err)
		}
		last[m[1]] = n
	}
	if len(last) == 0 {
		t.Fatalf("no transfer in the progress output:\n%s", progress)
	}
	var sum int64
	for _, n := range last {
		sum += n
	}
	return sum, strings.Join(lines, "\n")
}

// sizeOfNew is the NAR size of the paths of b that a lacks.
func sizeOfNew(t *testing.T, a, b closure) int64 {
	t.Helper()
	g := pathInfo(t, b)
	var sum int64
	for _, p := range b.paths {
		if !slices.Contains(a.paths, p) {
			info, _ := g.Info(p)
			sum += int64(info.NarSize)
		}
	}
	return sum
}

// largestUnchanged is the largest NAR size of a path a and b share.
func largestUnchanged(t *testing.T, a, b closure) int64 {
	t.Helper()
	g := pathInfo(t, b)
	var largest int64
	for _, p := range b.paths {
		if slices.Contains(a.paths, p) {
			info, _ := g.Info(p)
			largest = max(largest, int64(info.NarSize))
		}
	}
	return largest
}

func pathInfo(t *testing.T, c closure) *store.Graph {
	t.Helper()
	f, err := os.Open(filepath.Join(c.dir, "path-info.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := store.Load("path-info.json", f)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
