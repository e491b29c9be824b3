//go:build unix

package imageverify

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

var epoch = time.Unix(1700000000, 0).UTC()

// built is an image as storepack writes it of a host store: two store
// layers (Lib and Libc together, then App) and a customisation layer, with
// each layer's tar kept as it was when built.
type built struct {
	s      *storetest.HostStore
	img    Image
	tars   map[int][]byte
	custom []layerllb.Entry // the customisation layer's
}

func build(t *testing.T, base []ocispecs.History, baseDiffIDs []digest.Digest) *built {
	t.Helper()
	s := storetest.NewHostStore(t)
	plan := layering.Plan{Strategy: "test", Layers: []layering.Layer{
		{Key: "lib", Paths: []store.Path{s.Lib, s.Libc}},
		{Key: "app", Paths: []store.Path{s.App}},
	}}
	opt := layerllb.ImageOptions{Epoch: epoch, Customisation: true}
	if base != nil {
		opt.Base = &dockerspec.DockerOCIImage{Image: ocispecs.Image{History: base}}
	}
	cfg, err := layerllb.Image(plan, opt)
	if err != nil {
		t.Fatal(err)
	}
	b := &built{s: s, tars: map[int][]byte{}}
	diffIDs := slices.Clone(baseDiffIDs)
	for _, l := range plan.Layers {
		var buf bytes.Buffer
		if err := layertar.Write(context.Background(), &buf, layertar.Layer{StoreDir: s.Dir, HostDir: s.Dir, Paths: l.Paths, Epoch: epoch}); err != nil {
			t.Fatal(err)
		}
		b.tars[len(diffIDs)] = buf.Bytes()
		diffIDs = append(diffIDs, digest.FromBytes(buf.Bytes()))
	}
	b.custom = layerllb.Customisation{Links: []layerllb.Link{{Path: "/bin", Target: s.App.String() + "/bin"}}, Dirs: []layerllb.Dir{{Path: "/tmp", Mode: 0o755}}}.Entries()
	var custom bytes.Buffer
	if err := layertar.WriteEntries(context.Background(), &custom, b.custom, epoch); err != nil {
		t.Fatal(err)
	}
	b.tars[len(diffIDs)] = custom.Bytes()
	diffIDs = append(diffIDs, digest.FromBytes(custom.Bytes()))
	b.img = Image{Name: "test", Labels: cfg.Config.Labels, Created: cfg.Created, DiffIDs: diffIDs, History: cfg.History,
		Layer: func(_ context.Context, i int) (io.ReadCloser, error) {
			data, ok := b.tars[i]
			if !ok {
				return nil, errors.New("no such layer")
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		}}
	return b
}

func check(t *testing.T, img Image, opt Options) Report {
	t.Helper()
	r, err := Check(context.Background(), img, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func statuses(r Report) []Status {
	var out []Status
	for _, l := range r.Layers {
		out = append(out, l.Status)
	}
	return out
}

// TestCheckUnchanged: every store layer of an image made from an unchanged
// store is rebuilt with its diffID; the customisation layer is not checked.
func TestCheckUnchanged(t *testing.T) {
	b := build(t, nil, nil)
	r := check(t, b.img, Options{})
	if want := []Status{Match, Match, NotChecked}; !slices.Equal(statuses(r), want) {
		t.Fatalf("statuses %v, want %v", statuses(r), want)
	}
	if !r.Verified() {
		t.Error("an unchanged image is not verified")
	}
	if r.Layers[0].Rebuilt != b.img.DiffIDs[0] {
		t.Errorf("rebuilt %s, want %s", r.Layers[0].Rebuilt, b.img.DiffIDs[0])
	}
}

// alter changes one file of p in the store.
func alter(t *testing.T, s *storetest.HostStore, p store.Path) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(s.Dir, p.Base()), func(name string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if err := os.Chmod(name, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(name, []byte("altered"), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(name, 0o444); err != nil {
			return err
		}
		return filepath.SkipAll
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckAltered: after one file of one store path changed, its layer
// differs and names that path alone, though the layer holds another; with
// no layer to read, every path of the layer is named.
func TestCheckAltered(t *testing.T) {
	b := build(t, nil, nil)
	alter(t, b.s, b.s.Libc)
	r := check(t, b.img, Options{})
	if want := []Status{Differs, Match, NotChecked}; !slices.Equal(statuses(r), want) {
		t.Fatalf("statuses %v, want %v", statuses(r), want)
	}
	if got := r.Layers[0].Culprits; !slices.Equal(got, []store.Path{b.s.Libc}) {
		t.Errorf("culprits %v, want %v", got, b.s.Libc)
	}
	if r.Verified() {
		t.Error("an altered store verifies")
	}

	b.img.Layer = nil
	r = check(t, b.img, Options{})
	if got := r.Layers[0].Culprits; !slices.Equal(got, []store.Path{b.s.Lib, b.s.Libc}) {
		t.Errorf("culprits without the image's layer %v, want the layer's paths", got)
	}
}

// TestCheckSameFiles: a layer whose tar holds the same files in other
// headers (another builder's writer) passes as SameFiles; one whose file
// times differ does not.
func TestCheckSameFiles(t *testing.T) {
	b := build(t, nil, nil)
	for _, tc := range []struct {
		name    string
		rewrite func(h *tar.Header)
		want    Status
	}{
		{"mode type bits, PAX", func(h *tar.Header) {
			h.Format = tar.FormatPAX
			if h.Typeflag == tar.TypeDir {
				h.Mode |= 0o40000
			}
		}, SameFiles},
		{"other times", func(h *tar.Header) { h.ModTime = h.ModTime.Add(time.Hour) }, Differs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := rewriteTar(t, b.tars[1], tc.rewrite)
			img := b.img
			img.DiffIDs = slices.Clone(img.DiffIDs)
			img.DiffIDs[1] = digest.FromBytes(other)
			img.Layer = func(context.Context, int) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(other)), nil }
			r := check(t, img, Options{})
			if r.Layers[1].Status != tc.want {
				t.Errorf("status %v, want %v", r.Layers[1].Status, tc.want)
			}
			if r.Verified() != (tc.want == SameFiles) {
				t.Errorf("verified %v", r.Verified())
			}
		})
	}
}

func rewriteTar(t *testing.T, data []byte, rewrite func(*tar.Header)) []byte {
	t.Helper()
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(data)), tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rewrite(h)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestCheckMissing: a store path absent from the host's store is named.
func TestCheckMissing(t *testing.T) {
	b := build(t, nil, nil)
	dir := filepath.Join(b.s.Dir, b.s.App.Base())
	if err := filepath.WalkDir(dir, func(name string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chmod(name, 0o755)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r := check(t, b.img, Options{})
	if l := r.Layers[1]; l.Status != Missing || !slices.Equal(l.Culprits, []store.Path{b.s.App}) {
		t.Errorf("layer 2: %v %v, want MISSING %s", l.Status, l.Culprits, b.s.App)
	}
	if r.Verified() {
		t.Error("a store that lacks a path verifies")
	}
}

// TestCheckAgainst: inputs that put other store paths in a layer make it
// differ, naming the paths in one only; a plan of another size is an error.
func TestCheckAgainst(t *testing.T) {
	b := build(t, nil, nil)
	against := Inputs{Plan: layering.Plan{Layers: []layering.Layer{
		{Paths: []store.Path{b.s.Lib, b.s.Libc}},
		{Paths: []store.Path{b.s.App, b.s.Data}},
	}}}
	r := check(t, b.img, Options{Against: &against})
	if want := []Status{Match, Differs, NotChecked}; !slices.Equal(statuses(r), want) {
		t.Fatalf("statuses %v, want %v", statuses(r), want)
	}
	if got := r.Layers[1].Culprits; !slices.Equal(got, []store.Path{b.s.Data}) {
		t.Errorf("culprits %v, want %s", got, b.s.Data)
	}
	against.Plan.Layers = against.Plan.Layers[:1]
	if _, err := Check(context.Background(), b.img, Options{Against: &against}); err == nil || !strings.Contains(err.Error(), "1 store layers, the image records 2") {
		t.Errorf("a plan of another size: %v", err)
	}
}

// TestLayoutOf: the store layers are the end of the history, above a base
// image's layers and its empty entries, also from an engine's history that
// marks no entry empty; an image that records no plan, or whose layers were
// changed after, is refused.
func TestLayoutOf(t *testing.T) {
	base := []ocispecs.History{{CreatedBy: "ADD rootfs"}, {CreatedBy: "ENV x", EmptyLayer: true}, {CreatedBy: "RUN y"}}
	b := build(t, base, []digest.Digest{digest.FromString("a"), digest.FromString("b")})
	l, err := LayoutOf(b.img)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Kind{Base, Base, Store, Store, Customisation}; !slices.Equal(l.Kinds, want) || l.FirstStore != 2 || !l.Epoch.Equal(epoch) {
		t.Errorf("layout %v from %d at %v, want %v from 2 at %v", l.Kinds, l.FirstStore, l.Epoch, want, epoch)
	}
	engine := b.img
	engine.History = slices.Clone(engine.History)
	for i := range engine.History {
		engine.History[i].EmptyLayer = false
	}
	if le, err := LayoutOf(engine); err != nil || !slices.Equal(le.Kinds, l.Kinds) {
		t.Errorf("from an engine's history: %v, %v", le.Kinds, err)
	}
	r := check(t, b.img, Options{})
	if want := []Status{NotChecked, NotChecked, Match, Match, NotChecked}; !slices.Equal(statuses(r), want) {
		t.Errorf("statuses %v, want %v", statuses(r), want)
	}

	changed := b.img
	changed.History = append(slices.Clone(changed.History), ocispecs.History{CreatedBy: "RUN rm -rf /nix"})
	changed.DiffIDs = append(slices.Clone(changed.DiffIDs), digest.FromString("more"))
	if _, err := LayoutOf(changed); err == nil || !strings.Contains(err.Error(), "changed after storepack built it") {
		t.Errorf("an image changed after: %v", err)
	}

	other := b.img
	other.Labels = map[string]string{"maintainer": "someone"}
	if _, err := Check(context.Background(), other, Options{}); !errors.Is(err, ErrNotStorepack) {
		t.Errorf("an image storepack did not build: %v", err)
	}
}

// TestCheckCustomisation: against inputs whose customisation layer the host
// writes, the image's is checked: the same entries match, the same files in
// other tar headers pass, another link target differs; inputs with no such
// layer, for an image with one, are an error.
func TestCheckCustomisation(t *testing.T) {
	b := build(t, nil, nil)
	top := len(b.img.DiffIDs) - 1
	against := func(entries []layerllb.Entry) Options {
		return Options{Against: &Inputs{Plan: mustLayout(t, b.img).Plan, HostWritten: true, Customisation: entries}}
	}
	if r := check(t, b.img, against(b.custom)); r.Layers[top].Status != Match || !r.Verified() {
		t.Errorf("the same entries: %v (%s)", r.Layers[top].Status, r.Layers[top].Note)
	}

	other := slices.Clone(b.custom)
	for i := range other {
		if other[i].Target != "" {
			other[i].Target = b.s.Lib.String() + "/bin"
		}
	}
	if r := check(t, b.img, against(other)); r.Layers[top].Status != Differs || r.Verified() {
		t.Errorf("another link target: %v", r.Layers[top].Status)
	}

	pax := rewriteTar(t, b.tars[top], func(h *tar.Header) { h.Format = tar.FormatPAX; h.Uname = "root" })
	img := b.img
	img.DiffIDs = slices.Clone(img.DiffIDs)
	img.DiffIDs[top] = digest.FromBytes(pax)
	img.Layer = func(context.Context, int) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(pax)), nil }
	if r := check(t, img, against(b.custom)); r.Layers[top].Status != SameFiles || !r.Verified() {
		t.Errorf("the same files in other headers: %v", r.Layers[top].Status)
	}

	if _, err := Check(context.Background(), b.img, against(nil)); err == nil || !strings.Contains(err.Error(), "the inputs make no customisation layer") {
		t.Errorf("inputs with no customisation layer: %v", err)
	}
}

func mustLayout(t *testing.T, img Image) Layout {
	t.Helper()
	l, err := LayoutOf(img)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
