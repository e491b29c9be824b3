package hostbuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/moby/buildkit/util/compression"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/hostimage"
	"github.com/storepack/storepack/cliplugin/layercache"
	"github.com/storepack/storepack/cliplugin/layerstore"
	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
)

// TestHostGzip: a layer gzipped on the host is the blob BuildKit's
// converter makes of the same uncompressed layer when an export forces
// gzip, and holds the layer's tar.
func TestHostGzip(t *testing.T) {
	ctx := context.Background()
	f := storetest.New(t, "/gnu/store")
	l := layertar.Layer{StoreDir: "/gnu/store", HostDir: f.StoreDir, Paths: []store.Path{f.Data, f.Lib}, Epoch: time.Unix(1, 0)}
	var tarball bytes.Buffer
	if err := layertar.Write(ctx, &tarball, l); err != nil {
		t.Fatal(err)
	}
	layers := layerstore.New(ctx)
	defer layers.Close()
	diffID := digest.FromBytes(tarball.Bytes())
	if _, err := layers.Add(l, diffID, int64(tarball.Len()), ocispecs.Platform{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Fatal(err)
	}
	blobs, err := newHostBlobs(layers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer blobs.Close()
	desc := layerstore.LayerDescriptor(diffID, int64(tarball.Len()))
	if _, err := blobs.gzipLayers(ctx, oneLayer(desc), false); err != nil {
		t.Fatal(err)
	}
	gz := blobs.gzipped[diffID]
	ra, err := blobs.ReaderAt(ctx, gz)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	zr, err := gzip.NewReader(content.NewReader(ra))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, tarball.Bytes()) {
		t.Fatalf("the gzipped layer holds %d bytes (%v), want the layer's %d", len(got), err, tarball.Len())
	}

	// What BuildKit's converter runs the layer through.
	comp := compression.New(compression.Gzip)
	compress, _ := comp.Type.Compress(ctx, comp)
	var converted bytes.Buffer
	zw, err := compress(&converted, comp.Type.MediaType())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, bytes.NewReader(tarball.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	want := &ocispecs.Descriptor{MediaType: comp.Type.MediaType(), Digest: digest.FromBytes(converted.Bytes()), Size: int64(converted.Len())}
	if gz.Digest != want.Digest || gz.Size != want.Size || gz.MediaType != want.MediaType {
		t.Errorf("gzipped on the host: %+v\nBuildKit's converter: %+v", gz, *want)
	}
}

func oneLayer(desc ocispecs.Descriptor) []hostimage.Platform {
	return []hostimage.Platform{{Layers: []hostimage.Layer{{Blob: desc, DiffID: desc.Digest}}}}
}

// TestHostGzipCached: a layer's gzip blob, once written, is known from the
// host's cache, so that a push writes it only when the blob is read; a
// cached blob that the layer does not compress to fails the read and is
// forgotten.
func TestHostGzipCached(t *testing.T) {
	ctx := context.Background()
	f := storetest.New(t, "/nix/store")
	l := layertar.Layer{StoreDir: "/nix/store", HostDir: f.StoreDir, Paths: []store.Path{f.Data}, Epoch: time.Unix(1, 0)}
	diffID, size, err := layertar.Digest(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	layers := layerstore.New(ctx)
	defer layers.Close()
	if _, err := layers.Add(l, diffID, size, ocispecs.Platform{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Fatal(err)
	}
	cache, err := layercache.Open(t.TempDir(), layercache.DefaultMaxEntries)
	if err != nil {
		t.Fatal(err)
	}
	entry := layercache.Entry{Key: digest.FromString("the layer's content"), DiffID: diffID, Size: size}
	if err := cache.Put(entry); err != nil {
		t.Fatal(err)
	}
	forms := &gzipForms{cache: cache}
	forms.note(entry)
	desc := layerstore.LayerDescriptor(diffID, size)
	gzipped := func(lazy bool) (*hostBlobs, ocispecs.Descriptor) {
		t.Helper()
		blobs, err := newHostBlobs(layers, forms)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { blobs.Close() })
		images, err := blobs.gzipLayers(ctx, oneLayer(desc), lazy)
		if err != nil {
			t.Fatal(err)
		}
		return blobs, images[0].Layers[0].Blob
	}
	files := func(b *hostBlobs) int {
		entries, err := os.ReadDir(b.dir)
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}

	first, gz := gzipped(true)
	if gz.MediaType != ocispecs.MediaTypeImageLayerGzip || files(first) != 1 {
		t.Fatalf("a layer the cache knows no gzip blob of: %+v, %d files written; want it gzipped now", gz, files(first))
	}
	second, known := gzipped(true)
	if known.Digest != gz.Digest || known.Size != gz.Size || files(second) != 0 {
		t.Fatalf("a layer the cache knows the gzip blob of: %+v, %d files written; want %+v and none", known, files(second), gz)
	}
	if info, err := second.Info(ctx, gz.Digest); err != nil || info.Size != gz.Size {
		t.Errorf("Info of the blob not written yet: %+v, %v", info, err)
	}
	ra, err := second.ReaderAt(ctx, gz)
	if err != nil {
		t.Fatal(err)
	}
	ra.Close()
	if files(second) != 1 {
		t.Errorf("the blob read: %d files written, want 1", files(second))
	}
	if _, eager := gzipped(false); eager.Digest != gz.Digest {
		t.Errorf("gzipped for an archive: %s, want %s", eager.Digest, gz.Digest)
	}

	wrong := ocispecs.Descriptor{MediaType: gz.MediaType, Digest: digest.FromString("another blob"), Size: gz.Size}
	forms.remember(diffID, wrong)
	third, said := gzipped(true)
	if said.Digest != wrong.Digest {
		t.Fatalf("the cache's altered blob was not taken (%s): the test proves nothing", said.Digest)
	}
	if _, err := third.ReaderAt(ctx, said); err == nil || !strings.Contains(err.Error(), "build again") {
		t.Errorf("reading a blob the layer does not compress to: %v", err)
	}
	if _, ok := forms.known(diffID); ok {
		t.Error("the wrong blob is still known")
	}
	if e, _ := cache.Get(entry.Key); e.Compressed != (layercache.Blob{}) {
		t.Errorf("the wrong blob is still in the cache: %+v", e.Compressed)
	}
}

// TestLoadLeavesHeldLayers: a load into an engine that holds the bottom
// layers of the image (the classic image store, which looks a layer up by
// the stack below it) gets an archive without them; if the engine then
// lacks them after all, it gets every layer.
func TestLoadLeavesHeldLayers(t *testing.T) {
	ctx := context.Background()
	layers := layerstore.New(ctx)
	defer layers.Close()
	var img hostimage.Platform
	img.Platform = ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	img.Config = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`)
	var diffIDs []digest.Digest
	for _, data := range []string{"bottom layer", "middle layer", "top layer"} {
		desc := layers.AddData([]byte(data))
		img.Layers = append(img.Layers, hostimage.Layer{Blob: desc, DiffID: desc.Digest})
		diffIDs = append(diffIDs, desc.Digest)
	}
	other := digest.FromString("another image's layer")
	for _, tc := range []struct {
		name        string
		claimed     [][]digest.Digest // what EngineLayers says the engine holds
		engineHolds int               // the bottom layers the engine really holds
		sent        int               // layers in the archive the engine takes
		held        int               // the note's count
		loads       int
	}{
		{name: "nothing held", engineHolds: 0, sent: 3, loads: 1},
		{name: "the bottom two held", claimed: [][]digest.Digest{{other}, diffIDs[:2]}, engineHolds: 2, sent: 1, held: 2, loads: 1},
		{name: "another stack below", claimed: [][]digest.Digest{{other, diffIDs[1]}}, engineHolds: 0, sent: 3, loads: 1},
		{name: "held no more", claimed: [][]digest.Digest{diffIDs}, engineHolds: 0, sent: 3, loads: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blobs, err := newHostBlobs(layers, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer blobs.Close()
			var loads, sent int
			e := Export{Type: "moby", Attrs: map[string]string{"name": "example.com/app:1"}, Load: func(_ context.Context, r io.Reader) error {
				loads++
				files := map[string]bool{}
				tr := tar.NewReader(r)
				var manifest []struct{ Layers []string }
				for {
					h, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						return err
					}
					files[h.Name] = true
					if h.Name == "manifest.json" {
						if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
							return err
						}
					}
				}
				if len(manifest) != 1 || len(manifest[0].Layers) != 3 {
					return fmt.Errorf("manifest.json: %+v", manifest)
				}
				sent = 0
				for i, l := range manifest[0].Layers {
					switch {
					case files[l]:
						sent++
					case i >= tc.engineHolds:
						return fmt.Errorf("open %s: no such file or directory", l)
					}
				}
				return nil
			}}
			if tc.claimed != nil {
				e.EngineLayers = func(context.Context) ([][]digest.Digest, error) { return tc.claimed, nil }
			}
			if _, err := blobs.export(ctx, []hostimage.Platform{img}, e); err != nil {
				t.Fatal(err)
			}
			if sent != tc.sent || blobs.held != tc.held {
				t.Errorf("%d layers sent, %d noted as held; want %d and %d", sent, blobs.held, tc.sent, tc.held)
			}
			if loads != tc.loads {
				t.Errorf("%d loads, want %d", loads, tc.loads)
			}
		})
	}
}
