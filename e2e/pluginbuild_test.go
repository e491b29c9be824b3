//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// The plugin's builders, as a user selects them: the engine's embedded
// BuildKit (neither BUILDKIT_HOST nor BUILDX_BUILDER), the test bed's buildx
// builder (--builder), and buildkitd through BUILDKIT_HOST.
var (
	engineEnv   = []string{"BUILDKIT_HOST=", "BUILDX_BUILDER="}
	buildkitEnv = []string{"BUILDX_BUILDER="}
)

// runPluginEnv runs `docker storepack ARGS` with env added to the test
// bed's, and returns its stdout and stderr apart.
func runPluginEnv(env []string, args ...string) (stdout, stderr string, err error) {
	c := boundedCommand(commandBound, env, "docker", append([]string{"storepack"}, args...)...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err = c.Run()
	return out.String(), errOut.String(), err
}

func mustPluginEnv(t *testing.T, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := runPluginEnv(env, args...)
	if err != nil {
		t.Fatalf("docker storepack %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr, stdout)
	}
	return stdout, stderr
}

// withoutFrontendImage removes the frontend image from the engine for the
// rest of the test, and checks at its end that the registry, which
// buildkitd resolves docker.io through, was not asked for it either: the
// plugin needs no frontend image anywhere.
func withoutFrontendImage(t *testing.T) {
	t.Helper()
	installPlugin(t)
	for _, ref := range []string{"storepack:latest", bed.frontend} {
		cmd(nil, bed.docker, "rmi", ref)
	}
	offset := registryLogSize(t)
	t.Cleanup(func() {
		if asked := registryRequests(t, offset, "/library/storepack/"); len(asked) > 0 {
			t.Errorf("the registry was asked for the frontend image:\n%s", strings.Join(asked, "\n"))
		}
		if err := installFrontend(); err != nil {
			t.Fatalf("reinstall the frontend image: %v", err)
		}
	})
}

// registryRequests lists the requests in the registry's log since offset
// whose URI holds part.
func registryRequests(t *testing.T, offset int64, part string) []string {
	t.Helper()
	f, err := os.Open(registryLog())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `http.request.uri="`) && strings.Contains(sc.Text(), part) {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// TestPluginBuildRoots builds a Nix-built ./result with no manifest on
// each builder and runs the image with plain docker run.
func TestPluginBuildRoots(t *testing.T) {
	withoutFrontendImage(t)
	c := nixClosure(t)
	result := filepath.Join(c.dir, "result")
	for _, b := range []struct {
		name string
		env  []string
		args []string
		tag  string
	}{
		{"engine", engineEnv, nil, "storepack-e2e/plugin-roots:engine"},
		{"buildx --load", nil, []string{"--builder", os.Getenv("BUILDX_BUILDER"), "--load"}, "storepack-e2e/plugin-roots:buildx"},
		{"BUILDKIT_HOST --push", buildkitEnv, []string{"--push", "--metadata-file", filepath.Join(c.dir, "metadata.json")}, bed.registry + "/storepack-e2e/plugin-roots:pushed"},
	} {
		t.Run(b.name, func(t *testing.T) {
			args := append([]string{"build", "--progress=plain", "-t", b.tag}, b.args...)
			_, progress := mustPluginEnv(t, b.env, append(args, result)...)
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", b.tag) })
			if strings.HasPrefix(b.tag, bed.registry) {
				must(t, nil, bed.docker, "pull", b.tag)
				checkMetadata(t, filepath.Join(c.dir, "metadata.json"), b.tag)
			}
			if out := dockerRun(t, "--rm", b.tag); strings.TrimSpace(out) != greeting {
				t.Errorf("docker run printed %q, want %q\nbuild progress:\n%s", out, greeting, progress)
			}
		})
	}
}

// TestPluginPlanIsTheBuildsPlan: `plan` of ROOTs and of a manifest prints
// exactly the plan that `build` of the same input records in the image it
// loads into Docker 20.10, with the budget the customisation layer shares.
func TestPluginPlanIsTheBuildsPlan(t *testing.T) {
	withoutFrontendImage(t)
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --max=4 --strategy=per-path"))
	for name, input := range map[string][]string{
		"roots":    {"--max-layers", "3", filepath.Join(c.dir, "result")},
		"manifest": {"-f", df, c.dir},
	} {
		t.Run(name, func(t *testing.T) {
			tag := "storepack-e2e/plan-is-build:" + name
			mustPluginEnv(t, engineEnv, append([]string{"build", "-q", "-t", tag}, input...)...)
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
			recorded := pluginDecodePlan(t, "the recorded plan", must(t, nil, bed.docker, "image", "inspect", "-f", `{{index .Config.Labels "dev.storepack.plan"}}`, tag))
			planArgs := input
			if name == "manifest" {
				planArgs = []string{"--context", c.dir, df}
			}
			stdout, _ := mustPluginEnv(t, engineEnv, append([]string{"plan", "--format", "json"}, planArgs...)...)
			if planned := pluginDecodePlan(t, "plan", stdout); !reflect.DeepEqual(planned, recorded) {
				t.Errorf("plan printed:\n%+v\nbuild recorded:\n%+v", planned, recorded)
			}
			// The budget counts the customisation layer (LINK /bin).
			if budget := map[string]int{"roots": 2, "manifest": 3}[name]; len(recorded.Layers) > budget {
				t.Errorf("%d store layers, want at most %d", len(recorded.Layers), budget)
			}
		})
	}
}

// TestPluginBuildManifest builds a manifest with LINK, DIR, CMD and ENV on
// the engine, and the multi-architecture manifest for four platforms
// through the buildx builder, pushed as one index.
func TestPluginBuildManifest(t *testing.T) {
	withoutFrontendImage(t)
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json",
		"DIR --mode=1777 /tmp", "ENV GREETING_FROM=storepack", `CMD ["--version"]`))
	tag := "storepack-e2e/plugin-manifest:1"
	// From standard input, as -f - reads it.
	build := boundedCommand(commandBound, engineEnv, "docker", "storepack", "build", "-q", "-f", "-", "-t", tag, c.dir)
	build.Stdin = strings.NewReader(readFile(t, df))
	var out bytes.Buffer
	build.Stdout, build.Stderr = &out, &out
	if err := build.Run(); err != nil || !imageID.Match(out.Bytes()) {
		t.Fatalf("build -f -: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
	if out := dockerRun(t, "--rm", tag); strings.TrimSpace(out) != "hello 1.0" {
		t.Errorf("CMD [--version]: docker run printed %q", out)
	}
	busybox := pathNamed(t, c, "busybox") + "/bin/busybox"
	if out := dockerRun(t, "--rm", "--entrypoint", busybox, tag, "stat", "-c", "%a", "/tmp"); strings.TrimSpace(out) != "1777" {
		t.Errorf("/tmp has mode %q, want 1777", out)
	}
	if out := dockerRun(t, "--rm", "--entrypoint", busybox, tag, "sh", "-c", `echo "$GREETING_FROM"`); strings.TrimSpace(out) != "storepack" {
		t.Errorf("ENV GREETING_FROM: %q", out)
	}

	repo := bed.registry + "/storepack-e2e/plugin-multi"
	dir := multiarchClosures(t, "1")
	platformList := systemPlatforms()
	mf := multiarchManifest(t, dir, "LINK /bin -> bin", `ENTRYPOINT ["/bin/hello"]`)
	mustPluginEnv(t, nil, "build", "--builder", os.Getenv("BUILDX_BUILDER"), "-f", mf, "--platform", strings.Join(platformList, ","), "-t", repo+":1", "--push", dir)
	images := checkIndex(t, repo, "1")
	var got []string
	for _, img := range images {
		got = append(got, img.platform.OS+"/"+img.platform.Architecture+variantSuffix(img.platform.Variant))
	}
	if slices.Sort(got); !slices.Equal(got, sortedCopy(platformList)) {
		t.Errorf("the index has %v, want %v", got, platformList)
	}
}

// checkMetadata checks that a --metadata-file names the pushed image and
// its digest, as the registry has it.
func checkMetadata(t *testing.T, file, ref string) {
	t.Helper()
	var md map[string]any
	if err := json.Unmarshal([]byte(readFile(t, file)), &md); err != nil {
		t.Fatalf("--metadata-file: %v", err)
	}
	repo, tag, _ := strings.Cut(strings.TrimPrefix(ref, bed.registry+"/"), ":")
	pushed := registryDigest(t, repo, tag)
	if md["containerimage.digest"] != pushed || md["image.name"] != ref {
		t.Errorf("--metadata-file has digest %v and name %v, want %s and %s", md["containerimage.digest"], md["image.name"], pushed, ref)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func variantSuffix(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

// pathNamed returns the closure's store path with the given name.
func pathNamed(t *testing.T, c closure, name string) string {
	t.Helper()
	for _, p := range c.paths {
		if p.Name == name {
			return p.String()
		}
	}
	t.Fatalf("no store path %s in the closure", name)
	return ""
}

// TestPluginBuildMatchesDockerBuild: the plugin and `docker build` with
// `# syntax=storepack` make the same image from the same inputs on the same
// builder: the same layer diffIDs and the same config; for a Nix closure
// with a GRAPH and a Guix one found by scanning.
func TestPluginBuildMatchesDockerBuild(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	t.Run("docker 20.10", func(t *testing.T) {
		df := writeFile(t, c.dir, "engine.storepack", manifest(c.dir+"/result", c.dir+"/path-info.json"))
		if r := engineBuild(t, "-f", df, "-t", "storepack-e2e/same:frontend", "/"); r.err != nil {
			t.Fatalf("docker build failed:\n%s", r)
		}
		// The same context as docker build's: the host's root.
		mustPluginEnv(t, engineEnv, "build", "-q", "-f", df, "-t", "storepack-e2e/same:plugin", "/")
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", "storepack-e2e/same:frontend", "storepack-e2e/same:plugin") })
		// Both through the engine's builder: the same image. Docker
		// 20.10's BuildKit writes other tars of buildkitd's files.
		onBuildkitd := filepath.Join(t.TempDir(), "buildkitd.tar")
		mustPluginEnv(t, buildkitEnv, "build", "-q", "-f", df, "-o", "type=oci,dest="+onBuildkitd, "/")
		plugin := savedImage(t, "storepack-e2e/same:plugin")
		sameImage(t, savedImage(t, "storepack-e2e/same:frontend"), plugin)
		sameFiles(t, readArchive(t, onBuildkitd), plugin)
	})
	t.Run("buildkitd", func(t *testing.T) {
		df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json"))
		viaFrontend := filepath.Join(t.TempDir(), "frontend.tar")
		if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "-o", "type=oci,dest="+viaFrontend, c.dir); r.err != nil {
			t.Fatalf("docker buildx build failed:\n%s", r)
		}
		viaPlugin := filepath.Join(t.TempDir(), "plugin.tar")
		mustPluginEnv(t, nil, "build", "--builder", os.Getenv("BUILDX_BUILDER"), "-f", df, "-o", "type=oci,dest="+viaPlugin, c.dir)
		sameImage(t, readArchive(t, viaFrontend), readArchive(t, viaPlugin))
		// --frontend-image runs the frontend image in the builder instead.
		viaImage := filepath.Join(t.TempDir(), "image.tar")
		mustPluginEnv(t, nil, "build", "--builder", os.Getenv("BUILDX_BUILDER"), "--frontend-image", bed.frontend, "-f", df, "-o", "type=oci,dest="+viaImage, c.dir)
		sameImage(t, readArchive(t, viaFrontend), readArchive(t, viaImage))
	})
	// A Guix store, found by scanning (no GRAPH), kept under a root of its own.
	g := guixClosure(t)
	guix := writeFile(t, t.TempDir(), "guix.storepack", "# syntax=storepack\nCLOSURE ./result\nSTORE /gnu/store\nLINK /bin -> bin\n")
	t.Run("guix on docker 20.10", func(t *testing.T) {
		if r := engineBuild(t, "-f", guix, "-t", "storepack-e2e/same-guix:frontend", g.root); r.err != nil {
			t.Fatalf("docker build failed:\n%s", r)
		}
		mustPluginEnv(t, engineEnv, "build", "-q", "--store-root", g.root, "-f", guix, "-t", "storepack-e2e/same-guix:plugin", g.root)
		t.Cleanup(func() {
			cmd(nil, bed.docker, "rmi", "-f", "storepack-e2e/same-guix:frontend", "storepack-e2e/same-guix:plugin")
		})
		onBuildkitd := filepath.Join(t.TempDir(), "buildkitd.tar")
		mustPluginEnv(t, buildkitEnv, "build", "-q", "--store-root", g.root, "-f", guix, "-o", "type=oci,dest="+onBuildkitd, g.root)
		plugin := savedImage(t, "storepack-e2e/same-guix:plugin")
		sameImage(t, savedImage(t, "storepack-e2e/same-guix:frontend"), plugin)
		sameFiles(t, readArchive(t, onBuildkitd), plugin)
	})
	t.Run("guix on buildkitd", func(t *testing.T) {
		dir := t.TempDir()
		if r := buildxBuild(t, "-f", guix, "--build-context", "store="+filepath.Join(g.root, "gnu/store"), "-o", "type=oci,dest="+filepath.Join(dir, "frontend.tar"), g.root); r.err != nil {
			t.Fatalf("docker buildx build failed:\n%s", r)
		}
		mustPluginEnv(t, nil, "build", "--builder", os.Getenv("BUILDX_BUILDER"), "--store-root", g.root, "-f", guix, "-o", "type=oci,dest="+filepath.Join(dir, "plugin.tar"), g.root)
		sameImage(t, readArchive(t, filepath.Join(dir, "frontend.tar")), readArchive(t, filepath.Join(dir, "plugin.tar")))
	})
}

// savedImage reads an image of the engine through docker save.
func savedImage(t *testing.T, ref string) *image {
	t.Helper()
	saved := filepath.Join(t.TempDir(), "image.tar")
	must(t, nil, bed.docker, "save", "-o", saved, ref)
	return readArchive(t, saved)
}

// sameImage checks that the frontend's image and the plugin's have the
// same layers and the same config, history included.
func sameImage(t *testing.T, viaFrontend, viaPlugin *image) {
	t.Helper()
	if !slices.Equal(viaFrontend.diffIDs(), viaPlugin.diffIDs()) {
		t.Errorf("diffIDs differ:\nfrontend: %v\nplugin:   %v", viaFrontend.diffIDs(), viaPlugin.diffIDs())
	}
	a, _ := json.Marshal(viaFrontend.config)
	b, _ := json.Marshal(viaPlugin.config)
	if !bytes.Equal(a, b) {
		t.Errorf("configs differ:\nfrontend: %s\nplugin:   %s", a, b)
	}
}

// sameFiles: two images of the same inputs hold the same files, layer by
// layer (name, type, permission bits, size, link, time), and the same
// config but for the diffIDs and the layers' content keys, which only an
// image of known layer bytes records: Docker 20.10's BuildKit writes the
// same files in other tars (the file type in the mode field too).
func sameFiles(t *testing.T, a, b *image) {
	t.Helper()
	if len(a.layers) != len(b.layers) {
		t.Fatalf("%d layers, the other image %d", len(a.layers), len(b.layers))
	}
	for i := range a.layers {
		if x, y := fileList(a.layers[i]), fileList(b.layers[i]); x != y {
			t.Errorf("layer %d holds other files:\n%s\n%s", i+1, x, y)
		}
	}
	configs := [2][]byte{}
	for i, img := range []*image{a, b} {
		c := img.config
		c.RootFS = ocispecs.RootFS{}
		c.Config.Labels = maps.Clone(c.Config.Labels)
		delete(c.Config.Labels, layerllb.ContentLabel)
		configs[i], _ = json.Marshal(c)
	}
	if !bytes.Equal(configs[0], configs[1]) {
		t.Errorf("configs differ beyond their diffIDs:\n%s\n%s", configs[0], configs[1])
	}
}

// fileList lists a layer's entries with what sameFiles compares.
func fileList(l layer) string {
	var names []string
	for _, h := range l.entries {
		names = append(names, fmt.Sprintf("%s %c %o %d %q %d", h.Name, h.Typeflag, h.Mode&0o7777, h.Size, h.Linkname, h.ModTime.Unix()))
	}
	return strings.Join(names, ", ")
}

// TestPluginBuildHardLinks: a store whose identical files are hard links,
// as `nix-store --optimise` and Guix's deduplication leave them, gives the
// same image as the same closure stored without: a NAR holds no hard
// links, so no layer does either, on both builders. One store layer holds
// a link within a store path and one across two. The linked store is built
// first: the second build syncs into the first's copy of the layer, whose
// files it leaves as they are when their metadata match.
func TestPluginBuildHardLinks(t *testing.T) {
	installPlugin(t)
	plain, linked := guixClosure(t), guixClosure(t)
	greeting := plain.data + "/share/greeting.txt"
	copies := []string{plain.data + "/share/greeting-copy.txt", plain.app + "/share/greeting.txt"}
	for _, c := range copies {
		for _, root := range []string{plain.root, linked.root} {
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(c)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(filepath.Join(plain.root, greeting))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(plain.root, c), data, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(linked.root, greeting), filepath.Join(linked.root, c)); err != nil {
			t.Fatal(err)
		}
	}
	build := func(t *testing.T, g guixStore, env []string, args ...string) {
		t.Helper()
		mustPluginEnv(t, env, append(append([]string{"build", "-q", "--store-root", g.root, "--max-layers", "2"}, args...), filepath.Join(g.root, "result"))...)
	}
	check := func(t *testing.T, plainImg, linkedImg *image) {
		t.Helper()
		if !slices.Equal(plainImg.diffIDs(), linkedImg.diffIDs()) {
			t.Errorf("diffIDs differ:\nplain:  %v\nlinked: %v", plainImg.diffIDs(), linkedImg.diffIDs())
		}
		found := 0
		for _, l := range linkedImg.layers {
			for _, h := range l.entries {
				if h.Typeflag == tar.TypeLink {
					t.Errorf("the layer holds %s, a hard link to %s", h.Name, h.Linkname)
				}
				if slices.Contains(copies, "/"+h.Name) && h.Typeflag == tar.TypeReg && h.Size > 0 {
					found++
				}
			}
		}
		if found != len(copies) {
			t.Errorf("%d of %v are files with content in the image", found, copies)
		}
	}
	t.Run("docker 20.10", func(t *testing.T) {
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", "storepack-e2e/links:plain", "storepack-e2e/links:linked") })
		build(t, linked, engineEnv, "-t", "storepack-e2e/links:linked")
		build(t, plain, engineEnv, "-t", "storepack-e2e/links:plain")
		check(t, savedImage(t, "storepack-e2e/links:plain"), savedImage(t, "storepack-e2e/links:linked"))
	})
	t.Run("buildkitd", func(t *testing.T) {
		dir := t.TempDir()
		build(t, linked, nil, "--builder", os.Getenv("BUILDX_BUILDER"), "-o", "type=oci,dest="+filepath.Join(dir, "linked.tar"))
		build(t, plain, nil, "--builder", os.Getenv("BUILDX_BUILDER"), "-o", "type=oci,dest="+filepath.Join(dir, "plain.tar"))
		check(t, readArchive(t, filepath.Join(dir, "plain.tar")), readArchive(t, filepath.Join(dir, "linked.tar")))
	})
}

var imageID = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

// TestPluginBuildProgress: plain progress has one step per layer on the
// engine's builder, and names the steps of an image written on the host
// and loaded; rawjson is JSON lines, -q prints the image ID alone.
func TestPluginBuildProgress(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	result := filepath.Join(c.dir, "result")
	tag := "storepack-e2e/plugin-progress:1"
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })

	_, plain := mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "--load", "-t", tag, result)
	for _, step := range []string{fmt.Sprintf("[storepack] digests of %d store layers", len(c.paths)), "[storepack] write the image on the host and load it into the engine (no builder needed)"} {
		if !strings.Contains(plain, step) {
			t.Errorf("plain progress has no step %q:\n%s", step, plain)
		}
	}
	_, plain = mustPluginEnv(t, engineEnv, "build", "--progress=plain", "-t", tag, result)
	steps := regexp.MustCompile(`(?m)^#\d+ layer \d+/(\d+): `).FindAllStringSubmatch(plain, -1)
	layers := map[string]bool{}
	for _, s := range steps {
		layers[s[0]] = true
	}
	if len(steps) == 0 || len(layers) != len(c.paths) {
		t.Errorf("plain progress shows %d layer steps, want one per store path (%d):\n%s", len(layers), len(c.paths), plain)
	}
	if !strings.Contains(plain, `building with "default" instance using docker driver`) {
		t.Errorf("plain progress does not name the builder:\n%s", plain)
	}

	_, raw := mustPluginEnv(t, engineEnv, "build", "--progress=rawjson", "-t", tag, result)
	lines := strings.Split(strings.TrimSpace(raw), "\n")
	for i, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Errorf("rawjson line %d is not JSON: %q", i+1, line)
		}
	}

	out, _ := mustPluginEnv(t, engineEnv, "build", "-q", "-t", tag, result)
	if !imageID.MatchString(out) {
		t.Errorf("-q printed %q, want the image ID alone", out)
	}
	if id := must(t, nil, bed.docker, "image", "inspect", "-f", "{{.Id}}", tag); strings.TrimSpace(id) != strings.TrimSpace(out) {
		t.Errorf("-q printed %q, the image is %q", out, id)
	}
}

// TestPluginRebuildKeepsLayers rebuilds a tag after only the application
// changed: without --previous, the tag's image is the previous one, and
// every layer without the application keeps its diffID.
func TestPluginRebuildKeepsLayers(t *testing.T) {
	installPlugin(t)
	v1 := nixClosure(t, "--argstr", "appVersion", "plugin-1")
	v2 := nixClosure(t, "--argstr", "appVersion", "plugin-2")
	tag := "storepack-e2e/plugin-rebuild:latest"
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
	mustPluginEnv(t, engineEnv, "build", "--progress=plain", "--max-layers", "3", "-t", tag, filepath.Join(v1.dir, "result"))
	first := layerDiffIDs(t, tag)
	_, progress := mustPluginEnv(t, engineEnv, "build", "--progress=plain", "--max-layers", "3", "-t", tag, filepath.Join(v2.dir, "result"))
	if want := "previous image " + tag + " (linux/amd64): read its plan"; !strings.Contains(progress, want) {
		t.Errorf("the progress does not say it read %s:\n%s", tag, progress)
	}
	checkKeptLayers(t, first, layerDiffIDs(t, tag), v2.root)
}

// layerDiffIDs maps each store layer of image ref, named by its paths, to
// its diffID.
func layerDiffIDs(t *testing.T, ref string) map[string]string {
	t.Helper()
	img := savedImage(t, ref)
	byPaths := map[string]string{}
	for i, l := range img.plan(t).Layers {
		byPaths[pathsKey(l)] = img.layers[i].diffID
	}
	return byPaths
}

// checkKeptLayers checks that every layer of after without the changed
// path has the diffID it had before, and that there is such a layer.
func checkKeptLayers(t *testing.T, before, after map[string]string, changed store.Path) {
	t.Helper()
	kept := 0
	for key, id := range after {
		if strings.Contains(key, changed.Base()) {
			continue
		}
		if before[key] != id {
			t.Errorf("layer %s lost its diffID: %s, was %q", key, id, before[key])
		}
		kept++
	}
	if kept == 0 {
		t.Errorf("no layer without the application was kept")
	}
}

// TestPluginBuildErrors: wrong input is one clear line, a non-zero exit,
// no tag and no temporary directory left.
func TestPluginBuildErrors(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	result := filepath.Join(c.dir, "result")
	tag := "storepack-e2e/plugin-errors:1"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"outside any store", engineEnv, []string{"-t", tag, "/etc/hostname", "/etc/hosts"}, "not a store path"},
		{"missing manifest", engineEnv, []string{"-t", tag, "-f", filepath.Join(c.dir, "no-such.storepack"), c.dir}, "no manifest"},
		{"unreachable builder", nil, []string{"-t", tag, "--addr", "unix://" + filepath.Join(t.TempDir(), "none.sock"), result}, "cannot reach the builder"},
		{"multi-platform load", engineEnv, []string{"-t", tag, "--load", "--platform", "linux/amd64,linux/arm64", result}, "--load of 2 platforms"},
		{"invalid tag", engineEnv, []string{"-t", "Not/A:Valid:Tag", result}, "not a valid image reference"},
		{"missing store path", engineEnv, []string{"-t", tag, "/nix/store/00000000000000000000000000000000-none"}, "00000000000000000000000000000000-none"},
		{"sbom with load from buildkitd", buildkitEnv, []string{"-t", tag, "--load", "--sbom", result}, "--sbom with --load"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A temporary directory of its own: other builds on the machine
			// leave theirs in the shared one while they run.
			tmp := t.TempDir()
			env := append([]string{"TMPDIR=" + tmp}, tc.env...)
			_, stderr, err := runPluginEnv(env, append([]string{"build"}, tc.args...)...)
			if err == nil || !strings.Contains(stderr, tc.want) {
				t.Errorf("err %v, stderr %q; want a failure that says %q", err, stderr, tc.want)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", len(lines), stderr)
			}
			checkNotTagged(t, tag)
			if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
				t.Errorf("temporary files left: %v (%v)", left, err)
			}
		})
	}
}

// registryDigest is the digest of the manifest (or index) a tag names.
func registryDigest(t *testing.T, repo, tag string) string {
	t.Helper()
	data := registryGet(t, bed.registry+"/"+repo, tag, ocispecs.MediaTypeImageIndex, ocispecs.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json")
	return digest.FromBytes(data).String()
}
