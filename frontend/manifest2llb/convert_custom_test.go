package manifest2llb_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/llb/layerllb"
)

// TestConvertCustomisation: LINK and DIR make the last layer with FileOps
// where the builder has them, else with the Stager; a relative LINK target
// resolves inside the first root.
func TestConvertCustomisation(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nGRAPH graph.json\nLINK /bin -> bin\nLINK /etc/ssl -> /etc/other\nDIR --mode=1777 /tmp\n"
	want := layerllb.Customisation{
		Dirs: []layerllb.Dir{{Path: "/tmp", Mode: 0o1777}},
		Links: []layerllb.Link{
			{Path: "/bin", Target: f.Apps["amd64"].String() + "/bin"},
			{Path: "/etc/ssl", Target: "/etc/other"},
		},
	}
	noSymlink := llbtest.CapsWithout(pb.CapFileSymlinkCreate, pb.CapMergeOp)
	locals := &hostbuild.Locals{}
	stager := hostbuild.HostStager{Dir: t.TempDir(), Locals: locals}
	img := f.mustConvert(t, src, manifest2llb.ConvertOpt{LLBCaps: &noSymlink, Stager: stager}).Images[0]
	o := llbtest.Marshal(t, img.State, noSymlink)
	var stage string
	for _, s := range o.Source {
		if name, ok := strings.CutPrefix(s.Identifier, "local://"+hostbuild.StageLocalPrefix); ok {
			stage = hostbuild.StageLocalPrefix + name
		}
	}
	local, ok := locals.Lookup(stage)
	dir := local.Dir
	if !ok {
		t.Fatalf("local source %q has no directory", stage)
	}
	if got, err := os.Readlink(filepath.Join(dir, "bin")); err != nil || got != want.Links[0].Target {
		t.Errorf("staged /bin -> %q (%v), want %q", got, err, want.Links[0].Target)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("staged /tmp: %v %v", fi, err)
	}
	if h := img.Config.History; len(h) != len(img.Plan.Layers)+1 || !strings.Contains(h[len(h)-1].CreatedBy, "customisation") {
		t.Errorf("history %+v does not end with the customisation layer", h)
	}

	// The same without special modes on a builder with the symlink FileOp.
	img = f.mustConvert(t, "CLOSURE ./result-amd64\nGRAPH graph.json\nLINK /bin -> bin\n", manifest2llb.ConvertOpt{Stager: stager}).Images[0]
	var symlinks []string
	for _, fo := range llbtest.Marshal(t, img.State, llbtest.AllCaps()).File {
		for _, a := range fo.Actions {
			if s := a.GetSymlink(); s != nil {
				symlinks = append(symlinks, s.Newpath+" -> "+s.Oldpath)
			}
		}
	}
	if want := []string{"/bin -> " + f.Apps["amd64"].String() + "/bin"}; !reflect.DeepEqual(symlinks, want) {
		t.Errorf("symlink FileOps %v, want %v", symlinks, want)
	}

	_, err := f.convert(t, "CLOSURE ./result-amd64\nGRAPH graph.json\n\nDIR /srv\nLINK /bin -> bin\n", manifest2llb.ConvertOpt{LLBCaps: &noSymlink})
	if err == nil || errorLine(err) != 4 || !strings.Contains(err.Error(), "no symlink FileOp") {
		t.Errorf("LINK without symlink FileOp nor stager: line %d, %v; want line 4", errorLine(err), err)
	}
}
