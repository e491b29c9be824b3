package hostbuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layercache"
	"github.com/storepack/storepack/cliplugin/layerstore"
	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

// TestDigestCache: a layer whose paths' NAR hashes are known is written
// once for its digest; then its digest comes from the cache, without the
// store's files; a damaged entry is not used; a layer of unknown content
// is always written.
func TestDigestCache(t *testing.T) {
	f := storetest.New(t, "/nix/store")
	g, err := store.NewGraph([]store.Info{
		{Path: f.Data, NarHash: digest.FromString("data"), NarSize: 100},
		{Path: f.Lib, NarSize: 200},
	})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	cache, err := layercache.Open(cacheDir, layercache.DefaultMaxEntries)
	if err != nil {
		t.Fatal(err)
	}
	h := HostSource{Cache: cache}
	known := layertar.Layer{StoreDir: "/nix/store", HostDir: f.StoreDir, Paths: []store.Path{f.Data}, Epoch: time.Unix(1, 0)}
	knownKey, knownOK := layerKey(g, known)
	want, wantSize, err := layertar.Digest(context.Background(), known)
	if err != nil {
		t.Fatal(err)
	}
	for i, wantWrote := range []bool{true, false} {
		d, size, wrote, err := h.digest(context.Background(), knownKey, knownOK, known)
		if err != nil || d != want || size != wantSize || wrote != wantWrote {
			t.Errorf("build %d: %s, %d bytes, written %v, %v; want %s, %d bytes, written %v", i+1, d, size, wrote, err, want, wantSize, wantWrote)
		}
		if i == 0 {
			// The store's files are no longer needed for this layer.
			if err := os.Rename(filepath.Join(f.StoreDir, f.Data.Base()), filepath.Join(t.TempDir(), "moved")); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, _ := filepath.Glob(filepath.Join(cacheDir, "*.json"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v, want one", entries)
	}
	if err := os.WriteFile(entries[0], []byte(`{"key":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, wrote, err := h.digest(context.Background(), knownKey, knownOK, known); err == nil || !wrote {
		t.Errorf("a damaged entry was used: written %v, %v", wrote, err)
	}

	unknown := layertar.Layer{StoreDir: "/nix/store", HostDir: f.StoreDir, Paths: []store.Path{f.Lib}, Epoch: time.Unix(1, 0)}
	unknownKey, unknownOK := layerKey(g, unknown)
	for range 2 {
		if _, _, wrote, err := h.digest(context.Background(), unknownKey, unknownOK, unknown); err != nil || !wrote {
			t.Errorf("a layer without NAR hashes: written %v, %v; want written", wrote, err)
		}
	}
}

// TestStoreStateChecksOnce: a store path whose NAR is not the one the
// graph gives is refused on both paths of StoreState: where the builder
// copies the files, by the walk before (measure), and where the layers are
// written on the host, by the layers' writer as it writes them, with no
// walk before.
func TestStoreStateChecksOnce(t *testing.T) {
	f := storetest.New(t, "/nix/store")
	g, err := store.NewGraph([]store.Info{{Path: f.Data, NarSize: 1}}) // the NAR is larger
	if err != nil {
		t.Fatal(err)
	}
	c := &inputs.PlatformClosure{Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"}, Roots: []store.Path{f.Data}, Graph: g}
	plan := layering.Plan{Strategy: "test", Layers: []layering.Layer{{Key: "data", Paths: []store.Path{f.Data}}}}
	opt := manifest2llb.StoreOptions{Check: true, WholeLayers: true, Epoch: time.Unix(1, 0)}
	ctx := context.Background()
	for name, tc := range map[string]struct {
		h    HostSource
		want string
	}{
		"builder copies": {HostSource{StoreDir: f.StoreDir}, "store path " + f.Data.String() + " in " + f.StoreDir + " is not the one the GRAPH describes"},
		"host writes":    {HostSource{StoreDir: f.StoreDir, Layers: layerstore.New(ctx), Progress: &progress{}}, "store path " + f.Data.String() + " changed since its graph was recorded"},
	} {
		if _, err := tc.h.StoreState(ctx, c, plan, opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
