//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// systems are the Nix systems of the multi-arch test with their platforms,
// Go architectures (which the test program prints), Debian architectures
// (the test bed's busybox) and ELF classes ("1": 32-bit, "2": 64-bit).
var systems = []struct{ system, platform, goarch, debarch, elfClass string }{
	{"x86_64-linux", "linux/amd64", "amd64", "amd64", "2"},
	{"i686-linux", "linux/386", "386", "i386", "1"},
	{"armv7l-linux", "linux/arm/v7", "arm", "armhf", "1"},
	{"mips64el-linux", "linux/mips64le", "mips64le", "mips64el", "2"},
}

// TestMultiArch builds one manifest for four platforms from per-system Nix
// closures, pushes one index, runs every platform's image on Docker 20.10
// (under qemu where foreign), and pushes a second release that uploads only
// the changed layers.
func TestMultiArch(t *testing.T) {
	repo := bed.registry + "/storepack-e2e/multi"
	platformList := systemPlatforms()

	// Release 1: closures tagged by Nix system name.
	dir1 := multiarchClosures(t, "1")
	df := multiarchManifest(t, dir1, `ENTRYPOINT ["${ROOT}/bin/hello"]`)
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "--platform", strings.Join(platformList, ","),
		"-t", repo+":1", "--push", dir1); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	images1 := checkIndex(t, repo, "1")
	shared := sharedLayer(t, images1)
	t.Logf("the architecture-independent layer %s is shared by all four platforms", shared)

	// The same build exported as an OCI archive holds the same index.
	oci := filepath.Join(t.TempDir(), "image.tar")
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "--platform", strings.Join(platformList, ","),
		"-o", "type=oci,dest="+oci, dir1); r.err != nil {
		t.Fatalf("OCI export failed:\n%s", r)
	}
	if got, want := ociPlatforms(t, oci), sortedCopy(platformList); !slices.Equal(got, want) {
		t.Errorf("OCI archive platforms %v, want %v", got, want)
	}

	for _, s := range systems {
		t.Run("run "+s.platform, func(t *testing.T) {
			must(t, nil, bed.docker, "pull", "--platform", s.platform, repo+":1")
			out := dockerRun(t, "--rm", "--platform", s.platform, repo+":1")
			if !strings.Contains(out, "arch="+s.goarch) || !strings.Contains(out, greeting) {
				t.Errorf("%s printed %q, want arch=%s and the greeting", s.platform, out, s.goarch)
			}
		})
	}

	// Release 2: only the application changed on every platform, and the
	// closures are untagged: their ELF files say which platform each is for.
	dir2 := multiarchClosures(t, "2")
	var m strings.Builder
	m.WriteString("# syntax=storepack\n")
	for _, s := range systems {
		fmt.Fprintf(&m, "CLOSURE ./result-%s\nGRAPH --platform=%s graph-%s.json\n", s.system, s.platform, s.system)
	}
	m.WriteString("ENTRYPOINT [\"${ROOT}/bin/hello\"]\n")
	df = writeFile(t, dir2, "app.storepack", m.String())
	logBefore := registryLogSize(t)
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "--platform", strings.Join(platformList, ","),
		"-t", repo+":2", "--push", dir2); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	images2 := checkIndex(t, repo, "2")
	old := map[string]bool{}          // release 1's layer blobs
	oldPaths := map[store.Path]bool{} // release 1's store paths
	for _, img := range images1 {
		for _, l := range img.manifest.Layers {
			old[l.Digest.String()] = true
		}
		for _, l := range img.plan.Layers {
			for _, p := range l.Paths {
				oldPaths[p] = true
			}
		}
	}
	var changed []string // layer blobs release 2 needs that release 1 did not have
	for _, img := range images2 {
		for i, l := range img.manifest.Layers {
			if old[l.Digest.String()] {
				continue
			}
			changed = append(changed, l.Digest.String())
			if i >= len(img.plan.Layers) || !slices.ContainsFunc(img.plan.Layers[i].Paths, func(p store.Path) bool { return !oldPaths[p] }) {
				t.Errorf("%s: layer %d changed but holds no new store path", platforms.Format(img.platform), i)
			}
		}
	}
	received := registryUploads(t, logBefore)
	var receivedLayers []string
	for _, d := range received {
		if slices.Contains(changed, d) {
			receivedLayers = append(receivedLayers, d)
		} else if isLayerOf(images2, d) {
			t.Errorf("the registry received layer %s, which release 1 already pushed", d)
		}
	}
	slices.Sort(changed)
	slices.Sort(receivedLayers)
	if !slices.Equal(slices.Compact(changed), receivedLayers) {
		t.Errorf("received layers %v, want exactly the changed ones %v", receivedLayers, changed)
	}
	if len(slices.Compact(changed)) != len(systems) {
		t.Errorf("%d changed layers, want one per platform (the application's)", len(changed))
	}
	configs := 0
	for _, img := range images2 {
		if slices.Contains(received, img.manifest.Config.Digest.String()) {
			configs++
		}
	}
	t.Logf("release 2 uploaded %d blobs: %d layers (the applications), %d image configs, %d attestation blobs", len(received), len(receivedLayers), configs, len(received)-len(receivedLayers)-configs)
}

// TestMultiArchErrors: a platform without a closure, and a closure tagged
// for a platform its binaries are not built for.
func TestMultiArchErrors(t *testing.T) {
	dir := multiarchClosures(t, "1")
	for _, tc := range []struct {
		name, manifest, platforms string
		want                      []string
	}{
		{"no closure for a platform",
			"CLOSURE ./result-x86_64-linux\nCLOSURE ./result-mips64el-linux\nGRAPH graph-x86_64-linux.json\nGRAPH graph-mips64el-linux.json\n",
			"linux/amd64,linux/arm64",
			[]string{"no CLOSURE for platform linux/arm64", "./result-mips64el-linux is built for linux/mips64le"}},
		{"tag disagrees with the binaries",
			"CLOSURE --platform=x86_64-linux ./result-mips64el-linux\nGRAPH graph-mips64el-linux.json\n",
			"linux/amd64",
			[]string{"app.storepack:2", "CLOSURE --platform=x86_64-linux: its binaries are built for linux/mips64le", "/libexec/archapp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			df := writeFile(t, dir, "app.storepack", "# syntax=storepack\n"+tc.manifest)
			r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "--platform", tc.platforms,
				"-o", "type=oci,dest="+filepath.Join(t.TempDir(), "x.tar"), dir)
			if r.err == nil {
				t.Fatalf("build succeeded:\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r)
				}
			}
		})
	}
}

// multiarchClosures builds the four per-system closures with Nix.
func multiarchClosures(t *testing.T, appVersion string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, nil, filepath.Join(bed.repo, "hack", "nix-multiarch.sh"), dir, "--argstr", "appVersion", appVersion)
	return dir
}

// multiarchManifest writes, in the directory of multiarchClosures, a
// manifest with one tagged CLOSURE and GRAPH per system, then extra.
func multiarchManifest(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	var m strings.Builder
	m.WriteString("# syntax=storepack\n")
	for _, s := range systems {
		fmt.Fprintf(&m, "CLOSURE --platform=%s ./result-%s\nGRAPH --platform=%s graph-%s.json\n", s.system, s.system, s.system, s.system)
	}
	m.WriteString(strings.Join(extra, "\n") + "\n")
	return writeFile(t, dir, "app.storepack", m.String())
}

// systemPlatforms lists the OCI platforms of systems.
func systemPlatforms() []string {
	var list []string
	for _, s := range systems {
		list = append(list, s.platform)
	}
	return list
}

// platformImage is one platform's image read from the registry.
type platformImage struct {
	platform ocispecs.Platform
	manifest ocispecs.Manifest
	config   ocispecs.Image
	plan     layering.Plan
}

func registryGet(t *testing.T, repo, ref string, accept ...string) []byte {
	t.Helper()
	name := strings.TrimPrefix(repo, bed.registry+"/")
	kind := "manifests"
	if strings.HasPrefix(ref, "blob:") {
		kind, ref = "blobs", strings.TrimPrefix(ref, "blob:")
	}
	req, err := http.NewRequest("GET", fmt.Sprintf("http://%s/v2/%s/%s/%s", bed.registry, name, kind, ref), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accept {
		req.Header.Add("Accept", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s %s: %s %v\n%s", kind, ref, resp.Status, err, data)
	}
	return data
}

// readImages reads the images of a tag: every platform of an index
// (attestations left out), or the one image of a plain manifest.
func readImages(t *testing.T, repo, tag string) []platformImage {
	t.Helper()
	data := registryGet(t, repo, tag, ocispecs.MediaTypeImageIndex, ocispecs.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json")
	var top struct {
		MediaType string
		Manifests []ocispecs.Descriptor
	}
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	if top.Manifests == nil {
		return []platformImage{readImage(t, repo, data, nil)}
	}
	var images []platformImage
	for _, d := range top.Manifests {
		if d.Platform == nil {
			t.Errorf("index entry %s has no platform", d.Digest)
			continue
		}
		if d.Platform.OS == "unknown" { // attestation manifests
			continue
		}
		images = append(images, readImage(t, repo, registryGet(t, repo, d.Digest.String(), d.MediaType), d.Platform))
	}
	return images
}

// readImage reads one image manifest's config and plan; indexed, when not
// nil, is the platform the index lists for it, which the config must match.
func readImage(t *testing.T, repo string, manifest []byte, indexed *ocispecs.Platform) platformImage {
	t.Helper()
	var img platformImage
	if err := json.Unmarshal(manifest, &img.manifest); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(registryGet(t, repo, "blob:"+img.manifest.Config.Digest.String()), &img.config); err != nil {
		t.Fatal(err)
	}
	img.platform = img.config.Platform
	if indexed != nil && (img.config.OS != indexed.OS || img.config.Architecture != indexed.Architecture || img.config.Variant != indexed.Variant) {
		t.Errorf("index says %s, config says %s", platforms.Format(*indexed), platforms.Format(img.platform))
	}
	if err := json.Unmarshal([]byte(img.config.Config.Labels[layerllb.PlanLabel]), &img.plan); err != nil {
		t.Fatal(err)
	}
	return img
}

// checkIndex checks that a tag lists exactly the four platforms and
// returns their images.
func checkIndex(t *testing.T, repo, tag string) []platformImage {
	t.Helper()
	images := readImages(t, repo, tag)
	var got, want []string
	for _, s := range systems {
		want = append(want, s.platform)
	}
	for _, img := range images {
		got = append(got, platforms.Format(img.platform))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("index platforms %v, want %v", got, want)
	}
	return images
}

// sharedLayer finds the layer of the store path every platform's closure
// shares and checks it has one digest everywhere.
func sharedLayer(t *testing.T, images []platformImage) string {
	t.Helper()
	count := map[store.Path]int{}
	for _, img := range images {
		for _, l := range img.plan.Layers {
			for _, p := range l.Paths {
				count[p]++
			}
		}
	}
	var shared *store.Path
	for p, n := range count {
		if n == len(images) {
			shared = &p
		}
	}
	if shared == nil {
		t.Fatal("no store path is shared by all platforms")
	}
	digest := ""
	for _, img := range images {
		for i, l := range img.plan.Layers {
			if !slices.Contains(l.Paths, *shared) {
				continue
			}
			d := img.manifest.Layers[i].Digest.String()
			if digest == "" {
				digest = d
			} else if d != digest {
				t.Errorf("%s: the shared path %s is in layer %s, elsewhere %s", platforms.Format(img.platform), shared, d, digest)
			}
		}
	}
	return digest
}

func isLayerOf(images []platformImage, digest string) bool {
	for _, img := range images {
		for _, l := range img.manifest.Layers {
			if l.Digest.String() == digest {
				return true
			}
		}
	}
	return false
}

// ociPlatforms lists the platforms of the image index in an OCI archive.
func ociPlatforms(t *testing.T, file string) []string {
	t.Helper()
	blobs := readTar(t, file)
	data := blobs["index.json"]
	var got []string
	for depth := 0; depth < 3 && got == nil; depth++ {
		var idx ocispecs.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			t.Fatal(err)
		}
		for _, d := range idx.Manifests {
			switch {
			case d.MediaType == ocispecs.MediaTypeImageIndex:
				data = blobs[blobPath(d.Digest.String())]
			case d.Platform != nil && d.Platform.OS != "unknown":
				got = append(got, platforms.Format(*d.Platform))
			}
		}
	}
	slices.Sort(got)
	return got
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func registryLog() string { return filepath.Join(os.Getenv("TESTBED_DIR"), "logs", "registry.log") }

func registryLogSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(registryLog())
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

var uploadDigest = regexp.MustCompile(`http\.request\.method=PUT .*http\.request\.uri="[^"]*/blobs/uploads/[^"]*[?&]digest=([^"&]+)".*http\.response\.status=201`)

// registryUploads lists the blobs the registry received since offset of its log.
func registryUploads(t *testing.T, offset int64) []string {
	t.Helper()
	f, err := os.Open(registryLog())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var digests []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := uploadDigest.FindStringSubmatch(sc.Text()); m != nil {
			d, err := url.QueryUnescape(m[1])
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, d)
		}
	}
	return digests
}
