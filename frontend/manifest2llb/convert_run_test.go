package manifest2llb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/llb/layerllb"
)

// fakeDiffer stands for the frontend binary's diff-tree: a marker exec
// whose mounts say what it compares.
type fakeDiffer struct{}

func (fakeDiffer) Diff(before, after llb.State, step string) (layerllb.Changes, error) {
	run := llb.Image("differ").Run(llb.Args([]string{"/differ"}), llb.WithCustomName(step))
	run.AddMount("/before", before, llb.Readonly)
	run.AddMount("/after", after, llb.Readonly)
	return layerllb.Changes{Entries: run.AddMount("/out", llb.Scratch()), Result: run.AddMount("/result", llb.Scratch())}, nil
}

// diffResult reads result as the differ's, from the differ's state alone,
// as built for the image's platform.
func diffResult(t *testing.T, result layerllb.DiffResult) layerllb.FileReader {
	return func(ctx context.Context, st llb.State, p ocispecs.Platform, name string) ([]byte, error) {
		o := llbtest.Marshal(t, st, llbtest.AllCaps(), llb.Platform(p))
		if name != layerllb.DiffResultFile || len(o.Exec) != 2 || platforms.Format(p) != "linux/amd64" {
			return nil, fmt.Errorf("read %s of %d execs for %s, want the differ's result for linux/amd64", name, len(o.Exec), platforms.Format(p))
		}
		return json.Marshal(result)
	}
}

// removals reads removed as what the differ found removed.
func removals(t *testing.T, removed ...string) layerllb.FileReader {
	return diffResult(t, layerllb.DiffResult{Removed: removed})
}

// TestConvertRun: RUN runs its command as root over the image, with the
// image's environment, named with its manifest line, and the layer is what
// the differ finds; without a differ RUN is an error at its line.
func TestConvertRun(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nGRAPH graph.json\nENV GREETING=hi\nDIR /data\nRUN chown 1000 /data\n"
	img := f.mustConvert(t, src, manifest2llb.ConvertOpt{Differ: fakeDiffer{}, SourceMap: llb.NewSourceMap(nil, "app.storepack", "", []byte(src))}).Images[0]
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
		}
	}
	if runs != 1 || differs != 1 {
		t.Errorf("%d RUN execs and %d differs, want one each", runs, differs)
	}
	if !slices.Contains(o.Names, "[app.storepack:5] RUN /bin/sh -c chown 1000 /data") {
		t.Errorf("steps %q: none is named after the RUN's manifest line", o.Names)
	}

	_, err := f.convert(t, "CLOSURE ./result-amd64\nGRAPH graph.json\nLINK /bin -> bin\n\nRUN true\n", manifest2llb.ConvertOpt{})
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
		img := f.mustConvert(t, src, manifest2llb.ConvertOpt{Differ: fakeDiffer{}, ReadFile: removals(t, removed...)}).Images[0]
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
	_, err := f.convert(t, src, manifest2llb.ConvertOpt{Differ: fakeDiffer{}, ReadFile: removals(t, "/etc/old"), LLBCaps: &caps})
	if err == nil || errorLine(err) != 3 || !strings.Contains(err.Error(), "RUN removed /etc/old") {
		t.Errorf("a removal without MergeOp: line %d, %v; want line 3 naming /etc/old", errorLine(err), err)
	}

	// What the differ finds unfit for a layer is an error at the RUN too.
	_, err = f.convert(t, src, manifest2llb.ConvertOpt{Differ: fakeDiffer{}, ReadFile: diffResult(t, layerllb.DiffResult{Problem: "made /srv/fifo, a fifo"})})
	if err == nil || errorLine(err) != 3 || !strings.Contains(err.Error(), "RUN made /srv/fifo, a fifo") {
		t.Errorf("a fifo: line %d, %v; want line 3 naming it", errorLine(err), err)
	}
}
