//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// TestPreviousLayout builds two releases through the frontend; the second
// reads the first image's plan from the registry (LAYERS --previous) and
// must reuse every layer that holds no changed path, with the same digest.
func TestPreviousLayout(t *testing.T) {
	repo := bed.registry + "/storepack-e2e/previous"
	v1 := nixClosure(t, "--argstr", "appVersion", "1")
	v2 := nixClosure(t, "--argstr", "appVersion", "2")
	// A budget smaller than the closure, so that paths share layers.
	first := pushImage(t, v1, repo+":1", "LAYERS --max=3")
	second := pushImage(t, v2, repo+":2", "LAYERS --max=3 --previous="+repo+":1")

	checkReused(t, v1, first.plan, second.plan, layerDigests(first.manifest), layerDigests(second.manifest))

	// On so small a closure the plan above may equal the one made without
	// --previous; a recorded plan the strategy would not make tells.
	recorded, base := unusualPlan(v1)
	imageRecording(t, recorded, "", repo+":recorded")
	kept := pushImage(t, v2, repo+":3", "LAYERS --max=3 --previous="+repo+":recorded")
	without := pushImage(t, v2, repo+":4", "LAYERS --max=3")
	if !slices.ContainsFunc(kept.plan.Layers, func(l layering.Layer) bool { return slices.Equal(l.Paths, base) }) {
		t.Errorf("the build with --previous does not keep the recorded layer of %v: %+v", base, kept.plan)
	}
	if slices.EqualFunc(kept.plan.Layers, without.plan.Layers, func(a, b layering.Layer) bool { return slices.Equal(a.Paths, b.Paths) }) {
		t.Errorf("the plan with --previous equals the plan without, so the test tells nothing: %+v", without.plan)
	}

	// An image without a recorded plan is refused, naming it.
	busybox := bed.registry + "/library/busybox:latest"
	df := writeFile(t, v2.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --previous="+busybox))
	r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", v2.dir)
	if r.err == nil || !strings.Contains(r.out, "records no layer plan") || !strings.Contains(r.out, busybox) {
		t.Errorf("previous image without a plan:\n%s", r)
	}
}

// pushImage builds the test manifest of closure c with extra lines through
// buildx, pushes it as ref (repo:tag) and reads it back from the registry.
func pushImage(t *testing.T, c closure, ref string, extra ...string) platformImage {
	t.Helper()
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", extra...))
	if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "-t", ref, "--push", c.dir); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	repo, tag, _ := strings.Cut(ref[len(bed.registry):], ":")
	images := readImages(t, bed.registry+repo, tag)
	if len(images) != 1 {
		t.Fatalf("%s has %d images", ref, len(images))
	}
	return images[0]
}

// checkReused checks that the second release of an application, planned
// with the first (closure v1) as previous, reuses every layer of the first
// without the application, with the same digest (blob digests or diffIDs,
// of each plan's layers in its order).
func checkReused(t *testing.T, v1 closure, first, second layering.Plan, firstDigests, secondDigests []string) {
	t.Helper()
	oldPaths := map[store.Path]bool{}
	for _, p := range v1.paths {
		oldPaths[p] = true
	}
	reusable := 0 // layers of the first release without the application
	for _, l := range first.Layers {
		if !slices.Contains(l.Paths, v1.root) {
			reusable++
		}
	}
	reused := 0
	for i, l := range second.Layers {
		if slices.ContainsFunc(l.Paths, func(p store.Path) bool { return !oldPaths[p] }) {
			continue // holds the new application
		}
		j := slices.IndexFunc(first.Layers, func(o layering.Layer) bool { return slices.Equal(o.Paths, l.Paths) })
		if j < 0 {
			t.Errorf("layer %d (%s) holds only unchanged paths but is no layer of the previous release", i, l.Key)
			continue
		}
		reused++
		if firstDigests[j] != secondDigests[i] {
			t.Errorf("layer %s is reused but its digest changed", l.Key)
		}
	}
	if reused != reusable {
		t.Errorf("reused %d layers of the previous release, want %d", reused, reusable)
	}
}

func layerDigests(m ocispecs.Manifest) []string {
	var ds []string
	for _, l := range m.Layers {
		ds = append(ds, l.Digest.String())
	}
	return ds
}

// unusualPlan is a plan of closure c (see testdata/hello.nix) that the
// default strategy would not make: busybox shares a layer with
// greeting-data (base), hello-lib and the application have one each. A
// build that reads it keeps base: giving it up would ship busybox again
// now, while keeping it ships busybox again only on a release that changes
// greeting-data, which the strategy expects less often.
func unusualPlan(c closure) (plan layering.Plan, base []store.Path) {
	plan = layering.Plan{Strategy: "storepack", Layers: []layering.Layer{{Key: "base"}}}
	for _, p := range c.paths {
		if p.Name == "busybox" || p.Name == "greeting-data" {
			plan.Layers[0].Paths = append(plan.Layers[0].Paths, p)
		} else {
			plan.Layers = append(plan.Layers, layering.Layer{Key: p.Name, Paths: []store.Path{p}})
		}
	}
	return plan, plan.Layers[0].Paths
}

// imageRecording makes an image that records plan in its label (built by
// Docker 20.10 from the test bed's busybox), tagged local in the engine
// (unless empty) and pushed to the registry as pushed, which the engine
// then forgets.
func imageRecording(t *testing.T, plan layering.Plan, local, pushed string) {
	t.Helper()
	label, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "Dockerfile", "FROM "+os.Getenv("TESTBED_BUSYBOX_IMAGE")+"\n")
	tags := []string{"-t", pushed}
	if local != "" {
		tags = append(tags, "-t", local)
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", local) })
	}
	args := append([]string{"--label", layerllb.PlanLabel + "=" + string(label)}, tags...)
	if r := engineBuild(t, append(args, dir)...); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	must(t, nil, bed.docker, "push", "-q", pushed)
	must(t, nil, bed.docker, "rmi", pushed) // untags; a local tag keeps the image
}
