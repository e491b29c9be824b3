//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/internal/testdir"
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

// TestHostWrittenLayers: on a builder that takes whole layers (buildkitd),
// the plugin gives every store layer of an image that needs the builder
// written on the host and transfers no store path; its image has the diffIDs and config of `docker buildx
// build` with the frontend, through an OCI archive, a push (the very same
// compressed blobs) and from a copy of the store kept under another root.
func TestHostWrittenLayers(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	// COPY needs the builder (an image without one is written on the host
	// alone: TestHostWrittenImage).
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --strategy=per-path", "COPY path-info.json /etc/path-info.json"))
	repo := bed.registry + "/storepack-e2e/host-layers"

	// The frontend's image, pushed and archived: the reference.
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "--provenance=false", "-t", repo+":frontend", "--push", c.dir); r.err != nil {
		t.Fatalf("docker buildx build failed:\n%s", r)
	}
	frontendOCI := filepath.Join(t.TempDir(), "frontend.tar")
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "-o", "type=oci,dest="+frontendOCI, c.dir); r.err != nil {
		t.Fatalf("docker buildx build failed:\n%s", r)
	}
	reference := readArchive(t, frontendOCI)

	_, progress := mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "-f", df, "-t", repo+":plugin", "--push", c.dir)
	plan := reference.plan(t)
	if got := strings.Count(progress, ", written on the host ("); got < len(plan.Layers) {
		t.Errorf("%d store layers written on the host, want all %d:\n%s", got, len(plan.Layers), progress)
	}
	if strings.Contains(progress, "transfer layer") {
		t.Errorf("store paths were transferred:\n%s", progress)
	}
	pushed := func(tag string) ocispecs.Manifest {
		images := readImages(t, repo, tag)
		if len(images) != 1 {
			t.Fatalf("%s:%s holds %d images", repo, tag, len(images))
		}
		return images[0].manifest
	}
	viaFrontend, viaPlugin := pushed("frontend"), pushed("plugin")
	if !reflect.DeepEqual(viaFrontend.Layers, viaPlugin.Layers) || viaFrontend.Config.Digest != viaPlugin.Config.Digest {
		t.Errorf("pushed images differ:\nfrontend: %+v\nplugin:   %+v", viaFrontend, viaPlugin)
	}

	// The archive is written on the host: the builder sends back what it
	// made, not the layers it was given.
	pluginOCI := filepath.Join(t.TempDir(), "plugin.tar")
	_, progress = mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "-f", df, "-o", "type=oci,dest="+pluginOCI, c.dir)
	if strings.Contains(progress, "sending tarball") {
		t.Errorf("the builder sent the archive:\n%s", progress)
	}
	sameImage(t, reference, readArchive(t, pluginOCI))
	if got := readArchive(t, pluginOCI).configDigest; got != reference.configDigest {
		t.Errorf("config digest %s, the frontend's %s", got, reference.configDigest)
	}

	// The closure copied under another root, as `nix copy --to
	// local?root=DIR` leaves it.
	root := testdir.ForStore(t)
	if err := os.MkdirAll(filepath.Join(root, "nix", "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.paths {
		must(t, nil, "cp", "-a", p.String(), filepath.Join(root, "nix", "store")+"/")
	}
	relocated := filepath.Join(t.TempDir(), "relocated.tar")
	mustPluginEnv(t, buildkitEnv, "build", "--store-root", root, "-f", df, "-o", "type=oci,dest="+relocated, c.dir)
	sameImage(t, reference, readArchive(t, relocated))
}

// digestsLine is the progress log of the plugin's digest pass: how many
// store layers it wrote to learn their digests, and how many it took from
// the host's cache.
var digestsLine = regexp.MustCompile(`(\d+) written on the host to learn them, (\d+) from the host's cache of layer digests`)

// cacheUse reads digestsLine from a build's progress.
func cacheUse(t *testing.T, progress string) (written, cached int) {
	t.Helper()
	m := digestsLine.FindStringSubmatch(progress)
	if m == nil {
		t.Fatalf("no digest pass in the progress:\n%s", progress)
	}
	written, _ = strconv.Atoi(m[1])
	cached, _ = strconv.Atoi(m[2])
	return written, cached
}

// TestLayerCache: a second build of the same closure reads no store layer
// for its digest; damaged cache entries (cut short, another key's, a
// well-formed entry whose layer digest was altered) are written anew, not
// used; a plugin killed during its digest pass leaves no damaged entry,
// and the next build makes the image a build without the cache makes.
func TestLayerCache(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	// The digest pass is still running when the plugin is killed.
	bigPath := bigStorePath(t, 13)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --strategy=per-path"))
	bigManifest := writeFile(t, c.dir, "big.storepack", "# syntax=storepack\nCLOSURE "+bigPath+"\n")
	cacheHome := t.TempDir()
	env := append([]string{"XDG_CACHE_HOME=" + cacheHome}, buildkitEnv...)
	build := func(extra ...string) (*image, string) {
		t.Helper()
		oci := filepath.Join(t.TempDir(), "image.tar")
		_, progress := mustPluginEnv(t, env, append([]string{"build", "--progress=plain", "-f", df, "-o", "type=oci,dest=" + oci}, append(extra, c.dir)...)...)
		return readArchive(t, oci), progress
	}

	first, progress := build()
	layers := len(first.plan(t).Layers)
	if written, cached := cacheUse(t, progress); written != layers || cached != 0 {
		t.Errorf("first build: %d layers written, %d cached; want all %d written", written, cached, layers)
	}
	second, progress := build()
	if written, cached := cacheUse(t, progress); written != 0 || cached != layers {
		t.Errorf("second build: %d layers written, %d cached; want all %d cached", written, cached, layers)
	}
	sameImage(t, first, second)

	entries, _ := filepath.Glob(filepath.Join(cacheHome, "storepack", "layers", "*.json"))
	if len(entries) < 3 {
		t.Fatalf("cache entries %v: too few to damage three", entries)
	}
	if err := os.WriteFile(entries[0], []byte(`{"key":"sha256:`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entries[1], []byte(`{"key":"sha256:0000000000000000000000000000000000000000000000000000000000000000","diffID":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Still a well-formed entry of its key, with another layer digest.
	whole, err := os.ReadFile(entries[2])
	if err != nil {
		t.Fatal(err)
	}
	altered := regexp.MustCompile(`"diffID":"sha256:[0-9a-f]{64}"`).ReplaceAll(whole, []byte(`"diffID":"sha256:`+strings.Repeat("1", 64)+`"`))
	if string(altered) == string(whole) {
		t.Fatalf("no diffID to alter in %s: %s", entries[2], whole)
	}
	if err := os.WriteFile(entries[2], altered, 0o600); err != nil {
		t.Fatal(err)
	}
	third, progress := build()
	if written, _ := cacheUse(t, progress); written != 3 {
		t.Errorf("after damaging three entries: %d layers written, want 3", written)
	}
	sameImage(t, first, third)

	// Killed during the digest pass of a big layer; what a killed process
	// cannot remove stays in the test's own temporary directory.
	run := boundedCommand(commandBound, append([]string{"TMPDIR=" + t.TempDir()}, env...), "docker", "storepack", "build", "--progress=plain", "-f", bigManifest, "-o", "type=oci,dest="+filepath.Join(t.TempDir(), "big.tar"), c.dir)
	if progress, reached, _ := signalAt(t, run, "[storepack] digests of", syscall.SIGKILL, func(docker int) int { return pluginPid(t, docker) }); !reached {
		t.Fatalf("no digest pass to kill:\n%s", progress)
	}
	checkCacheEntries(t, cacheHome)
	withCache := filepath.Join(t.TempDir(), "cached.tar")
	mustPluginEnv(t, env, "build", "-f", bigManifest, "-o", "type=oci,dest="+withCache, c.dir)
	without := filepath.Join(t.TempDir(), "uncached.tar")
	mustPluginEnv(t, env, "build", "--no-cache", "-f", bigManifest, "-o", "type=oci,dest="+without, c.dir)
	sameImage(t, readArchive(t, without), readArchive(t, withCache))
}

// gzipLine is the progress log of an export that gzips layers on the host.
var gzipLine = regexp.MustCompile(`(\d+) layers gzipped on the host, (\d+) gzip blobs known from the host's cache of layer digests \((\d+) of them written`)

// TestPushGzipCache: the host's cache of layer digests also knows each
// layer's gzip blob, so a push of unchanged layers with no previous image
// compresses none of them: none where the repository has them, and to
// another repository only as it asks for them, to the same manifest.
func TestPushGzipCache(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --strategy=per-path"))
	env := append([]string{"XDG_CACHE_HOME=" + t.TempDir()}, buildkitEnv...)
	repo := bed.registry + "/storepack-e2e/gzip-cache"
	push := func(ref string) (platformImage, [3]int, []string) {
		t.Helper()
		logBefore := registryLogSize(t)
		_, progress := mustPluginEnv(t, env, "build", "--progress=plain", "--previous", "", "-f", df, "-t", ref, "--push", c.dir)
		m := gzipLine.FindStringSubmatch(progress)
		if m == nil {
			t.Fatalf("push of %s: no gzip counts in the progress:\n%s", ref, progress)
		}
		var counts [3]int
		for i := range counts {
			counts[i], _ = strconv.Atoi(m[i+1])
		}
		name, tag, _ := strings.Cut(strings.TrimPrefix(ref, bed.registry+"/"), ":")
		img := readImages(t, name, tag)[0]
		var layers []string
		for _, d := range registryUploads(t, logBefore) {
			if isLayerOf([]platformImage{img}, d) {
				layers = append(layers, d)
			}
		}
		return img, counts, layers
	}

	first, counts, uploaded := push(repo + ":1")
	n := len(first.manifest.Layers)
	if counts != [3]int{n, 0, 0} || len(uploaded) != n {
		t.Fatalf("first push: gzipped now/known/written %v, %d layers uploaded; want all %d gzipped and uploaded", counts, len(uploaded), n)
	}
	// The customisation layer (if any) is written in memory each build,
	// and gzipped each time.
	stores := len(first.plan.Layers)
	again, counts, uploaded := push(repo + ":2")
	if counts != [3]int{n - stores, stores, 0} || len(uploaded) != 0 {
		t.Errorf("same repository: gzipped now/known/written %v, layers uploaded %v; want the %d store layers known, none written or uploaded", counts, uploaded, stores)
	}
	other, counts, uploaded := push(bed.registry + "/storepack-e2e/gzip-cache-other:1")
	if counts != [3]int{n - stores, stores, stores} || len(uploaded) != n {
		t.Errorf("another repository: gzipped now/known/written %v, %d layers uploaded; want the %d store layers known and written, all %d uploaded", counts, len(uploaded), stores, n)
	}
	for _, img := range []platformImage{again, other} {
		if !reflect.DeepEqual(img.manifest, first.manifest) {
			t.Errorf("manifest %+v, the first push's %+v", img.manifest, first.manifest)
		}
	}
}

// TestFreshRunner: a fresh runner (builder cache and host cache empty)
// that builds release 2 with release 1 in the registry as its previous
// image takes every unchanged layer from the registry: it reads and
// uploads only the changed layer, and its image is the image a build
// without the previous image makes.
func TestFreshRunner(t *testing.T) {
	installPlugin(t)
	repo := bed.registry + "/storepack-e2e/fresh-runner"
	v1 := nixClosure(t, "--argstr", "appVersion", "1")
	v2 := nixClosure(t, "--argstr", "appVersion", "2")
	fresh := func() []string {
		t.Helper()
		must(t, nil, "docker", "buildx", "prune", "--builder", os.Getenv("BUILDX_BUILDER"), "--all", "--force")
		return append([]string{"XDG_CACHE_HOME=" + t.TempDir()}, buildkitEnv...)
	}
	build := func(env []string, c closure, args ...string) string {
		t.Helper()
		df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --strategy=per-path"))
		_, progress := mustPluginEnv(t, env, append(append([]string{"build", "--progress=plain", "-f", df}, args...), c.dir)...)
		return progress
	}
	build(fresh(), v1, "-t", repo+":1", "--push")
	release1 := readImages(t, repo, "1")[0]

	logBefore := registryLogSize(t)
	progress := build(fresh(), v2, "--previous", repo+":1", "-t", repo+":2", "--push")
	release2 := readImages(t, repo, "2")[0]
	changed := 0
	for _, l := range release2.manifest.Layers {
		if !slices.ContainsFunc(release1.manifest.Layers, func(d ocispecs.Descriptor) bool { return d.Digest == l.Digest }) {
			changed++
		}
	}
	stores := len(release2.plan.Layers)
	if written, _ := cacheUse(t, progress); written != 1 {
		t.Errorf("%d store layers written on the host, want only the application's:\n%s", written, progress)
	}
	if !strings.Contains(progress, fmt.Sprintf(", %d from the previous image", stores-1)) {
		t.Errorf("not %d layers from the previous image:\n%s", stores-1, progress)
	}
	var layers []string
	for _, d := range registryUploads(t, logBefore) {
		if isLayerOf([]platformImage{release2}, d) {
			layers = append(layers, d)
		}
	}
	// The application's layer, and the customisation layer, whose LINK
	// names the application.
	if len(layers) != changed || changed > 2 {
		t.Errorf("the registry received layers %v; %d layers of release 2 are not release 1's", layers, changed)
	}

	// The image equals one made without the previous image (its plan is
	// per path, which a previous plan does not change).
	without := filepath.Join(t.TempDir(), "without.tar")
	build(fresh(), v2, "--previous", "", "-o", "type=oci,dest="+without)
	reference := readArchive(t, without)
	if got := release2.config.RootFS.DiffIDs; !reflect.DeepEqual(got, reference.config.RootFS.DiffIDs) {
		t.Errorf("diffIDs %v, a build that writes every layer %v", got, reference.config.RootFS.DiffIDs)
	}
	if release2.manifest.Config.Digest.String() != reference.configDigest {
		t.Errorf("config %s, a build that writes every layer %s", release2.manifest.Config.Digest, reference.configDigest)
	}
}

// TestHostWrittenImage: an image that needs no builder (no FROM, COPY or
// RUN) exported to an archive is written on the host, with no builder in
// its progress, and is the image `docker buildx build` with the frontend
// exports on buildkitd: the same index, manifests, configs and layers,
// uncompressed and gzipped, OCI and docker archives, for a Nix closure
// with accounts and an owned directory and for a Guix store with its
// database. A directory with a sticky bit needs the builder (its Mkdir
// cannot set it): that build goes through it and still agrees.
func TestHostWrittenImage(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	g := guixClosure(t)
	custom := []string{"ACCOUNT --uid=1001 app", "DIR --owner=1001:1001 /var/lib/app", "ENV GREETING_FROM=storepack", "LABEL org.example.kind=e2e"}
	for _, tc := range []struct {
		name, storeRoot, storeDir, context, manifest string
		onHost                                       bool
	}{
		{"nix", "", "/nix/store", c.dir, manifest("./result", "path-info.json", custom...), true},
		{"guix", g.root, "/gnu/store", g.root, "# syntax=storepack\nCLOSURE ./result\nSTORE --with-db /gnu/store\nLINK /bin -> bin\n", true},
		{"sticky", "", "/nix/store", c.dir, manifest("./result", "path-info.json", "DIR --mode=1777 /tmp"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			df := writeFile(t, t.TempDir(), "app.storepack", tc.manifest)
			// Compression forced, for BuildKit keeps a layer it holds in
			// another compression otherwise.
			for _, output := range []string{"type=oci,compression=uncompressed,force-compression=true", "type=oci,compression=gzip,force-compression=true", "type=docker,compression=uncompressed,force-compression=true"} {
				dir := t.TempDir()
				reference, plugin := filepath.Join(dir, "frontend.tar"), filepath.Join(dir, "plugin.tar")
				if r := buildxBuild(t, "-f", df, "--build-context", "store="+filepath.Join(tc.storeRoot, tc.storeDir), "--provenance=false", "-t", "example.org/host:1", "-o", output+",dest="+reference, tc.context); r.err != nil {
					t.Fatalf("docker buildx build -o %s failed:\n%s", output, r)
				}
				args := []string{"build", "--progress=plain", "-f", df, "-t", "example.org/host:1", "-o", output + ",dest=" + plugin, tc.context}
				if tc.storeRoot != "" {
					args = append(args, "--store-root", tc.storeRoot)
				}
				_, progress := mustPluginEnv(t, buildkitEnv, args...)
				if got := strings.Contains(progress, "write the image on the host"); got != tc.onHost {
					t.Errorf("-o %s: written on the host: %v, want %v:\n%s", output, got, tc.onHost, progress)
				}
				if builder := strings.Contains(progress, "building with"); builder == tc.onHost {
					t.Errorf("-o %s: a builder used: %v, want %v:\n%s", output, builder, !tc.onHost, progress)
				}
				want, got := readTar(t, reference), readTar(t, plugin)
				if !slices.Equal(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got))) {
					t.Errorf("-o %s: the archives hold other files:\nfrontend: %v\nplugin:   %v", output, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)))
				}
				for _, name := range []string{"index.json", "manifest.json", "oci-layout"} {
					if !bytes.Equal(want[name], got[name]) {
						t.Errorf("-o %s: %s differs:\nfrontend: %s\nplugin:   %s", output, name, want[name], got[name])
					}
				}
			}
			// Pushed (gzip forced, as the plugin pushes): the same manifest,
			// its blobs uploaded by the plugin.
			repo := bed.registry + "/storepack-e2e/host-image-" + tc.name
			if r := buildxBuild(t, "-f", df, "--build-context", "store="+filepath.Join(tc.storeRoot, tc.storeDir), "--provenance=false", "-o", "type=image,push=true,compression=gzip,force-compression=true,name="+repo+":frontend", tc.context); r.err != nil {
				t.Fatalf("docker buildx build --push failed:\n%s", r)
			}
			args := []string{"build", "--progress=plain", "-f", df, "-t", repo + ":plugin", "--push", tc.context}
			if tc.storeRoot != "" {
				args = append(args, "--store-root", tc.storeRoot)
			}
			_, progress := mustPluginEnv(t, buildkitEnv, args...)
			if got := strings.Contains(progress, "write the image on the host and push"); got != tc.onHost {
				t.Errorf("--push: written on the host: %v, want %v:\n%s", got, tc.onHost, progress)
			}
			frontendImages, pluginImages := readImages(t, repo, "frontend"), readImages(t, repo, "plugin")
			if len(frontendImages) != 1 || len(pluginImages) != 1 || !reflect.DeepEqual(frontendImages[0].manifest, pluginImages[0].manifest) {
				t.Errorf("--push: the pushed manifests differ:\nfrontend: %+v\nplugin:   %+v", frontendImages, pluginImages)
			}
		})
	}
}
