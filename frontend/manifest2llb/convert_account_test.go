package manifest2llb

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
	"github.com/storepack/storepack/internal/llbtest"
)

// TestConvertAccount: ACCOUNT writes /etc/passwd, /etc/group and
// /etc/shadow into the customisation stage, with FileOps or staged on the
// host alike, and makes its home owned by it in the layer itself, before
// the stage's copy fixes the parents' times; the config runs as it.
func TestConvertAccount(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nGRAPH graph.json\nACCOUNT --uid=1001 --gid=100 app\nDIR --owner=1001:100 --mode=0700 /srv/data\n"
	want := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1001:100::/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/var/empty:/bin/false\n",
		"etc/group":  "root:x:0:\napp:x:100:\nnogroup:x:65534:\n",
		"etc/shadow": "root:!:1::::::\napp:!:1::::::\nnobody:!:1::::::\n",
	}
	wantMkdirs := []string{"/srv/data 700 1001:100", "/home/app 755 1001:100"}
	checkLayer := func(t *testing.T, o llbtest.Ops) {
		t.Helper()
		// The layer's FileOp: the owned directories, then the stage's copy.
		var layer []string
		for _, fo := range o.File {
			for _, a := range fo.Actions {
				if m := a.GetMkdir(); m != nil && m.Owner != nil {
					layer = append(layer, fmt.Sprintf("%s %o %d:%d", m.Path, m.Mode, m.Owner.User.GetByID(), m.Owner.Group.GetByID()))
				}
				if c := a.GetCopy(); c != nil && len(layer) > 0 && c.Src == "/" && c.Dest == "/" {
					layer = append(layer, "copy")
				}
			}
		}
		if !slices.Equal(layer, append(wantMkdirs, "copy")) {
			t.Errorf("customisation layer actions %q, want %q then the stage's copy", layer, wantMkdirs)
		}
	}

	t.Run("file ops", func(t *testing.T) {
		img := f.mustConvert(t, src, ConvertOpt{}).Images[0]
		if img.Config.Config.User != "app" {
			t.Errorf("user %q, want app", img.Config.Config.User)
		}
		o := llbtest.Marshal(t, img.State, llbtest.AllCaps())
		files := map[string]string{}
		for _, fo := range o.File {
			for _, a := range fo.Actions {
				if m := a.GetMkfile(); m != nil {
					files[strings.TrimPrefix(m.Path, "/")] = string(m.Data)
					if m.Path == "/etc/shadow" && m.Mode != 0o600 {
						t.Errorf("/etc/shadow mode %o", m.Mode)
					}
				}
			}
		}
		if !maps.Equal(files, want) {
			t.Errorf("files %q, want %q", files, want)
		}
		checkLayer(t, o)
	})

	t.Run("staged", func(t *testing.T) {
		noSymlink := llbtest.CapsWithout(pb.CapFileSymlinkCreate, pb.CapMergeOp)
		locals := &Locals{}
		img := f.mustConvert(t, src, ConvertOpt{LLBCaps: &noSymlink, Stager: HostStager{Dir: t.TempDir(), Locals: locals}}).Images[0]
		o := llbtest.Marshal(t, img.State, noSymlink)
		var dir string
		for _, s := range o.Source {
			if name, ok := strings.CutPrefix(s.Identifier, "local://"+StageLocalPrefix); ok {
				dir, _ = locals.Dir(StageLocalPrefix + name)
			}
		}
		for name, content := range want {
			if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != content {
				t.Errorf("staged %s: %q (%v), want %q", name, got, err, content)
			}
		}
		for _, d := range []string{"home", "srv"} {
			if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
				t.Errorf("staged /%s, the parent of an owned directory: %v", d, err)
			}
		}
		for _, d := range []string{"home/app", "srv/data"} {
			if _, err := os.Stat(filepath.Join(dir, d)); err == nil {
				t.Errorf("staged /%s: an owned directory is made in the layer, not staged as root's", d)
			}
		}
		checkLayer(t, o)
	})
}
