package manifest2llb_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/llbtest"
)

// TestConvertCopy: COPY takes a transfer of just its sources from the
// build context, copies a file into a directory destination and a
// directory's contents, with the given mode and owner (0:0 else); a missing
// source is an error at its line.
func TestConvertCopy(t *testing.T) {
	f := newFixture(t, "/nix/store")
	for name, content := range map[string]string{"conf/app.conf": "x=1\n", "data/a": "a", "data/sub/b": "b"} {
		p := filepath.Join(f.CtxDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := "CLOSURE ./result-amd64\nGRAPH graph.json\nCOPY --chmod=0640 --chown=1000:100 conf/app.conf /etc/app/\nCOPY data /srv/data\n"
	for _, method := range []string{"merge", "chain"} {
		t.Run(method, func(t *testing.T) {
			caps := llbtest.AllCaps()
			if method == "chain" {
				caps = llbtest.CapsWithout(pb.CapMergeOp)
			}
			img := f.mustConvert(t, src, manifest2llb.ConvertOpt{LLBCaps: &caps}).Images[0]
			o := llbtest.Marshal(t, img.State, caps)
			var got []string
			for _, c := range o.Copies() {
				if strings.HasPrefix(c.Src, "/conf") || strings.HasPrefix(c.Src, "/data") {
					got = append(got, fmt.Sprintf("%s → %s mode %o owner %d:%d contents %v", c.Src, c.Dest, c.Mode, c.Owner.User.GetByID(), c.Owner.Group.GetByID(), c.DirCopyContents))
				}
			}
			want := []string{
				"/conf/app.conf → /etc/app/app.conf mode 640 owner 1000:100 contents false",
				"/data → /srv/data mode -1 owner 0:0 contents true",
			}
			if !slices.Equal(got, want) {
				t.Errorf("COPY actions %q, want %q", got, want)
			}
			if got := transfers(t, o, hostbuild.ContextLocalName)[manifest2llb.CopySources]; !slices.Equal(got, []string{"conf/app.conf", "data"}) {
				t.Errorf("the COPY transfer includes %v, want just the sources", got)
			}
			if h := img.Config.History; !strings.Contains(h[len(h)-1].CreatedBy, "customisation") {
				t.Errorf("history %+v does not end with the customisation layer", h)
			}
		})
	}
	_, err := f.convert(t, "CLOSURE ./result-amd64\nGRAPH graph.json\n\nCOPY conf/nope /etc/\n", manifest2llb.ConvertOpt{})
	if err == nil || errorLine(err) != 4 || !strings.Contains(err.Error(), "COPY conf/nope: not in the build context") {
		t.Errorf("a missing source: line %d, %v; want line 4", errorLine(err), err)
	}
}

// TestConvertCopyOwnerNames: --chown takes names, looked up in ACCOUNT's
// files, or the base image's, or root's and nobody's; a user alone gives
// its own group, a number alone itself; an unknown name is an error at the
// line.
func TestConvertCopyOwnerNames(t *testing.T) {
	f := newFixture(t, "/nix/store")
	if err := os.WriteFile(filepath.Join(f.CtxDir, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	var asked []string
	onBase := manifest2llb.ConvertOpt{ResolveImage: fakeBase(t, 1, &asked), ReadFile: baseFiles(t, map[string]string{
		"/etc/passwd": "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n",
		"/etc/group":  "root:x:0:\nwww-data:x:34:\nstaff:x:50:\n",
	})}
	for _, tc := range []struct {
		head, chown string
		opt         manifest2llb.ConvertOpt
		want        string
	}{
		{"ACCOUNT --uid=1001 --gid=100 app\n", "app", manifest2llb.ConvertOpt{}, "1001:100"},
		{"ACCOUNT app\n", "app:root", manifest2llb.ConvertOpt{}, "1000:0"},
		{"", "nobody", manifest2llb.ConvertOpt{}, "65534:65534"},
		{"", "5", manifest2llb.ConvertOpt{}, "5:5"},
		{"", "5:nogroup", manifest2llb.ConvertOpt{}, "5:65534"},
		{"FROM alpine\n", "www", onBase, "33:34"},
		{"FROM alpine\n", "www:staff", onBase, "33:50"},
		{"FROM alpine\nACCOUNT app\n", "app:www-data", onBase, "1000:34"},
		{"", "ghost", manifest2llb.ConvertOpt{}, "no user ghost in the image's /etc/passwd"},
		{"", "root:ghost", manifest2llb.ConvertOpt{}, "no group ghost in the image's /etc/group"},
		{"FROM alpine\n", "nobody", onBase, "no user nobody"},
		// Without a way to read the base (plan), its names stay unresolved.
		{"FROM alpine\n", "www", manifest2llb.ConvertOpt{ResolveImage: fakeBase(t, 1, &asked)}, "0:0"},
	} {
		src := tc.head + "CLOSURE ./result-amd64\nGRAPH graph.json\nCOPY --chown=" + tc.chown + " a /srv/\n"
		res, err := f.convert(t, src, tc.opt)
		if strings.Contains(tc.want, " ") { // an error
			line := strings.Count(tc.head, "\n") + 3
			if err == nil || errorLine(err) != line || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("--chown=%s: line %d, %v; want line %d: %s", tc.chown, errorLine(err), err, line, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("--chown=%s: %v", tc.chown, err)
			continue
		}
		var got []string
		for _, c := range llbtest.Marshal(t, res.Images[0].State, llbtest.AllCaps()).Copies() {
			if c.Src == "/a" {
				got = append(got, fmt.Sprintf("%d:%d", c.Owner.User.GetByID(), c.Owner.Group.GetByID()))
			}
		}
		if !slices.Equal(got, []string{tc.want}) {
			t.Errorf("--chown=%s after %q: owners %q, want %s", tc.chown, tc.head, got, tc.want)
		}
	}
}
