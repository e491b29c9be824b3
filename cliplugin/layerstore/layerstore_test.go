package layerstore

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
)

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// readAll reads desc as the session does: a new reader for every chunk,
// chunks of size bytes from offset at.
func readAll(t *testing.T, s *Store, desc ocispecs.Descriptor, at, size int64) ([]byte, error) {
	t.Helper()
	var out []byte
	for off := at; ; {
		ra, err := s.ReaderAt(context.Background(), desc)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := ra.ReadAt(buf, off)
		ra.Close()
		out = append(out, buf[:n]...)
		off += int64(n)
		if errors.Is(err, io.EOF) || off == ra.Size() {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestStore: the image of a layer is a manifest, a config and the layer,
// whose bytes read in chunks, from any offset and again from the start,
// are the layer's tar.
func TestStore(t *testing.T) {
	f := storetest.New(t, "/nix/store")
	l := layertar.Layer{StoreDir: "/nix/store", HostDir: f.StoreDir, Paths: []store.Path{f.Data, f.Lib}, Epoch: time.Unix(1, 0)}
	diffID, size, err := layertar.Digest(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	s := New(context.Background())
	defer s.Close()
	desc, err := s.Add(l, diffID, size, amd64)
	if err != nil {
		t.Fatal(err)
	}
	data, err := readAll(t, s, desc, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispecs.Manifest
	if err := json.Unmarshal(data, &m); err != nil || digest.FromBytes(data) != desc.Digest {
		t.Fatalf("manifest %s: %v", data, err)
	}
	if len(m.Layers) != 1 || m.Layers[0].Digest != diffID || m.Layers[0].Size != size || m.Layers[0].MediaType != ocispecs.MediaTypeImageLayer {
		t.Errorf("manifest layers %+v, want the uncompressed layer %s of %d bytes", m.Layers, diffID, size)
	}
	config, err := readAll(t, s, m.Config, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	var img ocispecs.Image
	if err := json.Unmarshal(config, &img); err != nil || img.Platform.Architecture != "amd64" || len(img.RootFS.DiffIDs) != 1 || img.RootFS.DiffIDs[0] != diffID {
		t.Errorf("config %s: %v", config, err)
	}
	for _, tc := range []struct{ at, chunk int64 }{{0, 512}, {0, 7}, {1536, 4096}, {0, size + 100}} {
		got, err := readAll(t, s, m.Layers[0], tc.at, tc.chunk)
		if err != nil {
			t.Fatalf("from %d in chunks of %d: %v", tc.at, tc.chunk, err)
		}
		full, _ := readAll(t, s, m.Layers[0], 0, size)
		if int64(len(got)) != size-tc.at || string(got) != string(full[tc.at:]) || digest.FromBytes(full) != diffID {
			t.Errorf("from %d in chunks of %d: %d bytes, want %d of the layer %s", tc.at, tc.chunk, len(got), size-tc.at, diffID)
		}
	}
	if info, err := s.Info(context.Background(), diffID); err != nil || info.Size != size {
		t.Errorf("Info: %+v, %v", info, err)
	}
	if _, err := s.Info(context.Background(), digest.FromString("other")); err == nil {
		t.Error("Info of an unknown digest succeeded")
	}
}

// TestStoreChanged: a layer whose store paths changed since it was
// measured fails its read, naming a store path.
func TestStoreChanged(t *testing.T) {
	f := storetest.New(t, "/nix/store")
	l := layertar.Layer{StoreDir: "/nix/store", HostDir: f.StoreDir, Paths: []store.Path{f.Data}, Epoch: time.Unix(1, 0)}
	diffID, size, err := layertar.Digest(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	s := New(context.Background())
	defer s.Close()
	desc, err := s.Add(l, diffID, size, amd64)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.StoreDir, f.Data.Base(), "share", "greeting")); err != nil {
		t.Fatal(err)
	}
	data, _ := readAll(t, s, desc, 0, 4096)
	var m ocispecs.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, s, m.Layers[0], 0, 4096); err == nil || !strings.Contains(err.Error(), f.Data.String()) {
		t.Errorf("reading a changed layer: %v, want an error naming %s", err, f.Data)
	}
}
