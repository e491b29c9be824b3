//go:build e2e

package e2e

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storepack/storepack/internal/testdir"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

const greeting = "hello from storepack"

// closure is a Nix-built closure of the e2e/testdata/hello.nix application.
type closure struct {
	dir   string       // holds result, path-info.json and registration
	root  store.Path   // the hello application
	paths []store.Path // nix-store -qR result
}

// nixClosure builds hello.nix with Nix (offline) with extra nix-build args.
func nixClosure(t *testing.T, args ...string) closure {
	t.Helper()
	dir := t.TempDir()
	must(t, nil, filepath.Join(bed.repo, "hack", "nix-closure.sh"), append([]string{dir}, args...)...)
	target, err := os.Readlink(filepath.Join(dir, "result"))
	if err != nil {
		t.Fatal(err)
	}
	c := closure{dir: dir}
	if c.root, err = store.ParsePath(target); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Fields(must(t, nil, "nix-store", "-qR", target)) {
		p, err := store.ParsePath(line)
		if err != nil {
			t.Fatal(err)
		}
		c.paths = append(c.paths, p)
	}
	slices.SortFunc(c.paths, store.Path.Compare)
	if len(c.paths) < 3 {
		t.Fatalf("closure of %s has %d paths, want at least 3", c.root, len(c.paths))
	}
	return c
}

// manifest is the test application's manifest; paths are relative to the
// build context.
func manifest(result, graph string, extra ...string) string {
	return strings.Join(append([]string{
		"# syntax=storepack",
		"CLOSURE " + result,
		"GRAPH " + graph,
		"LINK /bin -> bin",
		`ENTRYPOINT ["/bin/hello"]`,
	}, extra...), "\n") + "\n"
}

// TestEngineBuildChain builds a Nix closure with plain `docker build` on
// Docker 20.10's BuildKit (no MergeOp, no symlink FileOp) with the store in
// the main context, then runs it and checks every layer.
func TestEngineBuildChain(t *testing.T) {
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest(c.dir+"/result", c.dir+"/path-info.json"))
	engineBuildRunCheck(t, df, "storepack-e2e/chain:1", c)
}

// engineBuildRunCheck builds a manifest of closure c with `docker build` on
// the engine of DOCKER_HOST, with the host's / as the context, runs the
// image and checks every layer.
func engineBuildRunCheck(t *testing.T, manifestFile, tag string, c closure) {
	t.Helper()
	if r := engineBuild(t, "-f", manifestFile, "-t", tag, "/"); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
	if out := dockerRun(t, "--rm", tag); strings.TrimSpace(out) != greeting {
		t.Errorf("docker run printed %q, want %q", out, greeting)
	}
	saved := filepath.Join(t.TempDir(), "image.tar")
	must(t, nil, bed.docker, "save", "-o", saved, tag)
	checkImage(t, readArchive(t, saved), c, time.Unix(1, 0))
}

// TestBuildxMerge builds the same closure with buildx on buildkitd (the
// Merge path), with the store as the named context "store", exported as an
// OCI archive, which is checked, and from the same build as a docker
// archive, which Docker 20.10 (it cannot load OCI layouts) loads and runs.
func TestBuildxMerge(t *testing.T) {
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json"))
	oci := filepath.Join(t.TempDir(), "image.tar")
	archive := filepath.Join(t.TempDir(), "docker.tar")
	tag := "storepack-e2e/merge:1"
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store",
		"-o", "type=oci,dest="+oci, "-o", "type=docker,dest="+archive+",name="+tag, c.dir); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	img := readArchive(t, oci)
	checkImage(t, img, c, time.Unix(1, 0))
	if loaded := readArchive(t, archive); !slices.Equal(loaded.diffIDs(), img.diffIDs()) {
		t.Errorf("the docker archive's layers differ from the OCI archive's")
	}

	must(t, nil, bed.docker, "load", "-i", archive)
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
	if out := dockerRun(t, "--rm", tag); strings.TrimSpace(out) != greeting {
		t.Errorf("docker run printed %q, want %q", out, greeting)
	}
}

// TestReproducibleMerge builds twice with the build cache pruned in
// between: the store layers and the config must not change. It also builds
// with the Chain method on the same builder and reports whether its layers
// equal the Merge ones.
func TestReproducibleMerge(t *testing.T) {
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --max=3"))
	build := func(extra ...string) *image {
		oci := filepath.Join(t.TempDir(), "image.tar")
		args := append([]string{"-f", df, "--build-context", "store=/nix/store", "-o", "type=oci,dest=" + oci}, extra...)
		if r := buildxBuild(t, append(args, c.dir)...); r.err != nil {
			t.Fatalf("build failed:\n%s", r)
		}
		return readArchive(t, oci)
	}
	first := build()
	must(t, nil, "docker", "buildx", "prune", "--builder", os.Getenv("BUILDX_BUILDER"), "--all", "--force")
	second := build()
	if !slices.Equal(first.diffIDs(), second.diffIDs()) {
		t.Errorf("diffIDs differ after pruning the cache:\n%q\n%q", first.diffIDs(), second.diffIDs())
	}
	if first.configDigest != second.configDigest {
		t.Errorf("config digest differs after pruning the cache: %s, %s", first.configDigest, second.configDigest)
	}
	if n := len(first.layers); n != 3 {
		t.Errorf("LAYERS --max=3 gave %d layers", n)
	}

	chain := build("--build-arg", "STOREPACK_LAYER_METHOD=chain")
	checkImage(t, chain, c, time.Unix(1, 0))
	for i := range first.layers {
		if !sameEntries(first.layers[i], chain.layers[i]) {
			t.Errorf("layer %d: Merge and Chain give different entries", i)
		}
	}
	t.Logf("Chain-path diffIDs equal Merge-path diffIDs on buildkitd: %v", slices.Equal(first.diffIDs(), chain.diffIDs()))
}

// TestIncremental changes only the application and checks, for both
// methods, that every layer without a changed path keeps its diffID.
func TestIncremental(t *testing.T) {
	v1 := nixClosure(t, "--argstr", "appVersion", "1")
	v2 := nixClosure(t, "--argstr", "appVersion", "2")
	if v1.root == v2.root {
		t.Fatal("appVersion did not change the application path")
	}
	for _, method := range []string{"merge", "chain"} {
		t.Run(method, func(t *testing.T) {
			build := func(c closure) *image {
				df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json"))
				oci := filepath.Join(t.TempDir(), "image.tar")
				if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "--build-arg", "STOREPACK_LAYER_METHOD="+method,
					"-o", "type=oci,dest="+oci, c.dir); r.err != nil {
					t.Fatalf("build failed:\n%s", r)
				}
				return readArchive(t, oci)
			}
			img1, img2 := build(v1), build(v2)
			old := map[string]string{} // layer paths → diffID in the first image
			for i, l := range img1.plan(t).Layers {
				old[pathsKey(l)] = img1.layers[i].diffID
			}
			unchanged := 0
			for i, l := range img2.plan(t).Layers {
				if id, ok := old[pathsKey(l)]; ok {
					unchanged++
					if img2.layers[i].diffID != id {
						t.Errorf("layer %s holds no changed path but its diffID changed", pathsKey(l))
					}
				} else if !slices.Contains(l.Paths, v2.root) {
					t.Errorf("layer %s is new but does not hold the changed application", pathsKey(l))
				}
			}
			if want := len(v2.paths) - 1; unchanged != want {
				t.Errorf("%d layers kept, want %d (all but the application's)", unchanged, want)
			}
		})
	}
}

// TestSourceDateEpoch checks that SOURCE_DATE_EPOCH sets every mtime and
// every created time.
func TestSourceDateEpoch(t *testing.T) {
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json"))
	oci := filepath.Join(t.TempDir(), "image.tar")
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "--build-arg", "SOURCE_DATE_EPOCH=1700000000",
		"-o", "type=oci,dest="+oci, c.dir); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	checkImage(t, readArchive(t, oci), c, time.Unix(1700000000, 0))
}

// TestBuiltInExample builds what `make demo` builds, through Docker 20.10.
func TestBuiltInExample(t *testing.T) {
	dir := testdir.ForStore(t)
	must(t, nil, "go", "run", filepath.Join(bed.repo, "examples/hello/mkstore"), dir)
	tag := "storepack-e2e/demo:1"
	if r := engineBuild(t, "-f", filepath.Join(dir, "app.storepack"), "-t", tag, filepath.Join(dir, "context")); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
	if out := dockerRun(t, "--rm", tag); !strings.Contains(out, "Hello from a storepack image!") {
		t.Errorf("docker run printed %q", out)
	}

	// As make demo runs it.
	installPlugin(t)
	t.Cleanup(func() { removeRunImages(t) })
	root := filepath.Join(dir, "context")
	if out, stderr, code := pluginRun(t, engineEnv, nil, "--store-root", root, filepath.Join(root, "result")); code != 0 || strings.TrimSpace(out) != "Hello from a storepack image!" {
		t.Errorf("docker storepack run: exit %d, %q\n%s", code, out, stderr)
	}
}

func pathsKey(l layering.Layer) string {
	names := make([]string, len(l.Paths))
	for i, p := range l.Paths {
		names[i] = p.Base()
	}
	return strings.Join(names, ",")
}

func sameEntries(a, b layer) bool {
	if len(a.entries) != len(b.entries) {
		return false
	}
	for i := range a.entries {
		x, y := a.entries[i], b.entries[i]
		if x.Name != y.Name || x.Mode != y.Mode || x.Size != y.Size || x.Linkname != y.Linkname || !x.ModTime.Equal(y.ModTime) {
			return false
		}
	}
	return true
}

// checkImage checks an image of the test closure against its plan and the
// host's store: the planned layers in order, each holding exactly its store
// paths with every file, fixed mtime, owner 0:0 and the store's modes; then
// the customisation layer and the history.
func checkImage(t *testing.T, img *image, c closure, epoch time.Time) {
	t.Helper()
	plan := img.plan(t)
	if got, want := len(img.layers), len(plan.Layers)+1; got != want {
		t.Fatalf("image has %d layers, want %d store layers + 1 customisation layer", got, want)
	}
	var planned []store.Path
	for i, l := range plan.Layers {
		planned = append(planned, l.Paths...)
		checkStoreLayer(t, i, img.layers[i], l, epoch)
	}
	slices.SortFunc(planned, store.Path.Compare)
	if !slices.Equal(planned, c.paths) {
		t.Errorf("the plan holds %v, want the closure %v", planned, c.paths)
	}

	custom := img.layers[len(img.layers)-1]
	bin := entry(custom, "bin")
	if bin == nil || bin.Typeflag != tar.TypeSymlink || bin.Linkname != c.root.String()+"/bin" {
		t.Errorf("customisation layer: want /bin -> %s/bin, have %+v", c.root, bin)
	}
	for _, h := range custom.entries {
		checkOwnerTime(t, "customisation layer", h, epoch)
	}

	if got := len(img.config.History); got != len(img.layers) {
		t.Errorf("history has %d entries for %d layers", got, len(img.layers))
	}
	for i, h := range img.config.History {
		if h.Created == nil || !h.Created.Equal(epoch) {
			t.Errorf("history %d created %v, want %v", i, h.Created, epoch)
		}
		if i < len(plan.Layers) && !strings.Contains(h.Comment, plan.Layers[i].Paths[0].String()) {
			t.Errorf("history %d comment %q does not name its store paths", i, h.Comment)
		}
	}
	if img.config.Created == nil || !img.config.Created.Equal(epoch) {
		t.Errorf("image created %v, want %v", img.config.Created, epoch)
	}
}

func checkStoreLayer(t *testing.T, i int, l layer, planned layering.Layer, epoch time.Time) {
	t.Helper()
	name := fmt.Sprintf("layer %d (%s)", i, planned.Key)
	want := map[string]fs.FileMode{"nix": fs.ModeDir | 0o755, "nix/store": fs.ModeDir | 0o755}
	for _, p := range planned.Paths {
		hostEntries(t, p.String(), want)
	}
	seen := map[string]bool{}
	for _, h := range l.entries {
		n := strings.TrimSuffix(h.Name, "/")
		seen[n] = true
		mode, ok := want[n]
		if !ok {
			t.Errorf("%s: unexpected entry %s", name, n)
			continue
		}
		if got := h.FileInfo().Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); got != mode && mode&fs.ModeSymlink == 0 {
			t.Errorf("%s: %s has mode %v, the store has %v", name, n, got, mode)
		}
		checkOwnerTime(t, name, h, epoch)
	}
	for n := range want {
		if !seen[n] {
			t.Errorf("%s: %s is missing", name, n)
		}
	}
}

// hostEntries adds the tar names and modes of a host store path's files.
func hostEntries(t *testing.T, root string, into map[string]fs.FileMode) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		into[strings.TrimPrefix(p, "/")] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkOwnerTime(t *testing.T, where string, h *tar.Header, epoch time.Time) {
	t.Helper()
	if h.Uid != 0 || h.Gid != 0 {
		t.Errorf("%s: %s owned by %d:%d, want 0:0", where, h.Name, h.Uid, h.Gid)
	}
	if !h.ModTime.Equal(epoch) {
		t.Errorf("%s: %s has mtime %v, want %v", where, h.Name, h.ModTime.UTC(), epoch.UTC())
	}
}

func entry(l layer, name string) *tar.Header {
	for _, h := range l.entries {
		if strings.TrimSuffix(h.Name, "/") == name {
			return h
		}
	}
	return nil
}
