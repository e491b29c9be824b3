package manifest

import (
	"errors"
	"strings"
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

// TestSBOMInstruction: SBOM --metadata names a file of the build context,
// once.
func TestSBOMInstruction(t *testing.T) {
	m := expand(t, "ARG M=meta.json\nCLOSURE ./r\nSBOM --metadata=sbom/${M}\n", Options{})
	if m.SBOM.Metadata != "sbom/meta.json" || m.SBOM.Location[0].Start.Line != 3 {
		t.Errorf("SBOM %+v", m.SBOM)
	}
	if m := expand(t, "CLOSURE ./r\n", Options{}); m.SBOM.Metadata != "" {
		t.Errorf("SBOM %+v without the instruction", m.SBOM)
	}
	for src, want := range map[string]string{
		"CLOSURE ./r\nSBOM meta.json\n":                                 "SBOM takes only flags",
		"CLOSURE ./r\nSBOM\n":                                           "SBOM takes only flags",
		"CLOSURE ./r\nSBOM --metadata=/etc/meta.json\n":                 "want a file in the build context",
		"CLOSURE ./r\nSBOM --metadata=a.json\nSBOM --metadata=b.json\n": "SBOM",
		"CLOSURE ./r\nSBOM --licence=a.json\n":                          "licence",
	} {
		m, err := Parse([]byte(src))
		if err == nil {
			_, err = m.Expand(Options{})
		}
		var le *parser.LocationError
		if err == nil || !errors.As(err, &le) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want a located one that says %q", src, err, want)
		}
	}
}
