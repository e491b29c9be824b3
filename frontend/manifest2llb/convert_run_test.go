package manifest2llb

import (
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/storepack/storepack/internal/llbtest"
)

// fakeDiffer stands for the frontend binary's diff-tree: a marker exec
// whose mounts say what it compares.
type fakeDiffer struct{}

func (fakeDiffer) Diff(before, after llb.State, step string) (llb.State, error) {
	run := llb.Image("differ").Run(llb.Args([]string{"/differ"}), llb.WithCustomName(step))
	run.AddMount("/before", before, llb.Readonly)
	run.AddMount("/after", after, llb.Readonly)
	return run.AddMount("/out", llb.Scratch()), nil
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
