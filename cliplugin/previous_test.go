package cliplugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/images"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/layerllb"
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

// fakeRegistry serves the read side of the distribution API from memory:
// /v2/, manifests by tag or digest, blobs. It records the paths asked for.
type fakeRegistry struct {
	srv   *httptest.Server
	host  string                   // host:port
	blobs map[digest.Digest][]byte // manifests, indexes and blobs
	types map[digest.Digest]string // media types of manifests and indexes
	tags  map[string]digest.Digest // "repository:tag"
	auth  string                   // "user:password" that Basic auth wants; "": none

	mu       sync.Mutex
	requests []string
}

func newFakeRegistry(t *testing.T, tls bool) *fakeRegistry {
	t.Helper()
	r := &fakeRegistry{blobs: map[digest.Digest][]byte{}, types: map[digest.Digest]string{}, tags: map[string]digest.Digest{}}
	if tls {
		r.srv = httptest.NewTLSServer(r)
	} else {
		r.srv = httptest.NewServer(r)
	}
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(strings.TrimPrefix(r.srv.URL, "http://"), "https://")
	return r
}

func (r *fakeRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests = append(r.requests, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	if r.auth != "" {
		if req.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(r.auth)) {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
	}
	if req.URL.Path == "/v2/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok {
		http.NotFound(w, req)
		return
	}
	var dgst digest.Digest
	if repo, ref, ok := strings.Cut(rest, "/manifests/"); ok {
		if d, err := digest.Parse(ref); err == nil {
			dgst = d
		} else {
			dgst = r.tags[repo+":"+ref]
		}
		w.Header().Set("Content-Type", r.types[dgst])
	} else if _, ref, ok := strings.Cut(rest, "/blobs/"); ok {
		dgst = digest.Digest(ref)
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	data, ok := r.blobs[dgst]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Docker-Content-Digest", dgst.String())
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if req.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// add stores v as JSON (or as is, for []byte) and returns its descriptor.
func (r *fakeRegistry) add(t *testing.T, mediaType string, v any) ocispecs.Descriptor {
	t.Helper()
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	d := digest.FromBytes(data)
	r.blobs[d] = data
	r.types[d] = mediaType
	return ocispecs.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// image stores a one-layer image for platform p whose config has labels,
// with OCI media types or Docker's, and returns its manifest's descriptor.
func (r *fakeRegistry) image(t *testing.T, p ocispecs.Platform, labels map[string]string, docker bool) ocispecs.Descriptor {
	t.Helper()
	configType, layerType, manifestType := ocispecs.MediaTypeImageConfig, ocispecs.MediaTypeImageLayer, ocispecs.MediaTypeImageManifest
	if docker {
		configType, layerType, manifestType = images.MediaTypeDockerSchema2Config, images.MediaTypeDockerSchema2Layer, images.MediaTypeDockerSchema2Manifest
	}
	img := dockerspec.DockerOCIImage{Image: ocispecs.Image{Platform: p}}
	img.Config.Labels = labels
	layer := r.add(t, layerType, []byte("a layer of "+platforms.Format(p)))
	m := ocispecs.Manifest{MediaType: manifestType, Config: r.add(t, configType, img), Layers: []ocispecs.Descriptor{layer}}
	m.SchemaVersion = 2
	desc := r.add(t, manifestType, m)
	desc.Platform = &p
	return desc
}

// index stores an index of manifests and returns its descriptor.
func (r *fakeRegistry) index(t *testing.T, docker bool, manifests ...ocispecs.Descriptor) ocispecs.Descriptor {
	t.Helper()
	mediaType := ocispecs.MediaTypeImageIndex
	if docker {
		mediaType = images.MediaTypeDockerSchema2ManifestList
	}
	idx := ocispecs.Index{MediaType: mediaType, Manifests: manifests}
	idx.SchemaVersion = 2
	return r.add(t, mediaType, idx)
}

func (r *fakeRegistry) tag(repo, tag string, desc ocispecs.Descriptor) string {
	r.tags[repo+":"+tag] = desc.Digest
	return r.host + "/" + repo + ":" + tag
}

// layerRequests returns the requests for layer blobs, which reading a
// plan must never make.
func (r *fakeRegistry) layerRequests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, req := range r.requests {
		if _, d, ok := strings.Cut(req, "/blobs/"); ok {
			if mt := r.types[digest.Digest(d)]; mt == ocispecs.MediaTypeImageLayer || mt == images.MediaTypeDockerSchema2Layer {
				out = append(out, req)
			}
		}
	}
	return out
}

// planLabels returns config labels that record plan.
func planLabels(t *testing.T, plan layering.Plan) map[string]string {
	t.Helper()
	data, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{layerllb.PlanLabel: string(data), "other": "label"}
}

// testPlan is a recorded plan that names its platform in its strategy,
// so that tests see which platform's config was read.
func testPlan(name string) layering.Plan {
	return layering.Plan{Strategy: name, Layers: []layering.Layer{{Key: "k-" + name, Size: 1}}}
}

var (
	amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = ocispecs.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	armv7 = ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
)

// multiPlatform stores, in r, an index with images for amd64 and arm64
// (and an attestation manifest, as BuildKit adds), and returns its
// reference.
func (r *fakeRegistry) multiPlatform(t *testing.T, repo, tag string, docker bool) string {
	t.Helper()
	unknown := ocispecs.Platform{OS: "unknown", Architecture: "unknown"}
	attestation := r.image(t, unknown, nil, docker)
	attestation.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
	idx := r.index(t, docker,
		r.image(t, amd64, planLabels(t, testPlan("amd64")), docker),
		r.image(t, arm64, planLabels(t, testPlan("arm64")), docker),
		attestation,
	)
	return r.tag(repo, tag, idx)
}

func TestReadPreviousPlanFromRegistry(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tls, docker bool
	}{
		{name: "http, OCI"},
		{name: "http, Docker media types", docker: true},
		{name: "https, OCI", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry(t, tc.tls)
			ref := reg.multiPlatform(t, "storepack/app", "1", tc.docker)
			single := reg.tag("storepack/single", "latest", reg.image(t, amd64, planLabels(t, testPlan("single")), tc.docker))
			engine := &fakeAPIClient{}
			src := previousSources{engine: engine}

			// The platform's image from the index.
			for _, p := range []ocispecs.Platform{amd64, arm64, {OS: "linux", Architecture: "arm64"}} {
				plan, err := readPreviousPlan(t.Context(), ref, p, src)
				if err != nil {
					t.Fatalf("%s: %v", platforms.Format(p), err)
				}
				if want := testPlan(p.Architecture); !samePlan(*plan, want) {
					t.Errorf("%s: read %+v, want %+v", platforms.Format(p), *plan, want)
				}
			}
			// A single manifest is taken whatever the platform.
			if plan, err := readPreviousPlan(t.Context(), single, arm64, src); err != nil || plan.Strategy != "single" {
				t.Errorf("single manifest: %+v, %v", plan, err)
			}
			// No image for the platform: the error lists the index's.
			_, err := readPreviousPlan(t.Context(), ref, armv7, src)
			if want := ref + ": no image for linux/arm/v7 (the index has linux/amd64, linux/arm64)"; err == nil || err.Error() != want {
				t.Errorf("arm/v7: %v, want %s", err, want)
			}
			if got := reg.layerRequests(); len(got) != 0 {
				t.Errorf("layers were fetched: %q", got)
			}
			// The engine was asked first, for the reference as given.
			if len(engine.inspected) == 0 || engine.inspected[0] != ref {
				t.Errorf("engine asked for %q, want %s first", engine.inspected, ref)
			}
		})
	}
}

func TestReadPreviousPlanWithDockerCerts(t *testing.T) {
	// registry.test, which is not loopback, so its certificate is
	// verified; its directory in certs.d sends it to the fake registry
	// (containerd's hosts.toml, read by the same loader as docker's
	// ca.crt and client.cert files).
	reg := newFakeRegistry(t, true)
	ref := "registry.test" + strings.TrimPrefix(reg.multiPlatform(t, "storepack/app", "1", false), reg.host)
	certsDir := t.TempDir()
	dir := filepath.Join(certsDir, "registry.test")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write("hosts.toml", fmt.Sprintf("server = %q\n", reg.srv.URL))
	src := previousSources{engine: &fakeAPIClient{}, insecure: func(string) bool { return false }, certsDir: certsDir}
	if _, err := readPreviousPlan(t.Context(), ref, amd64, src); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the registry's CA: %v, want a certificate error", err)
	}

	write("ca.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.srv.Certificate().Raw})))
	write("hosts.toml", fmt.Sprintf("server = %q\n[host.%q]\n  ca = \"ca.crt\"\n", reg.srv.URL, reg.srv.URL))
	plan, err := readPreviousPlan(t.Context(), ref, amd64, src)
	if err != nil || !samePlan(*plan, testPlan("amd64")) {
		t.Errorf("with the registry's CA: %+v, %v", plan, err)
	}
}

func samePlan(a, b layering.Plan) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestReadPreviousPlanErrors(t *testing.T) {
	reg := newFakeRegistry(t, false)
	noPlan := reg.tag("library/busybox", "latest", reg.image(t, amd64, map[string]string{"other": "label"}, false))
	badPlan := reg.tag("bad", "1", reg.image(t, amd64, map[string]string{layerllb.PlanLabel: "{not json"}, false))
	src := previousSources{engine: &fakeAPIClient{}}

	for _, tc := range []struct {
		ref  string
		want string
	}{
		{noPlan, noPlan + " records no layer plan (label dev.storepack.plan): was it built by storepack?"},
		{badPlan, badPlan + ": label dev.storepack.plan: "},
		{reg.host + "/library/busybox:missing", reg.host + "/library/busybox:missing: no such image, neither in the local engine nor in the registry " + reg.host},
		{reg.host + "/nothing/here", reg.host + "/nothing/here: no such image, neither in the local engine nor in the registry " + reg.host},
		{"App:1", "App:1: not in the local engine, and not an image reference"},
	} {
		_, err := readPreviousPlan(t.Context(), tc.ref, amd64, src)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.ref, err, tc.want)
		}
	}

	// A registry that cannot be reached: its error, with the engine's.
	srv := httptest.NewServer(http.NotFoundHandler())
	gone := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	engine := &fakeAPIClient{inspectErr: errors.New("Cannot connect to the Docker daemon at unix:///x.sock.\nIs the docker daemon running?")}
	_, err := readPreviousPlan(t.Context(), gone+"/app:1", amd64, previousSources{engine: engine})
	if err == nil || !strings.HasPrefix(err.Error(), gone+"/app:1: not in the local engine, and the registry "+gone+": ") ||
		!strings.HasSuffix(err.Error(), "(local engine: Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?)") {
		t.Errorf("unreachable registry and engine: %v", err)
	}
}

func TestReadPreviousPlanFromEngine(t *testing.T) {
	reg := newFakeRegistry(t, false)
	ref := reg.multiPlatform(t, "storepack/app", "1", false)
	local := func(p ocispecs.Platform, labels map[string]string) image.InspectResponse {
		return image.InspectResponse{Os: p.OS, Architecture: p.Architecture, Variant: p.Variant, Config: &dockerspec.DockerOCIImageConfig{
			ImageConfig: ocispecs.ImageConfig{Labels: labels},
		}}
	}

	// The engine's image comes first: the registry is not asked.
	// The other images are only in the engine: the registry lacks them.
	nolabel, unlabeled, arm := reg.host+"/app:nolabel", reg.host+"/app:unlabeled", reg.host+"/app:arm"
	engine := &fakeAPIClient{images: map[string]image.InspectResponse{
		ref:       local(amd64, planLabels(t, testPlan("local"))),
		nolabel:   local(amd64, nil),
		unlabeled: local(amd64, map[string]string{"a": "b"}),
		arm:       local(arm64, planLabels(t, testPlan("local-arm"))),
	}}
	src := previousSources{engine: engine}
	plan, err := readPreviousPlan(t.Context(), ref, amd64, src)
	if err != nil || plan.Strategy != "local" {
		t.Fatalf("local image: %+v, %v", plan, err)
	}
	if len(reg.requests) != 0 {
		t.Errorf("the registry was asked: %q", reg.requests)
	}
	// An image without the label is refused, even if a registry has one.
	for _, name := range []string{nolabel, unlabeled} {
		if _, err := readPreviousPlan(t.Context(), name, amd64, src); err == nil || err.Error() != name+" records no layer plan (label dev.storepack.plan): was it built by storepack?" {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The engine's image is for another platform: the registry's is read.
	if plan, err := readPreviousPlan(t.Context(), ref, arm64, src); err != nil || plan.Strategy != "arm64" {
		t.Errorf("local image of another platform: %+v, %v", plan, err)
	}
	if plan, err := readPreviousPlan(t.Context(), arm, arm64, src); err != nil || plan.Strategy != "local-arm" {
		t.Errorf("local arm64 image: %+v, %v", plan, err)
	}
	// ... and when no registry has it either, the error says both.
	_, err = readPreviousPlan(t.Context(), arm, amd64, src)
	if want := arm + ": no such image, neither in the local engine nor in the registry " + reg.host + " (local engine: its image is for linux/arm64, not linux/amd64)"; err == nil || err.Error() != want {
		t.Errorf("local image of another platform, none in the registry: %v", err)
	}
	// No engine at all: the registry.
	if plan, err := readPreviousPlan(t.Context(), ref, amd64, previousSources{}); err != nil || plan.Strategy != "amd64" {
		t.Errorf("without an engine: %+v, %v", plan, err)
	}
}

func TestInsecureRegistries(t *testing.T) {
	engine := &fakeAPIClient{info: client.SystemInfoResult{Info: system.Info{RegistryConfig: &registry.ServiceConfig{
		IndexConfigs: map[string]*registry.IndexInfo{
			"docker.io":              {Name: "docker.io", Secure: true},
			"registry.internal:5000": {Name: "registry.internal:5000", Secure: false},
		},
		InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
	}}}}
	insecure := insecureRegistries(t.Context(), engine)
	for host, want := range map[string]bool{
		"localhost:5000":         true,
		"127.0.0.1:5000":         true,
		"127.1.2.3":              true,
		"[::1]:5000":             true,
		"registry.internal:5000": true,
		"registry.internal":      false,
		"10.1.2.3:5000":          true,
		"10.1.2.3":               true,
		"[fd00::1]:5000":         true,
		"11.0.0.1:5000":          false,
		"registry.example":       false,
		"docker.io":              false,
	} {
		if got := insecure(host); got != want {
			t.Errorf("%s: insecure %v, want %v", host, got, want)
		}
	}
	if engine.infoCalls != 1 {
		t.Errorf("the engine was asked %d times, want once", engine.infoCalls)
	}

	// Without an engine, only loopback registries are insecure.
	insecure = insecureRegistries(t.Context(), nil)
	if !insecure("localhost:5000") || insecure("10.1.2.3:5000") || insecure("registry.internal:5000") {
		t.Error("without an engine: only loopback registries are insecure")
	}
}

func TestRegistryCredentials(t *testing.T) {
	cfg := configfile.New("")
	cfg.AuthConfigs = map[string]types.AuthConfig{
		"https://index.docker.io/v1/": {Username: "hubuser", Password: "hubpass"},
		"registry.example":            {Username: "u", Password: "p"},
		"token.example":               {Username: "u", IdentityToken: "refresh"},
	}
	creds := dockerCredentials(cfg)
	for host, want := range map[string][2]string{
		"registry-1.docker.io": {"hubuser", "hubpass"},
		"docker.io":            {"hubuser", "hubpass"},
		"registry.example":     {"u", "p"},
		"token.example":        {"", "refresh"},
		"other.example":        {"", ""},
	} {
		u, p, err := creds(host)
		if err != nil || u != want[0] || p != want[1] {
			t.Errorf("%s: %q, %q, %v; want %q", host, u, p, err, want)
		}
	}

	// The registry's Basic challenge is answered with them.
	reg := newFakeRegistry(t, false)
	ref := reg.multiPlatform(t, "private/app", "1", false)
	reg.auth = "alice:secret"
	_, err := readPreviousPlan(t.Context(), ref, amd64, previousSources{})
	if err == nil {
		t.Fatal("read from a registry that wants credentials without any")
	}
	cfg.AuthConfigs[reg.host] = types.AuthConfig{Username: "alice", Password: "secret"}
	if plan, err := readPreviousPlan(t.Context(), ref, amd64, previousSources{auth: cfg}); err != nil || plan.Strategy != "amd64" {
		t.Errorf("with credentials: %+v, %v", plan, err)
	}
}

// TestPlanPrevious runs plan --previous and a manifest's LAYERS --previous
// against the fake registry.
func TestPlanPrevious(t *testing.T) {
	s := newFakeStore(t)
	g := s.graph(t)
	reg := newFakeRegistry(t, false)

	// The previous release put app with libc, lib with data: the new plan
	// keeps that where it ships fewer bytes, which it would not do alone.
	previous := layering.Plan{Strategy: "storepack", Layers: []layering.Layer{
		{Key: "a", Paths: []store.Path{s.app, s.libc}},
		{Key: "b", Paths: []store.Path{s.data, s.lib}},
	}}
	host := platforms.Normalize(platforms.DefaultSpec())
	other := arm64
	if host.Architecture == "arm64" {
		other = amd64
	}
	ref := reg.tag("app", "1", reg.index(t, false,
		reg.image(t, host, planLabels(t, previous), false),
		reg.image(t, other, planLabels(t, testPlan("other")), false),
	))
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

	// ROOTs.
	if got := mustRun(t, "plan", "--format", "json", "--max", "2", "--previous", ref, s.result()); got != withPrevious {
		t.Errorf("--previous:\n%s\nwant:\n%s", got, withPrevious)
	}
	// --platform selects the previous image's platform.
	otherPlan := testPlan("other")
	if got := mustRun(t, "plan", "--format", "json", "--max", "2", "--previous", ref, "--platform", platforms.Format(other), s.result()); got != want(&otherPlan, 2) {
		t.Errorf("--previous --platform %s:\n%s", platforms.Format(other), got)
	}
	mustFail(t, []string{"--previous: " + ref + ": no image for linux/arm/v7 (the index has "}, "plan", "--previous", ref, "--platform", "armv7l-linux", s.result())
	mustFail(t, []string{"--platform applies to a manifest, or to the --previous image"}, "plan", "--platform", "linux/amd64", s.result())

	// A manifest's LAYERS --previous, and the flag that overrides it.
	m := s.manifestFile(t, "previous.storepack", "CLOSURE ./result", "ARG PREVIOUS="+ref, "LAYERS --max=2 --previous=${PREVIOUS}")
	stdout, stderr, err := runCommand(t, "plan", "--format", "json", m)
	if err != nil || stdout != withPrevious || stderr != "" {
		t.Errorf("LAYERS --previous: err %v, stderr %q, stdout:\n%s\nwant:\n%s", err, stderr, stdout, withPrevious)
	}
	if got := mustRun(t, "plan", "--format", "json", "--previous", "", m); got != without {
		t.Errorf(`--previous "" over LAYERS --previous:\n%s\nwant:\n%s`, got, without)
	}
	noPlan := reg.tag("library/busybox", "latest", reg.image(t, host, nil, false))
	if got := mustRun(t, "plan", "--format", "json", "--previous", ref, s.manifestFile(t, "bad.storepack", "CLOSURE ./result", "LAYERS --max=2 --previous="+noPlan)); got != withPrevious {
		t.Errorf("--previous over a LAYERS --previous without a plan:\n%s\nwant:\n%s", got, withPrevious)
	}

	// Errors name the image, and the manifest's line.
	msg := noPlan + " records no layer plan (label dev.storepack.plan): was it built by storepack?"
	mustFail(t, []string{"--previous: " + msg}, "plan", "--previous", noPlan, s.result())
	mustFail(t, []string{m + ":5: LAYERS --previous: " + reg.host + "/app:2: no such image, neither in the local engine nor in the registry " + reg.host},
		"plan", s.manifestFile(t, "previous.storepack", "CLOSURE ./result", "ARG PREVIOUS="+reg.host+"/app:2", "LAYERS --max=2 --previous=${PREVIOUS}"))
	mustFail(t, []string{"--previous: " + msg}, "plan", "--previous", noPlan, m)
	if got := reg.layerRequests(); len(got) != 0 {
		t.Errorf("layers were fetched: %q", got)
	}
}
