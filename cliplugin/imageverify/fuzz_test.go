//go:build unix

package imageverify

import (
	"bytes"
	"context"
	"maps"
	"testing"

	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
)

// FuzzTrees: an image's layer is untrusted; reading any bytes as one ends
// in trees or an error, the same twice.
func FuzzTrees(f *testing.F) {
	s := storetest.NewHostStore(f)
	var buf bytes.Buffer
	if err := layertar.Write(context.Background(), &buf, layertar.Layer{StoreDir: s.Dir, HostDir: s.Dir, Paths: []store.Path{s.App, s.Data}, Epoch: epoch}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes(), s.Dir)
	f.Add([]byte{}, "/nix/store")
	f.Fuzz(func(t *testing.T, data []byte, storeDir string) {
		a, errA := Trees(bytes.NewReader(data), storeDir)
		b, errB := Trees(bytes.NewReader(data), storeDir)
		if (errA == nil) != (errB == nil) || !maps.Equal(a, b) {
			t.Fatalf("two reads differ: %v %v / %v %v", a, errA, b, errB)
		}
	})
}
