//go:build unix

package imageverify

import (
	"bytes"
	"context"
	"maps"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/llb/layerllb"
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

// FuzzLayoutOf: an image's labels and history are untrusted; any of them
// give a layout whose kinds cover the diffIDs, or an error.
func FuzzLayoutOf(f *testing.F) {
	s := storetest.NewHostStore(f)
	plan := `{"strategy":"x","layers":[{"key":"a","paths":["` + s.App.String() + `"]}]}`
	f.Add(plan, "storepack: store layer 1/1 (a)", layerllb.CustomisationCreatedBy, 2)
	f.Add(`{"layers":[{"paths":[]}]}`, "", "", 1)
	f.Fuzz(func(t *testing.T, planLabel, first, second string, diffIDs int) {
		img := Image{Labels: map[string]string{layerllb.PlanLabel: planLabel}, History: []ocispecs.History{{CreatedBy: first}, {CreatedBy: second}}}
		for range diffIDs % 8 {
			img.DiffIDs = append(img.DiffIDs, digest.FromString(first))
		}
		l, err := LayoutOf(img)
		if err != nil {
			return
		}
		if len(l.Kinds) != len(img.DiffIDs) || l.FirstStore < 0 || l.FirstStore+len(l.Plan.Layers) > len(img.DiffIDs) {
			t.Fatalf("layout %+v of %d diffIDs", l, len(img.DiffIDs))
		}
		for _, layer := range l.Plan.Layers {
			if len(layer.Paths) == 0 {
				t.Fatalf("a layer of no path in %+v", l.Plan)
			}
		}
	})
}
