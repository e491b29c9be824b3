package cliplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

func (f *fakeAPIClient) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.inspected = append(f.inspected, ref)
	if f.inspectErr != nil {
		return client.ImageInspectResult{}, f.inspectErr
	}
	img, ok := f.images[ref]
	if !ok {
		return client.ImageInspectResult{}, fmt.Errorf("Error response from daemon: No such image: %s: %w", ref, cerrdefs.ErrNotFound)
	}
	return client.ImageInspectResult{InspectResponse: img}, nil
}

func (f *fakeAPIClient) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	f.infoCalls++
	return f.info, nil
}

// runWithEngine runs the plugin with engine as the docker CLI's engine.
func runWithEngine(t *testing.T, engine *fakeAPIClient, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cli, out, errOut := newTestCLI(t, "unix:///nonexistent/docker.sock", engine)
	err = execute(t, NewRootCommand(cli), args...)
	return out.String(), errOut.String(), err
}

// TestPlanPrevious runs plan --previous and a manifest's LAYERS --previous
// with previous images in the docker CLI's engine; their registry has
// none. Where images are looked up is imagelookup's to test.
func TestPlanPrevious(t *testing.T) {
	s := storetest.NewHostStore(t)
	g := s.Graph(t)
	registry := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(registry.Close)
	host := strings.TrimPrefix(registry.URL, "http://")

	// The previous release put app with libc, lib with data: the new plan
	// keeps that where it ships fewer bytes, which it would not do alone.
	previous := layering.Plan{Strategy: "storepack", Layers: []layering.Layer{
		{Key: "a", Paths: []store.Path{s.App, s.Libc}},
		{Key: "b", Paths: []store.Path{s.Data, s.Lib}},
	}}
	recorded, err := json.Marshal(previous)
	if err != nil {
		t.Fatal(err)
	}
	platform := platforms.Normalize(platforms.DefaultSpec())
	local := func(labels map[string]string) image.InspectResponse {
		return image.InspectResponse{Os: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant, Config: &dockerspec.DockerOCIImageConfig{
			ImageConfig: ocispecs.ImageConfig{Labels: labels},
		}}
	}
	ref, noPlan, missing := host+"/app:1", host+"/library/busybox:latest", host+"/app:2"
	engine := &fakeAPIClient{images: map[string]image.InspectResponse{
		ref:    local(map[string]string{layerllb.PlanLabel: string(recorded), "other": "label"}),
		noPlan: local(map[string]string{"other": "label"}),
	}}
	run := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := runWithEngine(t, engine, args...)
		if err != nil || stderr != "" {
			t.Fatalf("%s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
		}
		return stdout
	}
	fail := func(want string, args ...string) {
		t.Helper()
		if stdout, _, err := runWithEngine(t, engine, args...); err == nil || !strings.Contains(err.Error(), want) || stdout != "" {
			t.Errorf("%s: error %v, stdout %q; want an error with %q", strings.Join(args, " "), err, stdout, want)
		}
	}
	want := func(prev *layering.Plan, max int) string {
		plan, err := layering.NewPlan(g, layering.Options{MaxLayers: max, Previous: prev})
		if err != nil {
			t.Fatal(err)
		}
		return planJSON(t, plan)
	}
	withPrevious, without := want(&previous, 2), want(nil, 2)
	if withPrevious == without {
		t.Fatalf("the fixture's previous plan changes nothing:\n%s", without)
	}

	// ROOTs: their image has a customisation layer (LINK /bin) besides.
	if got := run("plan", "--format", "json", "--max-layers", "3", "--previous", ref, s.Result()); got != withPrevious {
		t.Errorf("--previous:\n%s\nwant:\n%s", got, withPrevious)
	}
	if len(engine.inspected) == 0 || engine.inspected[0] != ref {
		t.Errorf("the engine was asked for %q, want %s", engine.inspected, ref)
	}
	// --platform selects the previous image's platform, which the
	// engine's image is not.
	for flag, name := range map[string]string{"armv7l-linux": "linux/arm/v7", "windows/amd64": "windows/amd64"} {
		fail(fmt.Sprintf("--previous: %s: no such image, neither in the local engine nor in the registry %s (local engine: its image is for %s, not %s)", ref, host, platforms.Format(platform), name),
			"plan", "--previous", ref, "--platform", flag, s.Result())
	}

	// A manifest's LAYERS --previous, and the flag that overrides it.
	m := manifestFile(t, s, "previous.storepack", "CLOSURE ./result", "ARG PREVIOUS="+ref, "LAYERS --max=2 --previous=${PREVIOUS}")
	if got := run("plan", "--format", "json", m); got != withPrevious {
		t.Errorf("LAYERS --previous:\n%s\nwant:\n%s", got, withPrevious)
	}
	if got := run("plan", "--format", "json", "--previous", "", m); got != without {
		t.Errorf(`--previous "" over LAYERS --previous:\n%s\nwant:\n%s`, got, without)
	}
	if got := run("plan", "--format", "json", "--previous", ref, manifestFile(t, s, "bad.storepack", "CLOSURE ./result", "LAYERS --max=2 --previous="+noPlan)); got != withPrevious {
		t.Errorf("--previous over a LAYERS --previous without a plan:\n%s\nwant:\n%s", got, withPrevious)
	}

	// Errors name the image, and the manifest's line.
	msg := noPlan + " records no layer plan (label dev.storepack.plan): was it built by storepack?"
	fail("--previous: "+msg, "plan", "--previous", noPlan, s.Result())
	fail("--previous: "+msg, "plan", "--previous", noPlan, m)
	mm := manifestFile(t, s, "missing.storepack", "CLOSURE ./result", "ARG PREVIOUS="+missing, "LAYERS --max=2 --previous=${PREVIOUS}")
	fail(mm+":5: LAYERS --previous: "+missing+": no such image, neither in the local engine nor in the registry "+host, "plan", mm)
}
