//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
)

// engine is one Docker Engine of the test bed (TESTBED_ENGINES): Debian's
// 20.10, and Docker 28 with the classic overlay2 image store and with the
// containerd image store.
type engine struct {
	name string // docker20.10, docker28-classic, docker28-containerd
	host string // its DOCKER_HOST
}

// containerdStore: the engine keeps its images in containerd's image store.
func (e engine) containerdStore() bool { return strings.HasSuffix(e.name, "-containerd") }

// merges: the engine's BuildKit has MergeOp, so storepack builds there
// with the Merge method, as on buildkitd. Docker 28's has it with the
// containerd image store only; on its classic store, as on Docker 20.10's
// (v0.8 line), storepack builds with Chain.
func (e engine) merges() bool { return e.containerdStore() }

// layersAsBuildkitd: the engine's builds have buildkitd's diffIDs, with
// either method (Docker 28); Docker 20.10's have diffIDs of their own.
func (e engine) layersAsBuildkitd() bool { return e.name != "docker20.10" }

// bedEngines lists the test bed's engines, 20.10 first.
func bedEngines() ([]engine, error) {
	var es []engine
	for _, f := range strings.Fields(os.Getenv("TESTBED_ENGINES")) {
		name, host, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("TESTBED_ENGINES: %q is not NAME=DOCKER_HOST", f)
		}
		es = append(es, engine{name: name, host: host})
	}
	if len(es) == 0 || es[0].host != os.Getenv("DOCKER_HOST") {
		return nil, fmt.Errorf("TESTBED_ENGINES %q does not start with DOCKER_HOST's engine", os.Getenv("TESTBED_ENGINES"))
	}
	return es, nil
}

// engineTest is one test of the engine matrix.
type engineTest struct {
	name string
	run  func(t *testing.T, e engine)
}

// runOnEngines runs each test once per engine, as BuildKit's integration
// tests run one suite over a worker matrix: subtest NAME/engine=ENGINE, with
// DOCKER_HOST set to that engine for its duration, so that every docker and
// docker storepack command of the test (the helpers take the environment
// of this process) talks to it.
func runOnEngines(t *testing.T, tests ...engineTest) {
	t.Helper()
	es, err := bedEngines()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, e := range es {
				t.Run("engine="+e.name, func(t *testing.T) {
					t.Setenv("DOCKER_HOST", e.host)
					tc.run(t, e)
				})
			}
		})
	}
}

// loadFrontendIntoEngines copies the frontend image that installFrontend
// built into Docker 20.10 into every other engine of the bed, where
// `# syntax=storepack` finds it as storepack:latest.
func loadFrontendIntoEngines() error {
	es, err := bedEngines()
	if err != nil {
		return err
	}
	saved := filepath.Join(bed.dir, "tmp", "frontend.tar")
	defer os.Remove(saved)
	if out, err := exec.Command(bed.docker, "save", "-o", saved, "storepack:latest").CombinedOutput(); err != nil {
		return fmt.Errorf("docker save storepack:latest: %w\n%s", err, out)
	}
	for _, e := range es[1:] {
		if out, err := exec.Command(bed.docker, "-H", e.host, "load", "-i", saved).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: docker load of the frontend image: %w\n%s", e.name, err, out)
		}
	}
	return nil
}

// imageDiffIDs returns the diffIDs the engine records for ref.
func imageDiffIDs(t *testing.T, ref string) []string {
	t.Helper()
	return strings.Fields(must(t, nil, bed.docker, "image", "inspect", "-f", `{{range .RootFS.Layers}}{{println .}}{{end}}`, ref))
}

// TestEngines runs the engine-facing tests on every engine of the bed.
func TestEngines(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest(c.dir+"/result", c.dir+"/path-info.json"))
	// The diffIDs of the same manifest built on buildkitd: Docker 28, with
	// either image store, must give the same; and on each engine docker
	// build and the plugin give the same.
	oci := filepath.Join(t.TempDir(), "buildkitd.tar")
	mustPluginEnv(t, buildkitEnv, "build", "-q", "-f", df, "-o", "type=oci,dest="+oci, "/")
	merged := readArchive(t, oci).diffIDs()
	dockerBuilt := map[string][]string{}
	multiDir := multiarchClosures(t, "engines")
	multiMF := multiarchManifest(t, multiDir, "LINK /bin -> bin", `ENTRYPOINT ["/bin/hello"]`)
	v1 := nixClosure(t, "--argstr", "appVersion", "1")
	v2 := nixClosure(t, "--argstr", "appVersion", "2")

	runOnEngines(t,
		engineTest{"docker build with the frontend", func(t *testing.T, e engine) {
			tag := "storepack-e2e/engines:docker-build"
			engineBuildRunCheck(t, df, tag, c)
			dockerBuilt[e.name] = imageDiffIDs(t, tag)
			if got := dockerBuilt[e.name]; e.layersAsBuildkitd() && !slices.Equal(got, merged) {
				t.Errorf("diffIDs %v, buildkitd's %v", got, merged)
			}
		}},
		engineTest{"plugin build and run", func(t *testing.T, e engine) {
			// The engine's own builder builds the plugin's image, as it
			// builds docker build's: the same layers.
			tag := "storepack-e2e/engines:plugin"
			_, progress := mustPluginEnv(t, engineEnv, "build", "--progress=plain", "-f", df, "-t", tag, "/")
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag); removeRunImages(t); noRunContainers(t) })
			if strings.Contains(progress, "write the image on the host") {
				t.Errorf("the image was written on the host, not by the engine's builder:\n%s", progress)
			}
			got := imageDiffIDs(t, tag)
			if want, ok := dockerBuilt[e.name]; ok && !slices.Equal(got, want) {
				t.Errorf("diffIDs %v, docker build's %v", got, want)
			}
			if e.layersAsBuildkitd() && !slices.Equal(got, merged) {
				t.Errorf("diffIDs %v, buildkitd's %v", got, merged)
			}
			if out := dockerRun(t, "--rm", tag); strings.TrimSpace(out) != greeting {
				t.Errorf("docker run printed %q, want %q", out, greeting)
			}
			if out, stderr, code := pluginRun(t, engineEnv, nil, filepath.Join(c.dir, "result")); code != 0 || strings.TrimSpace(out) != greeting {
				t.Errorf("docker storepack run: exit %d, stdout %q, want %q\nstderr:\n%s", code, out, greeting, stderr)
			}
		}},
		engineTest{"multi-platform build into the engine", func(t *testing.T, e engine) {
			// The containerd image store holds every platform in one
			// image; the classic stores hold one, which the plugin says.
			tag := "storepack-e2e/engines:multi-platform"
			_, stderr, err := runPluginEnv(engineEnv, "build", "-q", "--load", "--platform", "linux/amd64,linux/arm/v7", "-f", multiMF, "-t", tag, multiDir)
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
			if !e.containerdStore() {
				want := "--load of 2 platforms: the engine's image store holds one platform per image; use --push, or -o type=oci,dest=FILE and docker storepack load --platform P FILE\n"
				if err == nil || stderr != want {
					t.Errorf("err %v, stderr %q; want the one line %q", err, stderr, want)
				}
				checkNotTagged(t, tag)
				return
			}
			if err != nil {
				t.Fatalf("build: %v\n%s", err, stderr)
			}
			for _, p := range []struct{ platform, arch string }{{"linux/amd64", "amd64"}, {"linux/arm/v7", "arm"}} {
				if out := dockerRun(t, "--rm", "--platform", p.platform, tag); !strings.Contains(out, "arch="+p.arch+"\n") || !strings.Contains(out, greeting) {
					t.Errorf("docker run --platform %s printed %q, want arch=%s and %q", p.platform, out, p.arch, greeting)
				}
			}
		}},
		engineTest{"run of a Guix store", func(t *testing.T, e engine) {
			t.Cleanup(func() { removeRunImages(t); noRunContainers(t) })
			g := guixClosure(t)
			if out, stderr, code := pluginRun(t, engineEnv, nil, "--store-root", g.root, filepath.Join(g.root, "result")); code != 0 || strings.TrimSpace(out) != "hello from guix" {
				t.Errorf("docker storepack run: exit %d, stdout %q, want %q\nstderr:\n%s", code, out, "hello from guix", stderr)
			}
		}},
		engineTest{"load from buildkitd sends only new layers", func(t *testing.T, e engine) {
			// Release 2 under release 1's tag, built on buildkitd and
			// loaded: a classic store is sent only the layers it lacks
			// (its load takes the others from its own store), and the
			// image is release 2 whole.
			tag := "storepack-e2e/engines:rebuilt"
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
			var progress string
			for _, c := range []closure{v1, v2} {
				df := writeFile(t, c.dir, "rebuilt.storepack", manifest(c.dir+"/result", c.dir+"/path-info.json"))
				_, progress = mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "--load", "-f", df, "-t", tag, "/")
			}
			if !strings.Contains(progress, "write the image on the host and load it into the engine") {
				t.Errorf("not written on the host and loaded:\n%s", progress)
			}
			held := regexp.MustCompile(`(\d+) layers held by the engine already, not sent`).FindStringSubmatch(progress)
			switch {
			case e.containerdStore() && held != nil:
				t.Errorf("the containerd store's build left layers out:\n%s", progress)
			case !e.containerdStore() && held == nil:
				t.Errorf("release 2 loaded every layer again:\n%s", progress)
			case held != nil:
				if n, _ := strconv.Atoi(held[1]); n == 0 || n >= len(imageDiffIDs(t, tag)) {
					t.Errorf("%s of %d layers held by the engine: want some, not all", held[1], len(imageDiffIDs(t, tag)))
				}
			}
			saved := filepath.Join(t.TempDir(), "image.tar")
			must(t, nil, bed.docker, "save", "-o", saved, tag)
			checkImage(t, readArchive(t, saved), v2, time.Unix(1, 0))
		}},
		engineTest{"previous plan in the engine", func(t *testing.T, e engine) {
			// Release 2 built into the engine reads release 1's plan
			// from the engine's image, and keeps its layers.
			first, second := "storepack-e2e/engines:release1", "storepack-e2e/engines:release2"
			for _, r := range []struct {
				c     closure
				tag   string
				extra string
			}{{v1, first, "LAYERS --max=3"}, {v2, second, "LAYERS --max=3 --previous=" + first}} {
				df := writeFile(t, r.c.dir, "engines.storepack", manifest(r.c.dir+"/result", r.c.dir+"/path-info.json", r.extra))
				mustPluginEnv(t, engineEnv, "build", "-q", "-f", df, "-t", r.tag, "/")
				t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", r.tag) })
			}
			checkReused(t, v1, imagePlan(t, first), imagePlan(t, second), imageDiffIDs(t, first), imageDiffIDs(t, second))
			// A recorded plan the default strategy would not make, in an
			// image only the engine has under that name: its layer is kept.
			recorded, base := unusualPlan(v1)
			local, third := "storepack-e2e-local/engines:recorded", "storepack-e2e/engines:release2-recorded"
			imageRecording(t, recorded, local, bed.registry+"/storepack-e2e/engines-"+e.name+":recorded")
			df := writeFile(t, v2.dir, "recorded.storepack", manifest(v2.dir+"/result", v2.dir+"/path-info.json", "LAYERS --max=3 --previous="+local))
			mustPluginEnv(t, engineEnv, "build", "-q", "-f", df, "-t", third, "/")
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", third) })
			if plan := imagePlan(t, third); !slices.ContainsFunc(plan.Layers, func(l layering.Layer) bool { return slices.Equal(l.Paths, base) }) {
				t.Errorf("built with --previous=%s, the plan does not keep its layer of %v:\n%+v", local, base, plan)
			}
		}},
		engineTest{"pushed layers are compressed", func(t *testing.T, e engine) {
			// Built by the engine, and built on buildkitd and loaded:
			// docker push sends gzip layers, whatever the image store
			// keeps (the containerd store pushes its blobs as they are).
			repo := bed.registry + "/storepack-e2e/engines-push-" + e.name
			for _, b := range []struct {
				tag  string
				env  []string
				args []string
			}{
				{repo + ":built", engineEnv, nil},
				{repo + ":loaded", nil, []string{"--builder", os.Getenv("BUILDX_BUILDER"), "--load"}},
			} {
				args := append([]string{"build", "-q", "-f", df, "-t", b.tag}, b.args...)
				mustPluginEnv(t, b.env, append(args, "/")...)
				t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", b.tag) })
				must(t, nil, bed.docker, "push", "-q", b.tag)
				var m ocispecs.Manifest
				tag := strings.TrimPrefix(b.tag, repo+":")
				data := registryGet(t, repo, tag, ocispecs.MediaTypeImageManifest, "application/vnd.docker.distribution.manifest.v2+json")
				if err := json.Unmarshal(data, &m); err != nil || len(m.Layers) == 0 {
					t.Fatalf("%s: manifest %v\n%s", b.tag, err, data)
				}
				for _, l := range m.Layers {
					if !strings.HasSuffix(l.MediaType, "gzip") {
						t.Errorf("%s: layer %s pushed as %s (%d bytes), want gzip", b.tag, l.Digest, l.MediaType, l.Size)
					}
				}
			}
		}},
	)
}

// imagePlan is the layer plan that the engine's image ref records.
func imagePlan(t *testing.T, ref string) layering.Plan {
	t.Helper()
	label := must(t, nil, bed.docker, "image", "inspect", "-f", `{{index .Config.Labels "`+layerllb.PlanLabel+`"}}`, ref)
	var p layering.Plan
	if err := json.Unmarshal([]byte(label), &p); err != nil {
		t.Fatalf("%s: label %s: %v\n%s", ref, layerllb.PlanLabel, err, label)
	}
	return p
}
