//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/moby/moby/client"
)

// TestLoadKeepsIndex loads a two-platform OCI archive platform by platform,
// each under a name of its own, into every engine of the bed. The
// containerd image store keeps the archive's index with both platforms'
// images (after its garbage collection), under both names, and runs the
// engine's platform unless another is asked for; the classic stores keep
// one platform per image, which the plugin says in one line.
func TestLoadKeepsIndex(t *testing.T) {
	installPlugin(t)
	dir := multiarchClosures(t, "loadindex")
	mf := multiarchManifest(t, dir, "LINK /bin -> bin", `ENTRYPOINT ["/bin/hello"]`)
	oci := filepath.Join(t.TempDir(), "two.tar")
	mustPluginEnv(t, buildkitEnv, "build", "-q", "-f", mf, "--platform", "linux/amd64,linux/arm/v7", "-o", "type=oci,dest="+oci+",name=storepack-e2e/loadindex:archive", dir)
	index := archiveIndexDigest(t, oci)
	loads := []struct{ platform, arch, variant, tag string }{
		{"linux/amd64", "amd64", "", "storepack-e2e/loadindex:amd64"},
		{"linux/arm/v7", "arm", "v7", "storepack-e2e/loadindex:arm"},
	}
	runOnEngines(t, engineTest{"load platform by platform", func(t *testing.T, e engine) {
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", loads[0].tag, loads[1].tag) })
		for _, l := range loads {
			_, stderr := loadOK(t, nil, "--platform", l.platform, "-t", l.tag, oci)
			want := "Loading the " + l.platform + " image of " + oci + " alone: the engine's image store keeps one platform per image, not the index\n"
			if e.containerdStore() {
				want = "Loading the " + l.platform + " image of " + oci + ", into the engine's image of its index\n"
			}
			if stderr != want {
				t.Errorf("load --platform %s: stderr %q, want %q", l.platform, stderr, want)
			}
		}
		if !e.containerdStore() {
			for _, l := range loads {
				checkLoaded(t, l.tag, l.arch, l.variant)
				checkPluginRuns(t, l.arch, l.tag)
			}
			return
		}
		containerdGC(t, e)
		for _, l := range loads {
			id, available := indexImages(t, e, l.tag)
			if id != index || !slices.Equal(available, []string{"linux/amd64", "linux/arm/v7"}) {
				t.Errorf("%s: image %s holding %v; want the archive's index %s holding linux/amd64 and linux/arm/v7", l.tag, id, available, index)
			}
		}
		// Either name is the index: run takes the engine's platform, or
		// the one asked for.
		checkPluginRuns(t, "amd64", loads[1].tag)
		checkPluginRuns(t, "arm", "--platform", "linux/arm/v7", loads[0].tag)
		checkPluginRuns(t, "amd64", "--platform", "linux/amd64", loads[1].tag)
	}})
}

// checkPluginRuns runs `docker storepack run ARGS` and checks that it ran
// arch's program.
func checkPluginRuns(t *testing.T, arch string, args ...string) {
	t.Helper()
	if out, stderr, code := pluginRun(t, nil, nil, args...); code != 0 || !strings.Contains(out, "arch="+arch+"\n") || !strings.Contains(out, greeting) {
		t.Errorf("docker storepack run %s: exit %d, stdout %q, want arch=%s and %q\nstderr:\n%s", strings.Join(args, " "), code, out, arch, greeting, stderr)
	}
}

// archiveIndexDigest is the digest of the image index that an OCI
// archive's index.json names.
func archiveIndexDigest(t *testing.T, file string) string {
	t.Helper()
	var top struct {
		Manifests []struct{ MediaType, Digest string }
	}
	if err := json.Unmarshal(readTar(t, file)["index.json"], &top); err != nil || len(top.Manifests) != 1 || !strings.HasSuffix(top.Manifests[0].MediaType, "index.v1+json") {
		t.Fatalf("%s: index.json does not name one image index (%v): %+v", file, err, top)
	}
	return top.Manifests[0].Digest
}

// containerdGC runs a garbage collection of the containerd namespace of
// the engine's images, as containerd runs one at its own time: deleting
// a lease synchronously collects before it returns.
func containerdGC(t *testing.T, e engine) {
	t.Helper()
	ctr := []string{"-a", filepath.Join(bed.dir, "containerd", "containerd.sock"), "-n", e.name, "leases"}
	lease := "storepack-e2e-gc"
	for _, args := range [][]string{{"create", "--id", lease}, {"rm", "--sync", lease}} {
		if out, err := exec.Command("ctr", append(ctr, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ctr leases %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// indexImages inspects ref in the engine through its API: the image's ID
// and the platforms of the images whose content it holds.
func indexImages(t *testing.T, e engine, ref string) (string, []string) {
	t.Helper()
	c, err := client.New(client.WithHost(e.host))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	img, err := c.ImageInspect(context.Background(), ref, client.ImageInspectWithManifests(true))
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	var available []string
	for _, m := range img.Manifests {
		if m.Kind == "image" && m.Available && m.Descriptor.Platform != nil {
			available = append(available, platforms.Format(*m.Descriptor.Platform))
		}
	}
	slices.Sort(available)
	return img.ID, available
}
