package manifest

import (
	"errors"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestStoreDB: STORE --with-db, bare or with a value, asks for the store
// database, which takes the customisation layer.
func TestStoreDB(t *testing.T) {
	for src, want := range map[string]bool{
		"STORE --with-db /gnu/store\nCLOSURE ./r\n":       true,
		"STORE --with-db=true /nix/store\nCLOSURE ./r\n":  true,
		"STORE --with-db=false /nix/store\nCLOSURE ./r\n": false,
		"CLOSURE ./r\n": false,
	} {
		m := expand(t, src, Options{})
		if m.StoreDB != want || m.HasCustomisation() != want {
			t.Errorf("%q: StoreDB %v, customisation %v; want %v", src, m.StoreDB, m.HasCustomisation(), want)
		}
	}
}

func TestStoreLayerBudget(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int // 0: an error
	}{
		{"CLOSURE ./r\n", DefaultMaxLayers},
		{"CLOSURE ./r\nLAYERS --max=2\nLINK /bin -> bin\n", 1},
		{"CLOSURE ./r\nLAYERS --max=2\n", 2},
		{"CLOSURE ./r\nLAYERS --max=1\nDIR /tmp\n", 0},
	} {
		got, err := expand(t, tc.src, Options{}).StoreLayerBudget()
		if tc.want == 0 {
			var le *parser.LocationError
			if err == nil || !errors.As(err, &le) || le.Locations[0][0].Start.Line != 2 {
				t.Errorf("%q: want an error at LAYERS, have %v", tc.src, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %d, %v; want %d", tc.src, got, err, tc.want)
		}
	}
}
