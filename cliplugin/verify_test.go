package cliplugin

import (
	"strings"
	"testing"

	"github.com/storepack/storepack/cliplugin/imageverify"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
)

// TestVerifyInputFlagsNeedAgainst: an option of the inputs, without the
// inputs --against names, is refused before any image is read.
func TestVerifyInputFlagsNeedAgainst(t *testing.T) {
	for _, args := range [][]string{
		{"--build-arg", "A=1"},
		{"--strategy", "single"},
		{"--previous", "app:1"},
	} {
		_, _, err := runCommand(t, append(append([]string{"verify"}, args...), "app:2")...)
		if err == nil || !strings.Contains(err.Error(), args[0]+" applies to the inputs --against names") {
			t.Errorf("verify %v: %v", args, err)
		}
	}
}

// TestVerifyError: a report with a failing store layer is one line naming
// each failing layer and its store paths; a report whose store layers pass
// is no error.
func TestVerifyError(t *testing.T) {
	a := storetest.FakePath(t, "/nix/store", "a")
	b := storetest.FakePath(t, "/nix/store", "b")
	passing := imageverify.Report{Layers: []imageverify.LayerResult{
		{Index: 0, Kind: imageverify.Store, Status: imageverify.Match, Paths: []store.Path{a}},
		{Index: 1, Kind: imageverify.Store, Status: imageverify.SameFiles, Paths: []store.Path{b}},
		{Index: 2, Kind: imageverify.Customisation, Status: imageverify.NotChecked},
	}}
	if err := verifyError("app:2", passing); err != nil {
		t.Errorf("a passing report: %v", err)
	}
	failing := passing
	failing.Layers = append(failing.Layers[:0:0], passing.Layers...)
	failing.Layers[0] = imageverify.LayerResult{Index: 0, Kind: imageverify.Store, Status: imageverify.Differs, Paths: []store.Path{a}, Culprits: []store.Path{a}, Note: "other files than the store's"}
	failing.Layers[1] = imageverify.LayerResult{Index: 1, Kind: imageverify.Store, Status: imageverify.Missing, Paths: []store.Path{b}, Culprits: []store.Path{b}, Note: "not in the store at /nix/store"}
	failing.Layers[2] = imageverify.LayerResult{Index: 2, Kind: imageverify.Customisation, Status: imageverify.Differs, Note: "other files than the inputs' LINK, DIR and COPY"}
	err := verifyError("app:2", failing)
	want := "app:2 does not match the store: layer 1 differs: " + a.String() + " (other files than the store's); layer 2 missing: " + b.String() + " (not in the store at /nix/store); layer 3 differs, the customisation layer (other files than the inputs' LINK, DIR and COPY)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
