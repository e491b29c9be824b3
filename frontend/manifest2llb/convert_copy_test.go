package manifest2llb

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
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
			img := f.mustConvert(t, src, ConvertOpt{LLBCaps: &caps}).Images[0]
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
			if got := transfers(t, o, ContextLocalName)[CopySources]; !slices.Equal(got, []string{"conf/app.conf", "data"}) {
				t.Errorf("the COPY transfer includes %v, want just the sources", got)
			}
			if h := img.Config.History; !strings.Contains(h[len(h)-1].CreatedBy, "customisation") {
				t.Errorf("history %+v does not end with the customisation layer", h)
			}
		})
	}
	_, err := f.convert(t, "CLOSURE ./result-amd64\nGRAPH graph.json\n\nCOPY conf/nope /etc/\n", ConvertOpt{})
	if err == nil || errorLine(err) != 4 || !strings.Contains(err.Error(), "COPY conf/nope: not in the build context") {
		t.Errorf("a missing source: line %d, %v; want line 4", errorLine(err), err)
	}
}
