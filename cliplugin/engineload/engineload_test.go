package engineload

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
)

// --- archives written by the tests ---

// layout is an OCI layout being written: file name → content.
type layout map[string][]byte

func (l layout) blob(mediaType string, data []byte) ocispecs.Descriptor {
	d := digest.FromBytes(data)
	l["blobs/sha256/"+d.Encoded()] = data
	return ocispecs.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func (l layout) json(mediaType string, v any) ocispecs.Descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return l.blob(mediaType, data)
}

// layerTar is a layer holding one file, /platform, that says which image
// it belongs to, so a test sees which image the engine got.
func layerTar(content string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "platform", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		panic(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	return buf.Bytes()
}

func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// image adds an image of platform p (its config's platform) whose layer
// holds the platform's name, and returns its manifest's descriptor.
func (l layout) image(p ocispecs.Platform) ocispecs.Descriptor {
	raw := layerTar(platforms.Format(p))
	layer := l.blob(ocispecs.MediaTypeImageLayerGzip, gzipped(raw))
	config := l.json(ocispecs.MediaTypeImageConfig, ocispecs.Image{
		Platform: p,
		Config:   ocispecs.ImageConfig{Cmd: []string{"/platform"}},
		RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw)}},
	})
	return l.json(ocispecs.MediaTypeImageManifest, ocispecs.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispecs.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispecs.Descriptor{layer},
	})
}

// finish writes oci-layout and index.json.
func (l layout) finish(manifests ...ocispecs.Descriptor) layout {
	l["oci-layout"] = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	data, _ := json.Marshal(index(manifests...))
	l["index.json"] = data
	return l
}

func index(manifests ...ocispecs.Descriptor) ocispecs.Index {
	return ocispecs.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispecs.MediaTypeImageIndex, Manifests: manifests}
}

func named(d ocispecs.Descriptor, name, refName string) ocispecs.Descriptor {
	d.Annotations = map[string]string{"io.containerd.image.name": name, ocispecs.AnnotationRefName: refName}
	return d
}

func onPlatform(d ocispecs.Descriptor, p ocispecs.Platform) ocispecs.Descriptor {
	d.Platform = &p
	return d
}

var fourPlatforms = []ocispecs.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "386"},
	{OS: "linux", Architecture: "arm", Variant: "v7"},
	{OS: "linux", Architecture: "mips64le"},
}

const multiName = "docker.io/storepack/multi:1"

// multiPlatform is an OCI layout as BuildKit exports a multi-platform
// image: index.json names a nested index of the platforms' manifests and
// an attestation manifest (platform unknown/unknown).
func multiPlatform(ps ...ocispecs.Platform) layout {
	l := layout{}
	var manifests []ocispecs.Descriptor
	for _, p := range ps {
		manifests = append(manifests, onPlatform(l.image(p), p))
	}
	att := l.image(ocispecs.Platform{OS: "unknown", Architecture: "unknown"})
	att.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": manifests[0].Digest.String()}
	manifests = append(manifests, onPlatform(att, ocispecs.Platform{OS: "unknown", Architecture: "unknown"}))
	inner := l.json(ocispecs.MediaTypeImageIndex, index(manifests...))
	return l.finish(named(inner, multiName, "1"))
}

// order lists a layout's files as BuildKit writes them: blobs first.
func (l layout) order() []string {
	names := make([]string, 0, len(l))
	for name := range l {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// tarOf writes files in the given order; trailer false leaves out the
// end-of-archive blocks, as a copy cut off after a file does.
func tarOf(files map[string][]byte, order []string, trailer bool) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range order {
		data := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			panic(err)
		}
		tw.Write(data)
	}
	tw.Flush()
	if trailer {
		tw.Close()
	}
	return buf.Bytes()
}

func (l layout) tar() []byte { return tarOf(l, l.order(), true) }

func (l layout) dir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range l {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dockerArchive is what `docker save` writes for one image of platform p
// (uncompressed layer, RepoTags in manifest.json).
func dockerArchive(p ocispecs.Platform, tags ...string) []byte {
	raw := layerTar("docker " + platforms.Format(p))
	config, _ := json.Marshal(ocispecs.Image{
		Platform: p,
		RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw)}},
	})
	id := digest.FromBytes(config).Encoded()
	manifest, _ := json.Marshal([]dockerManifest{{Config: id + ".json", RepoTags: tags, Layers: []string{"0123/layer.tar"}}})
	files := map[string][]byte{id + ".json": config, "0123/layer.tar": raw, "manifest.json": manifest}
	return tarOf(files, []string{"0123/layer.tar", id + ".json", "manifest.json"}, true)
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// --- the engine ---

type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// fakeEngine loads docker archives as Docker 20.10 does: it reads
// manifest.json, the config and every layer, and checks the layers'
// diffIDs against the config.
type fakeEngine struct {
	calls    int
	manifest []dockerManifest
	config   ocispecs.Image
	files    map[string]string // the layers' files
	answer   string            // JSON messages to answer with; "" is the usual
	refuse   error             // returned by ImageLoad itself
}

func (f *fakeEngine) ImageLoad(ctx context.Context, input io.Reader, _ ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	f.calls++
	if f.refuse != nil {
		return nil, f.refuse
	}
	files := map[string][]byte{}
	tr := tar.NewReader(input)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		files[path.Clean(h.Name)] = data
	}
	if err := json.Unmarshal(files["manifest.json"], &f.manifest); err != nil || len(f.manifest) != 1 {
		return nil, fmt.Errorf("engine: manifest.json: want one image, %v", err)
	}
	m := f.manifest[0]
	config, ok := files[m.Config]
	if !ok {
		return nil, fmt.Errorf("engine: no config %s", m.Config)
	}
	if err := json.Unmarshal(config, &f.config); err != nil {
		return nil, fmt.Errorf("engine: config: %w", err)
	}
	if len(m.Layers) != len(f.config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("engine: %d layers, %d diffIDs", len(m.Layers), len(f.config.RootFS.DiffIDs))
	}
	f.files = map[string]string{}
	for i, name := range m.Layers {
		data, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("engine: no layer %s", name)
		}
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if data, err = io.ReadAll(zr); err != nil {
				return nil, fmt.Errorf("engine: layer %s: %w", name, err)
			}
		}
		if digest.FromBytes(data) != f.config.RootFS.DiffIDs[i] {
			return nil, fmt.Errorf("engine: layer %s has the wrong diffID", name)
		}
		ltr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := ltr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("engine: layer %s: %w", name, err)
			}
			content, _ := io.ReadAll(ltr)
			f.files[h.Name] = string(content)
		}
	}
	answer := f.answer
	if answer == "" {
		var msgs strings.Builder
		for _, tag := range m.RepoTags {
			fmt.Fprintf(&msgs, `{"stream":"Loaded image: %s\n"}`+"\n", tag)
		}
		if len(m.RepoTags) == 0 {
			fmt.Fprintf(&msgs, `{"stream":"Loaded image ID: %s\n"}`+"\n", digest.FromBytes(config))
		}
		answer = msgs.String()
	}
	return io.NopCloser(strings.NewReader(answer)), nil
}

// loaded is the platform file of the image the engine got.
func (f *fakeEngine) loaded() string { return f.files["platform"] }

func (f *fakeEngine) tags() []string {
	if len(f.manifest) != 1 {
		return nil
	}
	return f.manifest[0].RepoTags
}

// load runs Load with TMPDIR (where Load makes its content store) pointed
// at an empty directory, and checks that Load leaves it empty.
func load(t *testing.T, engine ImageLoader, src string, in io.Reader, opt Options) (out string, err error) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	var buf bytes.Buffer
	if opt.Out == nil {
		opt.Out = &buf
	}
	err = Load(context.Background(), engine, src, in, opt)
	if left, rerr := os.ReadDir(tmp); rerr != nil || len(left) != 0 {
		t.Errorf("Load left %v in TMPDIR (%v)", left, rerr)
	}
	return buf.String(), err
}

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// --- tests ---

func TestMultiPlatformPicksRequested(t *testing.T) {
	file := writeTemp(t, "multi.tar", multiPlatform(fourPlatforms...).tar())
	for _, tc := range []struct {
		name string
		want ocispecs.Platform
		ask  ocispecs.Platform
	}{
		{"amd64", fourPlatforms[0], amd64},
		{"386", fourPlatforms[1], ocispecs.Platform{OS: "linux", Architecture: "386"}},
		{"arm/v7", fourPlatforms[2], ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{"arm normalised to arm/v7", fourPlatforms[2], ocispecs.Platform{OS: "linux", Architecture: "arm"}},
		{"mips64le", fourPlatforms[3], ocispecs.Platform{OS: "linux", Architecture: "mips64le"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine := &fakeEngine{}
			out, err := load(t, engine, file, nil, Options{Platform: tc.ask, Exact: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := engine.loaded(); got != platforms.Format(tc.want) {
				t.Errorf("the engine got the image of %q, want %s", got, platforms.Format(tc.want))
			}
			if engine.config.Architecture != tc.want.Architecture || engine.config.Variant != tc.want.Variant {
				t.Errorf("the engine got a config for %s/%s", engine.config.Architecture, engine.config.Variant)
			}
			if want := []string{"storepack/multi:1"}; !slices.Equal(engine.tags(), want) {
				t.Errorf("RepoTags %v, want the archive's name %v", engine.tags(), want)
			}
			if want := "Loaded image: storepack/multi:1\n"; out != want {
				t.Errorf("printed %q, want the engine's %q", out, want)
			}
		})
	}
}

// An exact match wins over a compatible platform listed before it, and an
// index entry "linux/arm" (no variant) is arm/v7.
func TestPlatformPreference(t *testing.T) {
	l := layout{}
	i386 := ocispecs.Platform{OS: "linux", Architecture: "386"}
	arm := ocispecs.Platform{OS: "linux", Architecture: "arm"}
	l.finish(onPlatform(l.image(i386), i386), onPlatform(l.image(amd64), amd64), onPlatform(l.image(arm), arm))
	file := writeTemp(t, "oci.tar", l.tar())
	engine := &fakeEngine{}
	if _, err := load(t, engine, file, nil, Options{Platform: amd64}); err != nil {
		t.Fatal(err)
	}
	if engine.loaded() != "linux/amd64" {
		t.Errorf("asked for linux/amd64, the engine got %q", engine.loaded())
	}
	engine = &fakeEngine{}
	if _, err := load(t, engine, file, nil, Options{Platform: ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}}); err != nil {
		t.Fatal(err)
	}
	if engine.loaded() != "linux/arm" {
		t.Errorf("asked for linux/arm/v7, the engine got %q", engine.loaded())
	}

	// Without amd64, an amd64 engine gets the 386 image, unless amd64
	// was asked for exactly.
	l = layout{}
	l.finish(onPlatform(l.image(i386), i386), onPlatform(l.image(arm), arm))
	file = writeTemp(t, "386.tar", l.tar())
	engine = &fakeEngine{}
	if _, err := load(t, engine, file, nil, Options{Platform: amd64}); err != nil || engine.loaded() != "linux/386" {
		t.Errorf("the best for linux/amd64: err %v, the engine got %q", err, engine.loaded())
	}
	engine = &fakeEngine{}
	_, err := load(t, engine, file, nil, Options{Platform: amd64, Exact: true})
	checkRefused(t, engine, err, file+": no image for linux/amd64 (it has linux/386, linux/arm/v7)")
}

// arm64 runs arm/v7, but asked for exactly, arm64 is not there.
func TestMissingPlatform(t *testing.T) {
	file := writeTemp(t, "multi.tar", multiPlatform(fourPlatforms...).tar())
	for _, tc := range []struct {
		ask   ocispecs.Platform
		exact bool
		want  string
	}{
		{ocispecs.Platform{OS: "linux", Architecture: "s390x"}, false, "linux/s390x"},
		{ocispecs.Platform{OS: "linux", Architecture: "arm64"}, true, "linux/arm64"},
	} {
		engine := &fakeEngine{}
		_, err := load(t, engine, file, nil, Options{Platform: tc.ask, Exact: tc.exact})
		want := file + ": no image for " + tc.want + " (it has linux/386, linux/amd64, linux/arm/v7, linux/mips64le)"
		if err == nil || err.Error() != want {
			t.Errorf("err %v, want %q", err, want)
		}
		if engine.calls != 0 {
			t.Errorf("the engine was asked to load %d times", engine.calls)
		}
	}
}

// A single image with no platform in index.json: the config says it.
func TestSingleManifestLayout(t *testing.T) {
	l := layout{}
	mips := ocispecs.Platform{OS: "linux", Architecture: "mips64le"}
	l.finish(named(l.image(mips), "docker.io/library/single:2", "2"))
	dir := l.dir(t)
	engine := &fakeEngine{}
	if _, err := load(t, engine, dir, nil, Options{Platform: mips}); err != nil {
		t.Fatal(err)
	}
	if engine.loaded() != "linux/mips64le" || !slices.Equal(engine.tags(), []string{"single:2"}) {
		t.Errorf("the engine got %q tagged %v, want linux/mips64le tagged single:2", engine.loaded(), engine.tags())
	}
	engine = &fakeEngine{}
	_, err := load(t, engine, dir, nil, Options{Platform: amd64})
	if err == nil || !strings.Contains(err.Error(), dir+": no image for linux/amd64 (it has linux/mips64le)") || engine.calls != 0 {
		t.Errorf("asked for linux/amd64: err %v, %d loads", err, engine.calls)
	}
}

func TestLayoutDirectory(t *testing.T) {
	dir := multiPlatform(fourPlatforms...).dir(t)
	engine := &fakeEngine{}
	if _, err := load(t, engine, dir, nil, Options{Platform: fourPlatforms[3]}); err != nil {
		t.Fatal(err)
	}
	if engine.loaded() != "linux/mips64le" {
		t.Errorf("the engine got %q", engine.loaded())
	}
}

func TestNotALayoutDirectory(t *testing.T) {
	empty := t.TempDir()
	noIndex := t.TempDir()
	if err := os.WriteFile(filepath.Join(noIndex, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, want string }{
		{"no oci-layout", empty, empty + ": a directory, but not an OCI layout (no oci-layout)"},
		{"no index.json", noIndex, noIndex + ": not a docker or OCI archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine := &fakeEngine{}
			_, err := load(t, engine, tc.dir, nil, Options{Platform: amd64})
			checkRefused(t, engine, err, tc.want)
		})
	}
}

// checkRefused: one line that starts with want, and nothing loaded.
func checkRefused(t *testing.T, engine *fakeEngine, err error, want string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("err %v, want one line starting %q", err, want)
	}
	if engine.calls != 0 {
		t.Errorf("the engine was asked to load %d times", engine.calls)
	}
}

func TestNotAnArchive(t *testing.T) {
	random := make([]byte, 4096)
	rand.Read(random)
	l := multiPlatform(fourPlatforms...)
	archive := l.tar()
	gz := gzipped(archive)

	// The blobs the amd64 image needs: its manifest, config and layer.
	var top, inner ocispecs.Index
	json.Unmarshal(l["index.json"], &top)
	json.Unmarshal(l["blobs/sha256/"+top.Manifests[0].Digest.Encoded()], &inner)
	var m ocispecs.Manifest
	json.Unmarshal(l["blobs/sha256/"+inner.Manifests[0].Digest.Encoded()], &m)
	layer := "blobs/sha256/" + m.Layers[0].Digest.Encoded()
	config := "blobs/sha256/" + m.Config.Digest.Encoded()

	// Cut off before the amd64 layer: a tar that ends cleanly after a file.
	lastLayer := append(slices.DeleteFunc(l.order(), func(n string) bool { return n == layer }), layer)
	withoutLayer := tarOf(l, lastLayer[:len(lastLayer)-1], false)
	// The layer's bytes changed: stored under another digest.
	corruptLayer := layout{}
	for k, v := range l {
		corruptLayer[k] = v
	}
	bad := slices.Clone(l[layer])
	bad[len(bad)/2] ^= 0xff
	corruptLayer[layer] = bad
	// The nested index of the platforms is not there.
	withoutIndex := tarOf(l, slices.DeleteFunc(l.order(), func(n string) bool { return n == "blobs/sha256/"+top.Manifests[0].Digest.Encoded() }), true)
	// The config is not where the manifest says.
	withoutConfig := tarOf(l, slices.DeleteFunc(l.order(), func(n string) bool { return n == config }), true)
	corruptGzip := slices.Clone(gz)
	for i := 10; i < 40; i++ {
		corruptGzip[i] ^= 0x55
	}

	for _, tc := range []struct {
		name string
		data []byte
		want string // after the file's name
	}{
		{"random bytes", random, ": not a docker or OCI archive"},
		{"empty", nil, ": not a docker or OCI archive"},
		{"text", []byte("hello\n"), ": not a docker or OCI archive"},
		{"tar of something else", tarOf(map[string][]byte{"etc/hostname": []byte("x\n")}, []string{"etc/hostname"}, true), ": not a docker or OCI archive"},
		{"truncated inside a blob", archive[:len(archive)/2], ": not a docker or OCI archive"},
		{"truncated gzip", gz[:len(gz)/2], ": not a docker or OCI archive"},
		{"corrupt gzip", corruptGzip, ": "},
		{"truncated before a layer", withoutLayer, ": the linux/amd64 image lacks blob " + m.Layers[0].Digest.String()},
		{"corrupt layer", corruptLayer.tar(), ": the linux/amd64 image lacks blob " + m.Layers[0].Digest.String()},
		{"index missing", withoutIndex, ": blob " + top.Manifests[0].Digest.String() + " is missing, the archive is truncated or corrupt"},
		{"config missing", withoutConfig, ": the linux/amd64 image lacks blob " + m.Config.Digest.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeTemp(t, "image.tar", tc.data)
			engine := &fakeEngine{}
			_, err := load(t, engine, file, nil, Options{Platform: amd64})
			checkRefused(t, engine, err, file+tc.want)
		})
	}
	t.Run("no such file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "none.tar")
		engine := &fakeEngine{}
		_, err := load(t, engine, file, nil, Options{Platform: amd64})
		if err == nil || !strings.Contains(err.Error(), file) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err %v, want one naming %s", err, file)
		}
		if engine.calls != 0 {
			t.Errorf("the engine was asked to load %d times", engine.calls)
		}
	})
}

func TestStandardInput(t *testing.T) {
	archive := multiPlatform(fourPlatforms...).tar()
	for _, tc := range []struct {
		name string
		data []byte
	}{{"tar", archive}, {"gzip", gzipped(archive)}} {
		t.Run(tc.name, func(t *testing.T) {
			engine := &fakeEngine{}
			if _, err := load(t, engine, "-", bytes.NewReader(tc.data), Options{Platform: fourPlatforms[2]}); err != nil {
				t.Fatal(err)
			}
			if engine.loaded() != "linux/arm/v7" {
				t.Errorf("the engine got %q", engine.loaded())
			}
		})
	}
	t.Run("not an archive", func(t *testing.T) {
		engine := &fakeEngine{}
		_, err := load(t, engine, "-", strings.NewReader("hello\n"), Options{Platform: amd64})
		checkRefused(t, engine, err, "standard input: not a docker or OCI archive")
	})
}

func TestCompressedArchive(t *testing.T) {
	file := writeTemp(t, "multi.tar.gz", gzipped(multiPlatform(fourPlatforms...).tar()))
	engine := &fakeEngine{}
	if _, err := load(t, engine, file, nil, Options{Platform: fourPlatforms[1]}); err != nil {
		t.Fatal(err)
	}
	if engine.loaded() != "linux/386" {
		t.Errorf("the engine got %q", engine.loaded())
	}
}

func TestDockerArchive(t *testing.T) {
	file := writeTemp(t, "saved.tar", dockerArchive(amd64, "storepack/saved:1", "example.com/x/saved:2"))
	engine := &fakeEngine{}
	if _, err := load(t, engine, file, nil, Options{Platform: amd64}); err != nil {
		t.Fatal(err)
	}
	if engine.loaded() != "docker linux/amd64" {
		t.Errorf("the engine got %q", engine.loaded())
	}
	if got, want := sorted(engine.tags()), []string{"example.com/x/saved:2", "storepack/saved:1"}; !slices.Equal(got, want) {
		t.Errorf("RepoTags %v, want %v", got, want)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Names given replace the archive's; an image without names loads untagged.
func TestNames(t *testing.T) {
	file := writeTemp(t, "multi.tar", multiPlatform(fourPlatforms...).tar())
	engine := &fakeEngine{}
	out, err := load(t, engine, file, nil, Options{Platform: amd64, Names: []string{"example.com/app:arm", "app"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(engine.tags()), []string{"app:latest", "example.com/app:arm"}; !slices.Equal(got, want) {
		t.Errorf("RepoTags %v, want %v and not the archive's name", got, want)
	}
	if !strings.Contains(out, "Loaded image: app:latest\n") {
		t.Errorf("printed %q", out)
	}

	saved := writeTemp(t, "saved.tar", dockerArchive(amd64, "storepack/saved:1"))
	engine = &fakeEngine{}
	if _, err := load(t, engine, saved, nil, Options{Platform: amd64, Names: []string{"renamed:1"}}); err != nil {
		t.Fatal(err)
	}
	if got := engine.tags(); !slices.Equal(got, []string{"renamed:1"}) {
		t.Errorf("docker archive: RepoTags %v, want [renamed:1]", got)
	}

	l := layout{}
	l.finish(l.image(amd64))
	engine = &fakeEngine{}
	out, err = load(t, engine, writeTemp(t, "unnamed.tar", l.tar()), nil, Options{Platform: amd64})
	if err != nil {
		t.Fatal(err)
	}
	if len(engine.tags()) != 0 || !strings.HasPrefix(out, "Loaded image ID: sha256:") {
		t.Errorf("unnamed image: RepoTags %v, printed %q", engine.tags(), out)
	}

	// A name annotation that is no image reference is no name either.
	l = layout{}
	l.finish(named(l.image(amd64), "Not/A:Valid:Name", "latest"))
	engine = &fakeEngine{}
	if _, err := load(t, engine, writeTemp(t, "badname.tar", l.tar()), nil, Options{Platform: amd64}); err != nil {
		t.Fatal(err)
	}
	if len(engine.tags()) != 0 {
		t.Errorf("invalid name: RepoTags %v", engine.tags())
	}
}

// layoutEngine keeps the files of the archive it loads, as the containerd
// image store reads an OCI layout.
type layoutEngine struct{ files map[string][]byte }

func (f *layoutEngine) ImageLoad(ctx context.Context, input io.Reader, _ ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	f.files = map[string][]byte{}
	tr := tar.NewReader(input)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return io.NopCloser(strings.NewReader(`{"stream":"Loaded image"}` + "\n")), nil
		}
		if err != nil {
			return nil, err
		}
		if f.files[path.Clean(h.Name)], err = io.ReadAll(tr); err != nil {
			return nil, err
		}
	}
}

// An engine that keeps indexes gets the index of the image, named, with
// the blobs of that platform's image alone: the others' manifests, configs
// and layers stay out.
func TestIndexStore(t *testing.T) {
	l := multiPlatform(fourPlatforms...)
	file := writeTemp(t, "multi.tar", l.tar())
	engine := &layoutEngine{}
	if _, err := load(t, engine, file, nil, Options{Platform: fourPlatforms[2], Exact: true, IndexStore: true, Names: []string{"docker.io/library/app:arm"}}); err != nil {
		t.Fatal(err)
	}
	var top, inner ocispecs.Index
	if err := json.Unmarshal(l["index.json"], &top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(l["blobs/sha256/"+top.Manifests[0].Digest.Encoded()], &inner); err != nil {
		t.Fatal(err)
	}
	var got ocispecs.Index
	if err := json.Unmarshal(engine.files["index.json"], &got); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(got.Manifests) != 1 || got.Manifests[0].Digest != top.Manifests[0].Digest || got.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/app:arm" {
		t.Errorf("index.json lists %+v, want the archive's index %s named docker.io/library/app:arm", got.Manifests, top.Manifests[0].Digest)
	}
	if _, ok := engine.files["manifest.json"]; ok {
		t.Error("the archive has a manifest.json")
	}
	for _, m := range inner.Manifests {
		_, sent := engine.files["blobs/sha256/"+m.Digest.Encoded()]
		if want := platforms.Format(*m.Platform) == "linux/arm/v7"; sent != want {
			t.Errorf("manifest of %s sent: %v, want %v", platforms.Format(*m.Platform), sent, want)
		}
	}
	if !bytes.Equal(engine.files["blobs/sha256/"+top.Manifests[0].Digest.Encoded()], l["blobs/sha256/"+top.Manifests[0].Digest.Encoded()]) {
		t.Error("the index was not sent as it is")
	}
	// index, arm's manifest, config and layer
	if blobs := len(engine.files) - 2 - 2; blobs != 4 {
		t.Errorf("%d blobs sent, want 4: %v", blobs, slices.Sorted(maps.Keys(engine.files)))
	}
}

// Progress names the platform actually loaded, after the archive was read.
func TestProgress(t *testing.T) {
	file := writeTemp(t, "multi.tar", multiPlatform(fourPlatforms...).tar())
	var progress bytes.Buffer
	if _, err := load(t, &fakeEngine{}, file, nil, Options{Platform: ocispecs.Platform{OS: "linux", Architecture: "arm"}, Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if want := "Loading the linux/arm/v7 image of " + file + " alone: the engine's image store keeps one platform per image, not the index\n"; progress.String() != want {
		t.Errorf("progress %q, want %q", progress.String(), want)
	}
	progress.Reset()
	if _, err := load(t, &layoutEngine{}, file, nil, Options{Platform: amd64, IndexStore: true, Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if want := "Loading the linux/amd64 image of " + file + ", into the engine's image of its index\n"; progress.String() != want {
		t.Errorf("progress %q, want %q", progress.String(), want)
	}
	progress.Reset()
	single := writeTemp(t, "single.tar", dockerArchive(amd64, "storepack/single:1"))
	if _, err := load(t, &fakeEngine{}, single, nil, Options{Platform: amd64, Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if want := "Loading the linux/amd64 image of " + single + "\n"; progress.String() != want {
		t.Errorf("an image of no index: progress %q, want %q", progress.String(), want)
	}
	progress.Reset()
	if _, err := load(t, &fakeEngine{}, file, nil, Options{Platform: ocispecs.Platform{OS: "linux", Architecture: "s390x"}, Progress: &progress}); err == nil || progress.Len() != 0 {
		t.Errorf("no image for the platform: err %v, progress %q", err, progress.String())
	}
}

// containerd's packages must not add log lines to the user's terminal
// (its content store warns where the file system lacks fs-verity).
func TestNoLogLines(t *testing.T) {
	var logged bytes.Buffer
	std := logrus.StandardLogger()
	saved := std.Out
	std.SetOutput(&logged)
	t.Cleanup(func() { std.SetOutput(saved) })
	file := writeTemp(t, "multi.tar", multiPlatform(fourPlatforms...).tar())
	if _, err := load(t, &fakeEngine{}, file, nil, Options{Platform: amd64}); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, &fakeEngine{}, writeTemp(t, "text", []byte("hello\n")), nil, Options{Platform: amd64}); err == nil {
		t.Error("a text file loaded")
	}
	if logged.Len() != 0 {
		t.Errorf("logged:\n%s", logged.String())
	}
	if std.GetLevel() != logrus.InfoLevel {
		t.Errorf("the log level is %v after Load, was info", std.GetLevel())
	}
}

// The engine's refusal is Load's error, whether it comes as an answer or
// in the stream of messages, and Load cleans up after it.
func TestEngineRefuses(t *testing.T) {
	file := writeTemp(t, "multi.tar", multiPlatform(fourPlatforms...).tar())
	engine := &fakeEngine{refuse: errors.New("Cannot connect to the Docker daemon")}
	if _, err := load(t, engine, file, nil, Options{Platform: amd64}); err == nil || !strings.Contains(err.Error(), "Cannot connect to the Docker daemon") {
		t.Errorf("err %v, want the client's", err)
	}
	engine = &fakeEngine{answer: `{"errorDetail":{"message":"no space left on device"},"error":"no space left on device"}` + "\n"}
	if _, err := load(t, engine, file, nil, Options{Platform: amd64}); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("err %v, want the engine's", err)
	}
}
