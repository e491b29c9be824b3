package manifest2llb_test

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/llb/layerllb"
)

// TestConvertAccount: ACCOUNT writes /etc/passwd, /etc/group and
// /etc/shadow into the customisation stage, with FileOps or staged on the
// host alike, and makes its home owned by it in the layer itself, before
// the stage's copy fixes the parents' times; the config runs as it.
func TestConvertAccount(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nGRAPH graph.json\nACCOUNT --uid=1001 --gid=100 app\nDIR --owner=1001:100 --mode=0700 /srv/data\n"
	want := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/var/empty:/bin/false\napp:x:1001:100::/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\napp:x:100:\n",
		"etc/shadow": "root:!:1::::::\nnobody:!:1::::::\napp:!:1::::::\n",
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
		img := f.mustConvert(t, src, manifest2llb.ConvertOpt{}).Images[0]
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
		locals := &hostbuild.Locals{}
		img := f.mustConvert(t, src, manifest2llb.ConvertOpt{LLBCaps: &noSymlink, Stager: hostbuild.HostStager{Dir: t.TempDir(), Locals: locals}}).Images[0]
		o := llbtest.Marshal(t, img.State, noSymlink)
		var dir string
		for _, s := range o.Source {
			if name, ok := strings.CutPrefix(s.Identifier, "local://"+hostbuild.StageLocalPrefix); ok {
				local, _ := locals.Lookup(hostbuild.StageLocalPrefix + name)
				dir = local.Dir
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

// baseFiles reads files of a FROM image from a map; any other state is
// an error.
func baseFiles(t *testing.T, files map[string]string) layerllb.FileReader {
	return func(ctx context.Context, st llb.State, p ocispecs.Platform, name string) ([]byte, error) {
		o := llbtest.Marshal(t, st, llbtest.AllCaps())
		if len(o.Source) != 1 || !strings.HasPrefix(o.Source[0].Identifier, "docker-image://") {
			return nil, fmt.Errorf("read %s of a state other than the base image", name)
		}
		data, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
		}
		return []byte(data), nil
	}
}

// TestConvertAccountOnBase: on a FROM image, ACCOUNT adds the account to
// the base's own files, kept whole (a file the base lacks starts from root
// and nobody); a name or id the base has is an error at the ACCOUNT line.
func TestConvertAccountOnBase(t *testing.T) {
	f := newFixture(t, "/nix/store")
	base := map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/ash\ndaemon:x:2:2:daemon:/sbin:/sbin/nologin\nguest:x:405:100:guest:/dev/null:/sbin/nologin",
		"/etc/group":  "root:x:0:root\nusers:x:100:games\n",
	}
	var asked []string
	src := "FROM alpine\nCLOSURE ./result-amd64\nGRAPH graph.json\nACCOUNT app\n"
	img := f.mustConvert(t, src, manifest2llb.ConvertOpt{ResolveImage: fakeBase(t, 1, &asked), ReadFile: baseFiles(t, base)}).Images[0]
	files := map[string]string{}
	for _, fo := range llbtest.Marshal(t, img.State, llbtest.AllCaps()).File {
		for _, a := range fo.Actions {
			if m := a.GetMkfile(); m != nil {
				files[m.Path] = string(m.Data)
			}
		}
	}
	want := map[string]string{
		"/etc/passwd": base["/etc/passwd"] + "\napp:x:1000:1000::/home/app:/bin/sh\n",
		"/etc/group":  base["/etc/group"] + "app:x:1000:\n",
		"/etc/shadow": "root:!:1::::::\nnobody:!:1::::::\napp:!:1::::::\n",
	}
	if !maps.Equal(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}

	for _, tc := range []struct{ account, want string }{
		{"ACCOUNT daemon", "the base image's /etc/passwd has daemon already"},
		{"ACCOUNT --uid=405 app", "id 405 is guest's in the base image's /etc/passwd"},
		{"ACCOUNT --gid=100 app", "id 100 is users's in the base image's /etc/group"},
	} {
		src := "FROM alpine\nCLOSURE ./result-amd64\nGRAPH graph.json\n" + tc.account + "\n"
		_, err := f.convert(t, src, manifest2llb.ConvertOpt{ResolveImage: fakeBase(t, 1, &asked), ReadFile: baseFiles(t, base)})
		if err == nil || errorLine(err) != 4 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: line %d, %v; want line 4: %s", tc.account, errorLine(err), err, tc.want)
		}
	}
}
