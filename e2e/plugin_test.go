//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

var pluginOnce struct {
	sync.Once
	err error
}

// installPlugin puts the docker-storepack that TestMain built (make build)
// into the test bed's DOCKER_CONFIG/cli-plugins, where `docker` finds it.
func installPlugin(t *testing.T) {
	t.Helper()
	pluginOnce.Do(func() {
		data, err := os.ReadFile(filepath.Join(bed.repo, "bin", "docker-storepack"))
		if err != nil {
			pluginOnce.err = err
			return
		}
		dir := filepath.Join(os.Getenv("DOCKER_CONFIG"), "cli-plugins")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			pluginOnce.err = err
			return
		}
		pluginOnce.err = os.WriteFile(filepath.Join(dir, "docker-storepack"), data, 0o755)
	})
	if pluginOnce.err != nil {
		t.Fatalf("install the plugin: %v", pluginOnce.err)
	}
}

// runPlugin runs `docker storepack ARGS` and returns its stdout and
// stderr apart, so that stdout can be parsed.
func runPlugin(args ...string) (stdout, stderr string, err error) {
	c := boundedCommand(commandBound, nil, "docker", append([]string{"storepack"}, args...)...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err = c.Run()
	return out.String(), errOut.String(), err
}

// mustPlugin runs `docker storepack ARGS` and returns its stdout.
func mustPlugin(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := runPlugin(args...)
	if err != nil {
		t.Fatalf("docker storepack %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr, stdout)
	}
	return stdout
}

// stdoutOf runs a command and returns its stdout.
func stdoutOf(t *testing.T, name string, args ...string) string {
	t.Helper()
	c := boundedCommand(commandBound, nil, name, args...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// pluginGraph loads a graph in any format store.Load reads.
func pluginGraph(t *testing.T, name, data string) *store.Graph {
	t.Helper()
	g, err := store.Load(name, strings.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, data)
	}
	return g
}

// pluginDecodePlan decodes plan --format json output.
func pluginDecodePlan(t *testing.T, name, data string) layering.Plan {
	t.Helper()
	var plan layering.Plan
	if err := json.Unmarshal([]byte(data), &plan); err != nil {
		t.Fatalf("%s: not a plan: %v\n%s", name, err, data)
	}
	return plan
}

// pluginPlanPaths returns the paths of a plan, sorted.
func pluginPlanPaths(plan layering.Plan) []store.Path {
	var paths []store.Path
	for _, l := range plan.Layers {
		paths = append(paths, l.Paths...)
	}
	slices.SortFunc(paths, store.Path.Compare)
	return paths
}

// TestPluginGraphAndPlan runs `docker storepack graph` and `plan` on a Nix
// closure: the graph is Nix's (read from its database: NAR hashes
// included), and the plan holds exactly the closure.
func TestPluginGraphAndPlan(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	result := filepath.Join(c.dir, "result")

	got := pluginGraph(t, "docker storepack graph", mustPlugin(t, "graph", result))
	want := pluginGraph(t, "nix path-info", stdoutOf(t, "nix", "path-info", "--json", "-r", result))
	if !slices.Equal(got.Paths(), want.Paths()) || !slices.Equal(got.Paths(), c.paths) {
		t.Errorf("graph paths:\n%v\nnix path-info:\n%v\nnix-store -qR:\n%v", got.Paths(), want.Paths(), c.paths)
	}
	for _, p := range want.Paths() {
		g, _ := got.Info(p)
		w, _ := want.Info(p)
		gr := slices.SortedFunc(slices.Values(g.References), store.Path.Compare)
		wr := slices.SortedFunc(slices.Values(w.References), store.Path.Compare)
		if !slices.Equal(gr, wr) || g.NarSize != w.NarSize || g.NarHash != w.NarHash || w.NarHash == "" {
			t.Errorf("%s: graph says references %v, narSize %d, narHash %q; nix path-info %v, %d, %q", p, gr, g.NarSize, g.NarHash, wr, w.NarSize, w.NarHash)
		}
	}

	plan := pluginDecodePlan(t, "plan", mustPlugin(t, "plan", "--format", "json", "--max-layers", "3", result))
	if paths := pluginPlanPaths(plan); !slices.Equal(paths, c.paths) {
		t.Errorf("plan paths:\n%v\nwant the closure:\n%v", paths, c.paths)
	}
	// The image of ROOTs has a customisation layer (LINK /bin) besides.
	if len(plan.Layers) == 0 || len(plan.Layers) > 2 {
		t.Errorf("plan --max-layers 3 has %d store layers", len(plan.Layers))
	}
}

// TestPluginPlanPrevious plans release 2 of an application against the
// plan that release 1's image records, read from the registry, checks it
// against what the frontend builds, then reads a plan the default
// strategy would not make from the engine and from the registry.
func TestPluginPlanPrevious(t *testing.T) {
	installPlugin(t)
	repo := bed.registry + "/storepack-e2e/plugin"
	v1 := nixClosure(t, "--argstr", "appVersion", "1")
	v2 := nixClosure(t, "--argstr", "appVersion", "2")
	// The manifest has a customisation layer (LINK), as the image of ROOTs
	// has: --max=4 leaves three store layers in both.
	first := pushImage(t, v1, repo+":1", "LAYERS --max=4")
	result2 := filepath.Join(v2.dir, "result")
	planWith := func(previous string) layering.Plan {
		t.Helper()
		return pluginDecodePlan(t, "plan --previous "+previous, mustPlugin(t, "plan", "--format", "json", "--previous", previous, "--max-layers", "4", result2))
	}
	plan := planWith(repo + ":1")
	if paths := pluginPlanPaths(plan); !slices.Equal(paths, v2.paths) {
		t.Errorf("plan paths:\n%v\nwant the closure:\n%v", paths, v2.paths)
	}

	// Every layer of release 1 without a changed path is kept, whole.
	oldPaths := map[store.Path]bool{}
	for _, p := range v1.paths {
		oldPaths[p] = true
	}
	reusable := 0
	for _, l := range first.plan.Layers {
		if !slices.ContainsFunc(l.Paths, func(p store.Path) bool { return !slices.Contains(v2.paths, p) }) {
			reusable++
		}
	}
	reused := 0
	for i, l := range plan.Layers {
		if slices.ContainsFunc(l.Paths, func(p store.Path) bool { return !oldPaths[p] }) {
			continue // holds the new application
		}
		if !slices.ContainsFunc(first.plan.Layers, func(o layering.Layer) bool { return slices.Equal(o.Paths, l.Paths) }) {
			t.Errorf("layer %d (%s) holds only unchanged paths but is no layer of release 1", i, l.Key)
			continue
		}
		reused++
	}
	if reused != reusable || reusable == 0 {
		t.Errorf("kept %d layers of release 1, want %d (> 0)\nrelease 1: %+v\nplan: %+v", reused, reusable, first.plan, plan)
	}

	// The frontend, reading the same previous image, plans the same: the
	// plan that release 2's image records. plan on the manifest reads its
	// LAYERS --previous the same way.
	layers2 := "LAYERS --max=4 --previous=" + repo + ":1"
	second := pushImage(t, v2, repo+":2", layers2)
	if !pluginSamePlan(plan, second.plan) {
		t.Errorf("plan --previous:\n%+v\nthe build's:\n%+v", plan, second.plan)
	}
	manifestPlan := pluginDecodePlan(t, "plan MANIFEST", mustPlugin(t, "plan", "--format", "json", filepath.Join(v2.dir, "app.storepack")))
	if !pluginSamePlan(manifestPlan, second.plan) {
		t.Errorf("plan of the manifest with %s:\n%+v\nthe build's:\n%+v", layers2, manifestPlan, second.plan)
	}

	// A recorded plan the default strategy would not make, in an image
	// under a name only the engine has, and under one only the registry has.
	recorded, base := unusualPlan(v1)
	local, pushed := "storepack-e2e-local/plugin:recorded", repo+":recorded"
	imageRecording(t, recorded, local, pushed)

	without := pluginDecodePlan(t, "plan", mustPlugin(t, "plan", "--format", "json", "--max-layers", "4", result2))
	fromEngine, fromRegistry := planWith(local), planWith(pushed)
	if !slices.ContainsFunc(fromEngine.Layers, func(l layering.Layer) bool { return slices.Equal(l.Paths, base) }) || pluginSamePlan(fromEngine, without) {
		t.Errorf("plan --previous %s (engine) does not keep its layer of %v:\n%+v\nwithout --previous:\n%+v", local, base, fromEngine, without)
	}
	if !pluginSamePlan(fromRegistry, fromEngine) {
		t.Errorf("plan --previous %s (registry):\n%+v\nfrom the engine:\n%+v", pushed, fromRegistry, fromEngine)
	}

	// Images without a recorded plan are refused, naming them: in the
	// registry, and in the engine (the test bed's busybox).
	noPlan := []string{bed.registry + "/library/busybox:latest"}
	if img := os.Getenv("TESTBED_BUSYBOX_IMAGE"); img != "" {
		noPlan = append(noPlan, img)
	}
	for _, img := range noPlan {
		stdout, stderr, err := runPlugin("plan", "--format", "json", "--previous", img, "--max-layers", "4", result2)
		want := "--previous: " + img + " records no layer plan (label dev.storepack.plan): was it built by storepack?"
		if err == nil || !strings.Contains(stderr, want) || stdout != "" {
			t.Errorf("--previous %s: err %v, stderr %q, stdout %q; want %q", img, err, stderr, stdout, want)
		}
	}
	// An image that is nowhere.
	missing := repo + ":missing"
	want := missing + ": no such image, neither in the local engine nor in the registry " + bed.registry
	if _, stderr, err := runPlugin("plan", "--previous", missing, result2); err == nil || !strings.Contains(stderr, want) {
		t.Errorf("--previous %s: err %v, stderr %q; want %q", missing, err, stderr, want)
	}
}

// pluginSamePlan tells whether two plans encode the same.
func pluginSamePlan(a, b layering.Plan) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
