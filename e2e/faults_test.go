//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/layering"
)

// faultBound is how long a build facing a failing registry may take: the
// product's bound on a registry's answer, and time to build the rest. A
// build still running then is killed and fails its test: a hang.
const faultBound = manifest2llb.RegistryTimeout + 2*time.Minute

// TestRegistryFaults: a registry that refuses connections, stalls, resets
// them or answers 503 (a fault-injecting proxy in front of the test bed's
// registry) fails a build with an error naming it, within the bound, when
// --previous names an image there, when FROM does (through the plugin's
// build and plan, and through the frontend) and when the build pushes there; a previous image
// taken from -t is given up with a warning, and the image is the one built
// without a previous image. Through a proxy that passes everything on,
// every case works: the failures are the faults'.
func TestRegistryFaults(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	// A previous image whose recorded plan the strategy would not make, so
	// that reading it shows in the plan built.
	recorded, base := unusualPlan(c)
	imageRecording(t, recorded, "", bed.registry+"/storepack-e2e/faults:1")
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --max=3"))
	withoutPrevious := filepath.Join(t.TempDir(), "without.tar")
	mustPluginEnv(t, buildkitEnv, "build", "--previous", "", "-f", df, "-o", "type=oci,dest="+withoutPrevious, c.dir)
	reference := readArchive(t, withoutPrevious)
	keepsBase := func(img *image) bool {
		return slices.ContainsFunc(img.plan(t).Layers, func(l layering.Layer) bool { return slices.Equal(l.Paths, base) })
	}
	if keepsBase(reference) {
		t.Fatalf("the plan without a previous image has the recorded layer of %v: the test tells nothing", base)
	}

	for _, mode := range append([]fault{passThrough}, faults...) {
		t.Run(string(mode), func(t *testing.T) {
			proxy := newFaultProxy(t, mode)
			previous := proxy.addr + "/storepack-e2e/faults:1"
			fails := mode != passThrough
			// What each fault's errors say.
			cause := map[fault]string{
				refuse:      "connect: connection refused",
				stall:       "the registry " + proxy.addr + " did not answer within " + manifest2llb.RegistryTimeout.String(),
				reset:       "connection reset by peer",
				serverError: "503 Service Unavailable",
			}[mode]
			// check fails t unless r failed saying want and the fault's
			// cause, or, through passThrough, worked.
			check := func(what string, r result, want string) {
				t.Helper()
				switch {
				case strings.Contains(r.out, "still running after"), r.err != nil && strings.Contains(r.err.Error(), "still running after"):
					t.Errorf("%s: hung:\n%s", what, r)
				case !fails && r.err != nil:
					t.Errorf("%s: failed through a proxy that passes everything on:\n%s", what, r)
				case fails && r.err == nil:
					t.Errorf("%s: succeeded:\n%s", what, r)
				case fails && (!strings.Contains(r.out, want) || !strings.Contains(r.out, cause)):
					t.Errorf("%s: the error does not say %q and %q:\n%s", what, want, cause, r)
				}
			}
			plugin := func(args ...string) result {
				return cmdWithin(faultBound, buildkitEnv, "docker", append([]string{"storepack", "build", "--progress=plain"}, args...)...)
			}

			oci := filepath.Join(t.TempDir(), "named.tar")
			check("--previous", plugin("--previous", previous, "-f", df, "-o", "type=oci,dest="+oci, c.dir), "--previous: "+previous+": ")
			if fails {
				if _, err := os.Stat(oci); err == nil {
					t.Errorf("--previous: a failed build wrote %s", oci)
				}
			} else if !keepsBase(readArchive(t, oci)) {
				t.Errorf("--previous through the proxy: the plan does not keep the recorded layer of %v", base)
			}

			// The image -t names as the previous image: a warning.
			oci = filepath.Join(t.TempDir(), "tagged.tar")
			r := plugin("-t", previous, "-f", df, "-o", "type=oci,dest="+oci, c.dir)
			if r.err != nil {
				t.Fatalf("-t: the build failed:\n%s", r)
			}
			img := readArchive(t, oci)
			if fails {
				if !strings.Contains(r.out, "previous image "+previous+" (linux/amd64): cannot read its layer plan: ") {
					t.Errorf("-t: no warning that the previous image cannot be read:\n%s", r)
				}
				sameImage(t, reference, img)
			} else if !keepsBase(img) {
				t.Errorf("-t through the proxy: the plan does not keep the recorded layer of %v", base)
			}

			from := writeFile(t, c.dir, "from.storepack", fromManifest(proxy.addr+"/library/busybox:latest", "./result", "path-info.json"))
			want := "from.storepack:2: FROM " + proxy.addr + "/library/busybox:latest: "
			check("FROM, plan", cmdWithin(faultBound, nil, "docker", "storepack", "plan", from), want)
			check("FROM, plugin", plugin("-f", from, "-o", "type=oci,dest="+filepath.Join(t.TempDir(), "from.tar"), c.dir), want)
			check("FROM, frontend", cmdWithin(faultBound, nil, "docker", "buildx", "build", "--builder", os.Getenv("BUILDX_BUILDER"), "--progress=plain",
				"-f", from, "--build-context", "store=/nix/store", "-o", "type=oci,dest="+filepath.Join(t.TempDir(), "from.tar"), c.dir), want)

			pushed := proxy.addr + "/storepack-e2e/faults:pushed-" + string(mode)
			check("--push", plugin("--previous", "", "-t", pushed, "--push", "-f", df, c.dir), "push "+pushed+": ")
			if got := registryHas(t, "storepack-e2e/faults", "pushed-"+string(mode)); got == fails {
				t.Errorf("--push: the registry has the tag: %v", got)
			}
		})
	}
}

// registryHas tells whether the test bed's registry has repo:tag.
func registryHas(t *testing.T, repo, tag string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, "http://"+bed.registry+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mediaType := range []string{ocispecs.MediaTypeImageIndex, ocispecs.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"} {
		req.Header.Add("Accept", mediaType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestPushStalled: a registry that stops answering in the middle of a
// push ends the build within the bound with an error naming the image and
// the registry, and nothing is tagged there. The plugin's push of an image
// written on the host, to a registry that takes no upload, is bounded by
// containerd's wait for an answer within imagelookup.RegistryIdleTimeout;
// the builder's push (an image with an SBOM, which the builder writes), to
// a registry that dies once the first upload starts, after answering the
// plugin's check before the build, by that check asked again while the
// builder pushes (buildkitd's push has no bound of its own); to a registry
// that answers reads and takes no upload, by the upload that check starts.
func TestPushStalled(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json"))
	for _, tc := range []struct {
		name, repo string
		mode       fault
		args       []string
		byBuilder  bool // the builder pushes (--sbom), not the plugin
		// wants are what the error says, given the image and the proxy.
		wants func(ref, proxy string) []string
	}{{
		name: "on the host", repo: "storepack-e2e/stalled", mode: stallUploads,
		wants: func(ref, proxy string) []string { return []string{"push " + ref + " to the registry " + proxy + ": "} },
	}, {
		name: "by the builder", repo: "storepack-e2e/builder-stalled", mode: stallMidPush, args: []string{"--sbom"}, byBuilder: true,
		wants: func(ref, proxy string) []string {
			return []string{"the builder's push stopped: push " + ref + ": ", "the registry " + proxy + " did not answer within "}
		},
	}, {
		// Reads answered all along: the read check passes, the upload
		// probe does not.
		name: "by the builder, uploads stalled", repo: "storepack-e2e/builder-uploads-stalled", mode: stallUploads, args: []string{"--sbom"}, byBuilder: true,
		wants: func(ref, proxy string) []string {
			return []string{"the builder's push stopped: push " + ref + ": ", "the registry " + proxy + " did not take an upload within "}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := newFaultProxy(t, tc.mode)
			ref := proxy.addr + "/" + tc.repo + ":1"
			args := append([]string{"storepack", "build", "--progress=plain", "--previous", "", "-t", ref, "--push", "-f", df}, tc.args...)
			r := cmdWithin(faultBound, buildkitEnv, "docker", append(args, c.dir)...)
			switch {
			case strings.Contains(r.out, "still running after"), r.err != nil && strings.Contains(r.err.Error(), "still running after"):
				t.Fatalf("the push hung:\n%s", r)
			case r.err == nil:
				t.Fatalf("the push to a stalled registry succeeded:\n%s", r)
			case tc.byBuilder && !strings.Contains(r.out, "pushing layers"):
				t.Fatalf("the builder did not push (the test tells nothing):\n%s", r)
			}
			for _, want := range tc.wants(ref, proxy.addr) {
				if !strings.Contains(r.out, want) {
					t.Errorf("the error does not say %q:\n%s", want, r)
				}
			}
			if registryHas(t, tc.repo, "1") {
				t.Errorf("the stalled push left its tag")
			}
		})
	}
}
