package imagelookup

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
	"slices"
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
)

// fakeEngine answers what ImageConfig asks the local engine.
type fakeEngine struct {
	images     map[string]image.InspectResponse // ImageInspect's images; others are not found
	inspectErr error                            // ImageInspect's error, if not nil
	inspected  []string                         // the references ImageInspect was asked for
	info       client.SystemInfoResult          // Info's answer
	infoCalls  int
}

var _ EngineAPI = (*fakeEngine)(nil)

func (f *fakeEngine) ClientVersion() string { return "" }

func (f *fakeEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
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

func (f *fakeEngine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	f.infoCalls++
	return f.info, nil
}

// fakeRegistry serves the read side of the distribution API from memory:
// /v2/, manifests by tag or digest, blobs; and uploads started, sent a
// chunk and cancelled, never finished. It records the paths asked for.
type fakeRegistry struct {
	srv   *httptest.Server
	host  string                   // host:port
	blobs map[digest.Digest][]byte // manifests, indexes and blobs
	types map[digest.Digest]string // media types of manifests and indexes
	tags  map[string]digest.Digest // "repository:tag"
	auth  string                   // "user:password" that Basic auth wants; "": none

	mu       sync.Mutex
	requests []string
	uploads  map[string]bool // uploads started and not cancelled, by id
	started  int             // uploads ever started
	chunks   int             // chunks taken
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
	if repo, id, ok := strings.Cut(rest, "/blobs/uploads/"); ok {
		r.upload(w, req, repo, id)
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

// upload answers a request of upload id in repo ("": a new upload). Its
// locations are a path after a POST, a full URL after a PATCH: the API
// allows both.
func (r *fakeRegistry) upload(w http.ResponseWriter, req *http.Request, repo, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := "/v2/" + repo + "/blobs/uploads/"
	switch {
	case req.Method == http.MethodPost && id == "":
		r.started++
		id = strconv.Itoa(r.started)
		if r.uploads == nil {
			r.uploads = map[string]bool{}
		}
		r.uploads[id] = true
		w.Header().Set("Location", path+id)
		w.WriteHeader(http.StatusAccepted)
	case !r.uploads[id]:
		http.Error(w, `{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}`, http.StatusNotFound)
	case req.Method == http.MethodPatch && req.Header.Get("Content-Type") == "application/octet-stream":
		r.chunks++
		w.Header().Set("Location", r.srv.URL+path+id)
		w.WriteHeader(http.StatusAccepted)
	case req.Method == http.MethodDelete:
		delete(r.uploads, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, `{"errors":[{"code":"UNSUPPORTED"}]}`, http.StatusBadRequest)
	}
}

// uploadCounts returns how many uploads were started, how many chunks
// taken, and how many uploads are open (not cancelled).
func (r *fakeRegistry) uploadCounts() (started, chunks, open int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started, r.chunks, len(r.uploads)
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

// layerRequests returns the requests for layer blobs, which ImageConfig
// must never make.
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

// labelled returns config labels that name an image, so that tests see
// which config was read.
func labelled(name string) map[string]string {
	return map[string]string{"image": name}
}

var (
	amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = ocispecs.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	armv7 = ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
)

// multiPlatform stores, in r, an index with images for amd64 and arm64
// (and an attestation manifest, as BuildKit adds), labelled with their
// architecture, and returns its reference.
func (r *fakeRegistry) multiPlatform(t *testing.T, repo, tag string, docker bool) string {
	t.Helper()
	unknown := ocispecs.Platform{OS: "unknown", Architecture: "unknown"}
	attestation := r.image(t, unknown, nil, docker)
	attestation.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
	idx := r.index(t, docker,
		r.image(t, amd64, labelled("amd64"), docker),
		r.image(t, arm64, labelled("arm64"), docker),
		attestation,
	)
	return r.tag(repo, tag, idx)
}

// imageName returns the name that labelled gave the image found, or the
// error.
func imageName(t *testing.T, ref string, p ocispecs.Platform, src Sources, want Origin) string {
	t.Helper()
	cfg, origin, err := ImageConfig(t.Context(), ref, p, src)
	if err != nil {
		return err.Error()
	}
	if origin != want {
		t.Errorf("%s for %s: found in %v, want %v", ref, platforms.Format(p), origin, want)
	}
	return cfg.Config.Labels["image"]
}

func TestImageConfigFromRegistry(t *testing.T) {
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
			single := reg.tag("storepack/single", "latest", reg.image(t, amd64, labelled("single"), tc.docker))
			engine := &fakeEngine{}
			src := Sources{Engine: engine}

			// The platform's image from the index.
			for _, p := range []ocispecs.Platform{amd64, arm64, {OS: "linux", Architecture: "arm64"}} {
				if got := imageName(t, ref, p, src, InRegistry); got != p.Architecture {
					t.Errorf("%s: read %q, want %s", platforms.Format(p), got, p.Architecture)
				}
			}
			// A single manifest is taken whatever the platform.
			if got := imageName(t, single, arm64, src, InRegistry); got != "single" {
				t.Errorf("single manifest: %s", got)
			}
			// No image for the platform: the error lists the index's.
			_, _, err := ImageConfig(t.Context(), ref, armv7, src)
			if want := ref + ": no image for linux/arm/v7 (the index has linux/amd64, linux/arm64)"; err == nil || err.Error() != want || !cerrdefs.IsNotFound(err) {
				t.Errorf("arm/v7: %v, want %s (not found)", err, want)
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

func TestImageConfigWithDockerCerts(t *testing.T) {
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
	src := Sources{Engine: &fakeEngine{}, certsDir: certsDir}
	if got := imageName(t, ref, amd64, src, InRegistry); !strings.Contains(got, "certificate") {
		t.Fatalf("without the registry's CA: %s, want a certificate error", got)
	}

	write("ca.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.srv.Certificate().Raw})))
	write("hosts.toml", fmt.Sprintf("server = %q\n[host.%q]\n  ca = \"ca.crt\"\n", reg.srv.URL, reg.srv.URL))
	if got := imageName(t, ref, amd64, src, InRegistry); got != "amd64" {
		t.Errorf("with the registry's CA: %s", got)
	}
}

func TestImageConfigErrors(t *testing.T) {
	reg := newFakeRegistry(t, false)
	src := Sources{Engine: &fakeEngine{}}

	// A manifest whose config is no image config, one whose config
	// descriptor claims more than a config can be, one whose config the
	// registry serves altered, and a tag that names a layer.
	artifact := reg.image(t, amd64, nil, false)
	var m ocispecs.Manifest
	if err := json.Unmarshal(reg.blobs[artifact.Digest], &m); err != nil {
		t.Fatal(err)
	}
	m.Config.MediaType = "application/vnd.example.config+json"
	artifactRef := reg.tag("artifact", "1", reg.add(t, ocispecs.MediaTypeImageManifest, m))
	m.Config.MediaType, m.Config.Size = ocispecs.MediaTypeImageConfig, maxBlobSize+1
	hugeRef := reg.tag("huge", "1", reg.add(t, ocispecs.MediaTypeImageManifest, m))
	m.Config.Size = int64(len(reg.blobs[m.Config.Digest]))
	reg.blobs[m.Config.Digest] = []byte(strings.Repeat(" ", int(m.Config.Size)))
	alteredRef := reg.tag("altered", "1", reg.add(t, ocispecs.MediaTypeImageManifest, m))
	layer := reg.add(t, ocispecs.MediaTypeImageLayer, []byte("a layer"))
	layerRef := reg.tag("layer", "1", layer)

	for _, tc := range []struct {
		ref      string
		want     string
		notFound bool
	}{
		{reg.host + "/library/busybox:missing", reg.host + "/library/busybox:missing: no such image, neither in the local engine nor in the registry " + reg.host, true},
		{reg.host + "/nothing/here", reg.host + "/nothing/here: no such image, neither in the local engine nor in the registry " + reg.host, true},
		{"App:1", "App:1: not in the local engine, and not an image reference", false},
		{artifactRef, artifactRef + `: its manifest's config is a "application/vnd.example.config+json", not an image config`, false},
		{hugeRef, hugeRef + ": image config: " + m.Config.Digest.String() + " is 8388609 bytes: too large for a manifest or a config", false},
		{alteredRef, alteredRef + ": image config: ", false},
		{layerRef, layerRef + ": " + layer.Digest.String() + ` is a "application/vnd.oci.image.layer.v1.tar", not an image manifest or index`, false},
	} {
		_, _, err := ImageConfig(t.Context(), tc.ref, amd64, src)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || cerrdefs.IsNotFound(err) != tc.notFound {
			t.Errorf("%s: error %v, want %q (not found: %v)", tc.ref, err, tc.want, tc.notFound)
		}
	}
	if got := reg.layerRequests(); len(got) != 0 {
		t.Errorf("layers were fetched: %q", got)
	}

	// A registry that cannot be reached: its error, with the engine's.
	srv := httptest.NewServer(http.NotFoundHandler())
	gone := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	engine := &fakeEngine{inspectErr: errors.New("Cannot connect to the Docker daemon at unix:///x.sock.\nIs the docker daemon running?")}
	_, _, err := ImageConfig(t.Context(), gone+"/app:1", amd64, Sources{Engine: engine})
	if err == nil || !strings.HasPrefix(err.Error(), gone+"/app:1: not in the local engine, and the registry "+gone+": ") ||
		!strings.HasSuffix(err.Error(), "(local engine: Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?)") ||
		cerrdefs.IsNotFound(err) {
		t.Errorf("unreachable registry and engine: %v", err)
	}
}

func TestImageConfigFromEngine(t *testing.T) {
	reg := newFakeRegistry(t, false)
	ref := reg.multiPlatform(t, "storepack/app", "1", false)
	local := func(p ocispecs.Platform, labels map[string]string) image.InspectResponse {
		return image.InspectResponse{Os: p.OS, Architecture: p.Architecture, Variant: p.Variant, Config: &dockerspec.DockerOCIImageConfig{
			ImageConfig: ocispecs.ImageConfig{Labels: labels},
		}}
	}

	// The engine's image comes first: the registry is not asked.
	// The other images are only in the engine: the registry lacks them.
	noConfig, arm := reg.host+"/app:noconfig", reg.host+"/app:arm"
	engine := &fakeEngine{images: map[string]image.InspectResponse{
		ref:      local(amd64, labelled("local")),
		noConfig: {Os: "linux", Architecture: "amd64"},
		arm:      local(arm64, labelled("local-arm")),
	}}
	src := Sources{Engine: engine}
	if got := imageName(t, ref, amd64, src, InEngine); got != "local" {
		t.Fatalf("local image: %s", got)
	}
	if len(reg.requests) != 0 {
		t.Errorf("the registry was asked: %q", reg.requests)
	}
	// An image without a config has an empty one; the engine's layers
	// are the rootfs.
	layer := digest.FromString("layer")
	engine.images[noConfig] = image.InspectResponse{Os: "linux", Architecture: "amd64", RootFS: image.RootFS{Type: "layers", Layers: []string{layer.String()}}}
	if cfg, origin, err := ImageConfig(t.Context(), noConfig, amd64, src); err != nil || origin != InEngine || cfg.Config.Labels != nil || !slices.Equal(cfg.RootFS.DiffIDs, []digest.Digest{layer}) {
		t.Errorf("local image without a config: %+v, %v, %v", cfg, origin, err)
	}
	// The engine's image is for another platform: the registry's is read.
	if got := imageName(t, ref, arm64, src, InRegistry); got != "arm64" {
		t.Errorf("local image of another platform: %s", got)
	}
	if got := imageName(t, arm, arm64, src, InEngine); got != "local-arm" {
		t.Errorf("local arm64 image: %s", got)
	}
	// ... and when no registry has it either, the error says both.
	_, _, err := ImageConfig(t.Context(), arm, amd64, src)
	if want := arm + ": no such image, neither in the local engine nor in the registry " + reg.host + " (local engine: its image is for linux/arm64, not linux/amd64)"; err == nil || err.Error() != want || !cerrdefs.IsNotFound(err) {
		t.Errorf("local image of another platform, none in the registry: %v", err)
	}
	// No engine at all: the registry.
	if got := imageName(t, ref, amd64, Sources{}, InRegistry); got != "amd64" {
		t.Errorf("without an engine: %s", got)
	}
}

func TestInsecureRegistries(t *testing.T) {
	engine := &fakeEngine{info: client.SystemInfoResult{Info: system.Info{RegistryConfig: &registry.ServiceConfig{
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
	if _, _, err := ImageConfig(t.Context(), ref, amd64, Sources{}); err == nil {
		t.Fatal("read from a registry that wants credentials without any")
	}
	cfg.AuthConfigs[reg.host] = types.AuthConfig{Username: "alice", Password: "secret"}
	if got := imageName(t, ref, amd64, Sources{Auth: cfg}, InRegistry); got != "amd64" {
		t.Errorf("with credentials: %s", got)
	}
}

func TestCheckRegistry(t *testing.T) {
	reg := newFakeRegistry(t, false)
	pushed := reg.tag("app", "1", reg.image(t, amd64, nil, false))
	for _, ref := range []string{pushed, reg.host + "/app:new", reg.host + "/new/repository"} {
		if err := CheckRegistry(t.Context(), ref, Sources{}); err != nil {
			t.Errorf("%s: %v, want none (the registry answers)", ref, err)
		}
	}

	// A registry that answers no, which only the push can judge.
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"errors":[{"code":"DENIED"}]}`, code)
		}))
		if err := CheckRegistry(t.Context(), strings.TrimPrefix(refusing.URL, "http://")+"/app:1", Sources{}); err != nil {
			t.Errorf("a registry answering %d: %v, want none", code, err)
		}
		refusing.Close()
	}

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	host := strings.TrimPrefix(failing.URL, "http://")
	err := CheckRegistry(t.Context(), host+"/app:1", Sources{})
	if err == nil || !strings.HasPrefix(err.Error(), "the registry "+host+": ") || !strings.Contains(err.Error(), "503") {
		t.Errorf("a registry answering 503: %v", err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	goneHost := strings.TrimPrefix(gone.URL, "http://")
	gone.Close()
	if err := CheckRegistry(t.Context(), goneHost+"/app:1", Sources{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a registry that is gone: %v", err)
	}

	if err := CheckRegistry(t.Context(), "App:1", Sources{}); err == nil || !strings.HasPrefix(err.Error(), "App:1: not an image reference") {
		t.Errorf("a bad reference: %v", err)
	}
}
