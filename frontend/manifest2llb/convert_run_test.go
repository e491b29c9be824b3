package manifest2llb

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/layerllb"
)

// fakeDiffer stands for the frontend binary's diff-tree: a marker exec
// whose mounts say what it compares, which finds removed removed.
type fakeDiffer struct{ removed []string }

func (d fakeDiffer) Diff(_ context.Context, before, after llb.State, p ocispecs.Platform, step string) (layerllb.Changes, error) {
	run := llb.Image("differ").Run(llb.Args([]string{"/differ", platforms.Format(p)}), llb.WithCustomName(step))
	run.AddMount("/before", before, llb.Readonly)
	run.AddMount("/after", after, llb.Readonly)
	return layerllb.Changes{Entries: run.AddMount("/out", llb.Scratch()), Removed: d.removed}, nil
}

// TestConvertRun: RUN runs its command as root over the image, with the
// image's environment, named with its manifest line, and the layer is what
// the differ finds; without a differ RUN is an error at its line.
func TestConvertRun(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nGRAPH graph.json\nENV GREETING=hi\nDIR /data\nRUN chown 1000 /data\n"
	img := f.mustConvert(t, src, ConvertOpt{Differ: fakeDiffer{}, SourceMap: llb.NewSourceMap(nil, "app.storepack", "", []byte(src))}).Images[0]
	o := llbtest.Marshal(t, img.State, llbtest.AllCaps())
	var runs, differs int
	for _, e := range o.Exec {
		switch e.Meta.Args[0] {
		case "/bin/sh":
			runs++
			if !slices.Equal(e.Meta.Args, []string{"/bin/sh", "-c", "chown 1000 /data"}) || !slices.Contains(e.Meta.Env, "GREETING=hi") || e.Meta.User != "" && e.Meta.User != "0" {
				t.Errorf("RUN exec %+v", e.Meta)
			}
		case "/differ":
			differs++
			if e.Meta.Args[1] != "linux/amd64" {
				t.Errorf("the differ was given platform %s, want the image's", e.Meta.Args[1])
			}
		}
	}
	if runs != 1 || differs != 1 {
		t.Errorf("%d RUN execs and %d differs, want one each", runs, differs)
	}
	if !slices.Contains(o.Names, "[app.storepack:5] RUN /bin/sh -c chown 1000 /data") {
		t.Errorf("steps %q: none is named after the RUN's manifest line", o.Names)
	}

	_, err := f.convert(t, "CLOSURE ./result-amd64\nGRAPH graph.json\nLINK /bin -> bin\n\nRUN true\n", ConvertOpt{})
	if err == nil || errorLine(err) != 5 || !strings.Contains(err.Error(), "RUN needs the frontend binary") {
		t.Errorf("RUN without a differ: line %d, %v; want line 5", errorLine(err), err)
	}
}

// TestConvertRunRemovals: what RUN removed is removed in the layer, before
// the changes are copied, and on Merge the layer is then made on the
// layers below rather than on scratch, since only that way it holds
// whiteouts.
func TestConvertRunRemovals(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nGRAPH graph.json\nRUN rm -r /etc/old /var/cache\n"
	merges := map[bool]int{}
	for _, removed := range [][]string{nil, {"/etc/old", "/var/cache"}} {
		img := f.mustConvert(t, src, ConvertOpt{Differ: fakeDiffer{removed: removed}}).Images[0]
		o := llbtest.Marshal(t, img.State, llbtest.AllCaps())
		var rms []string
		for _, fo := range o.File {
			for i, a := range fo.Actions {
				if rm := a.GetRm(); rm != nil {
					rms = append(rms, rm.Path)
					if i != len(rms)-1 {
						t.Errorf("rm %s is action %d, after others", rm.Path, i)
					}
				}
			}
		}
		if !slices.Equal(rms, removed) {
			t.Errorf("removed %q, want %q", rms, removed)
		}
		merges[len(removed) > 0] = len(o.Merge)
	}
	if merges[true] != merges[false]-1 {
		t.Errorf("merges: %d with removals, %d without; want the layer merged only without", merges[true], merges[false])
	}

	// Docker Engine's own builder (no MergeOp) stamps whiteouts with the
	// time of the build: a removal there is an error at the RUN.
	caps := llbtest.CapsWithout(pb.CapMergeOp)
	_, err := f.convert(t, src, ConvertOpt{Differ: fakeDiffer{removed: []string{"/etc/old"}}, LLBCaps: &caps})
	if err == nil || errorLine(err) != 3 || !strings.Contains(err.Error(), "RUN removed /etc/old") {
		t.Errorf("a removal without MergeOp: line %d, %v; want line 3 naming /etc/old", errorLine(err), err)
	}
}
