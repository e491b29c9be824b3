package hostbuild

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/moby/buildkit/util/compression"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

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
	blobs, err := newHostBlobs(layers)
	if err != nil {
		t.Fatal(err)
	}
	defer blobs.Close()
	desc := layerstore.LayerDescriptor(diffID, int64(tarball.Len()))
	if err := blobs.gzip(ctx, desc); err != nil {
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
