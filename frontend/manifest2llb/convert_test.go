package manifest2llb_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
)

// TestConvertClosure: CLOSURE, GRAPH and STORE give layers that each copy
// a transfer of exactly the layer's store paths, in one copy, at the fixed
// time, owned by 0:0; Nix and Guix stores alike.
func TestConvertClosure(t *testing.T) {
	for _, storeName := range []string{"/nix/store", "/gnu/store"} {
		t.Run(storeName, func(t *testing.T) {
			f := newFixture(t, storeName)
			src := "# syntax=storepack\nSTORE " + storeName + "\nCLOSURE ./result-amd64\nGRAPH graph.json\nLAYERS --strategy=per-path\n"
			res := f.mustConvert(t, src, manifest2llb.ConvertOpt{})
			if len(res.Images) != 1 {
				t.Fatalf("%d images, want 1", len(res.Images))
			}
			img := res.Images[0]
			want := []string{f.Data.String(), f.Lib.String(), f.Apps["amd64"].String()}
			if got := slices.Sorted(slices.Values(planPaths(img.Plan))); !reflect.DeepEqual(got, want) {
				t.Fatalf("plan paths %v, want %v", got, want)
			}
			o := llbtest.Marshal(t, img.State, llbtest.AllCaps())
			// The transfers hold the store directory and its parents.
			if got, want := copies(t, o, img.Epoch), slices.Repeat([]string{"/ → /"}, len(img.Plan.Layers)); !reflect.DeepEqual(got, want) {
				t.Errorf("copies %v, want one of a transfer's root per layer %v", got, want)
			}
			if len(o.Merge) != 1 || len(o.Merge[0].Inputs) != len(img.Plan.Layers) {
				t.Errorf("merges %v, want one of %d layers", o.Merge, len(img.Plan.Layers))
			}
			wantTransfers := map[string][]string{}
			for _, l := range img.Plan.Layers {
				for _, p := range l.Paths {
					key := hostbuild.TransferKey(amd64, storeName, l)
					wantTransfers[key] = append(wantTransfers[key], storeName[1:]+"/"+p.Base())
				}
			}
			if got := transfers(t, o, hostbuild.StoreLocalName); !reflect.DeepEqual(got, wantTransfers) {
				t.Errorf("the store transfers include %v, want exactly each layer's paths %v", got, wantTransfers)
			}
			if !img.Epoch.Equal(time.Unix(1, 0)) || !img.Config.Created.Equal(img.Epoch) {
				t.Errorf("epoch %v, created %v; want 1970-01-01T00:00:01Z", img.Epoch, img.Config.Created)
			}
			if got := recordedPlan(t, img); !reflect.DeepEqual(got, img.Plan) {
				t.Errorf("recorded plan %+v, want %+v", got, img.Plan)
			}
			if len(img.Config.History) != len(img.Plan.Layers) {
				t.Errorf("%d history entries for %d layers", len(img.Config.History), len(img.Plan.Layers))
			}
		})
	}
}

// TestConvertDiscover: without a GRAPH, the Source discovers the closure,
// and what it found is not walked again.
func TestConvertDiscover(t *testing.T) {
	f := newFixture(t, "/nix/store")
	res := f.mustConvert(t, "CLOSURE ./result-arm\n", manifest2llb.ConvertOpt{BuildPlatform: armV7})
	want := []string{f.Data.String(), f.Lib.String(), f.Apps["arm"].String()}
	if got := slices.Sorted(slices.Values(planPaths(res.Images[0].Plan))); !reflect.DeepEqual(got, want) {
		t.Errorf("discovered %v, want %v", got, want)
	}
}

// TestConvertLayerMethod: Merge where the builder has MergeOp, Chain where
// it has not or where STOREPACK_LAYER_METHOD=chain asks; both copy the
// same paths.
func TestConvertLayerMethod(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nGRAPH graph.json\nLAYERS --strategy=per-path\n"
	noMerge := llbtest.CapsWithout(pb.CapMergeOp)
	var merged []string
	for _, tc := range []struct {
		name      string
		args      map[string]string
		opt       manifest2llb.ConvertOpt
		wantMerge bool
	}{
		{"merge", nil, manifest2llb.ConvertOpt{}, true},
		{"chain by caps", nil, manifest2llb.ConvertOpt{LLBCaps: &noMerge}, false},
		{"chain by build arg", map[string]string{manifest2llb.BuildArgMethod: "chain"}, manifest2llb.ConvertOpt{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := f.mustConvertWith(t, src, tc.args, f.source(), tc.opt).Images[0]
			caps := llbtest.AllCaps()
			if tc.opt.LLBCaps != nil {
				caps = *tc.opt.LLBCaps
			}
			o := llbtest.Marshal(t, img.State, caps)
			if got := len(o.Merge) == 1; got != tc.wantMerge {
				t.Errorf("MergeOp: %v, want %v", got, tc.wantMerge)
			}
			// Chain: one FileOp per layer on the one before.
			if got := len(o.File); got != len(img.Plan.Layers) {
				t.Errorf("%d FileOps for %d layers", got, len(img.Plan.Layers))
			}
			copies := copies(t, o, img.Epoch)
			if merged == nil {
				merged = copies
			} else if !reflect.DeepEqual(copies, merged) {
				t.Errorf("copies %v, the merge path's %v", copies, merged)
			}
		})
	}
	_, err := f.convertWith(t, src, map[string]string{manifest2llb.BuildArgMethod: "merge"}, f.source(), manifest2llb.ConvertOpt{LLBCaps: &noMerge})
	if err == nil || !strings.Contains(err.Error(), "this builder has no MergeOp") {
		t.Errorf("merge forced on a builder without MergeOp: %v", err)
	}
}

// TestConvertLayers: LAYERS sets the budget and strategy, options override
// them, and a previous image's plan is read for the platform built.
func TestConvertLayers(t *testing.T) {
	f := newFixture(t, "/nix/store")
	base := "CLOSURE ./result-amd64\nGRAPH graph.json\n"
	if p := f.mustConvert(t, base+"LAYERS --max=2\n", manifest2llb.ConvertOpt{}).Images[0].Plan; len(p.Layers) > 2 || p.Strategy != layering.DefaultStrategy {
		t.Errorf("LAYERS --max=2: %d layers by %s", len(p.Layers), p.Strategy)
	}
	if p := f.mustConvert(t, base+"LAYERS --strategy=per-path\n", manifest2llb.ConvertOpt{}).Images[0].Plan; len(p.Layers) != 3 || p.Strategy != "per-path" {
		t.Errorf("per-path: %d layers by %s", len(p.Layers), p.Strategy)
	}
	if p := f.mustConvert(t, base+"LAYERS --strategy=per-path\n", manifest2llb.ConvertOpt{Strategy: "single", MaxLayers: 5}).Images[0].Plan; len(p.Layers) != 1 || p.Strategy != "single" {
		t.Errorf("overridden: %d layers by %s", len(p.Layers), p.Strategy)
	}
	// One layer of the budget is the customisation layer's.
	if p := f.mustConvert(t, base+"LAYERS --max=2 --strategy=per-path\nLINK /bin -> bin\n", manifest2llb.ConvertOpt{}).Images[0].Plan; len(p.Layers) != 1 {
		t.Errorf("LAYERS --max=2 with a LINK: %d store layers, want 1", len(p.Layers))
	}

	// A layout the strategy would not make: the two stable paths joined.
	previous := f.mustConvert(t, base+"LAYERS --strategy=per-path\n", manifest2llb.ConvertOpt{}).Images[0].Plan
	previous.Layers = []layering.Layer{
		{Key: "stable", Paths: append(slices.Clone(previous.Layers[0].Paths), previous.Layers[1].Paths...)},
		previous.Layers[2],
	}
	var asked []string
	read := func(_ context.Context, ref string, p ocispecs.Platform) (*manifest2llb.PreviousImage, error) {
		asked = append(asked, ref+" "+p.Architecture)
		return &manifest2llb.PreviousImage{Plan: &previous}, nil
	}
	p := f.mustConvert(t, base+"ARG V=1\nLAYERS --max=3 --previous=app:$V\n", manifest2llb.ConvertOpt{ReadPrevious: read}).Images[0].Plan
	if !reflect.DeepEqual(asked, []string{"app:1 amd64"}) || len(p.Layers) != 2 || !reflect.DeepEqual(p.Layers[0].Paths, previous.Layers[0].Paths) {
		t.Errorf("--previous: asked %v, plan %+v; want the previous layers kept", asked, p)
	}
	none := ""
	asked = nil
	f.mustConvert(t, base+"LAYERS --previous=app:1\n", manifest2llb.ConvertOpt{ReadPrevious: read, Previous: &none})
	if len(asked) != 0 {
		t.Errorf("Previous \"\" still read %v", asked)
	}
}

// TestConvertImageConfig: the Dockerfile instructions set the config, with
// ${ROOT} as the platform's first root, also in ENTRYPOINT and CMD.
func TestConvertImageConfig(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := `ARG GREETING=hi
CLOSURE ./result-amd64
GRAPH graph.json
ENV PATH=${ROOT}/bin APP_GREETING=$GREETING
WORKDIR /srv
USER 1000:1000
LABEL org.example.root=${ROOT}
EXPOSE 8080
STOPSIGNAL SIGINT
ENTRYPOINT ["${ROOT}/bin/app"]
CMD ["--greet", "$GREETING"]
`
	img := f.mustConvertWith(t, src, map[string]string{"GREETING": "hello", manifest2llb.BuildArgEpoch: "1700000000"}, f.source(), manifest2llb.ConvertOpt{}).Images[0]
	root := f.Apps["amd64"].String()
	c := img.Config.Config
	if want := []string{"PATH=" + root + "/bin", "APP_GREETING=hello"}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("Env %v, want %v", c.Env, want)
	}
	if want := []string{root + "/bin/app"}; !reflect.DeepEqual(c.Entrypoint, want) {
		t.Errorf("Entrypoint %v, want %v", c.Entrypoint, want)
	}
	if want := []string{"--greet", "$GREETING"}; !reflect.DeepEqual(c.Cmd, want) {
		t.Errorf("Cmd %v, want %v (not expanded, as in a Dockerfile)", c.Cmd, want)
	}
	if c.WorkingDir != "/srv" || c.User != "1000:1000" || c.StopSignal != "SIGINT" || c.Labels["org.example.root"] != root {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if img.Config.Platform.Architecture != "amd64" || !img.Config.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("platform %+v, created %v", img.Config.Platform, img.Config.Created)
	}

	// Labels of the build (docker build --label) go over the manifest's,
	// and never over the recorded plan.
	labelled := f.mustConvert(t, src, manifest2llb.ConvertOpt{Labels: map[string]string{
		"org.example.root": "over", "org.example.new": "1", layerllb.PlanLabel: "not a plan",
	}}).Images[0].Config.Config.Labels
	if labelled["org.example.root"] != "over" || labelled["org.example.new"] != "1" {
		t.Errorf("labels %v, want the build's over the manifest's", labelled)
	}
	if _, err := layerllb.RecordedPlan(labelled); err != nil {
		t.Errorf("a build label replaced the recorded plan: %v", err)
	}
	if c.Labels["org.example.new"] != "" {
		t.Errorf("the build's labels leaked into another conversion's config: %v", c.Labels)
	}
	for _, cp := range llbtest.Marshal(t, img.State, llbtest.AllCaps()).Copies() {
		if cp.Timestamp != time.Unix(1700000000, 0).UnixNano() {
			t.Fatalf("copy %s has time %d, not SOURCE_DATE_EPOCH", cp.Src, cp.Timestamp)
		}
	}
}

// TestConvertPlatforms: one image per target platform, each with the
// closure its binaries are built for and its own ${ROOT}.
func TestConvertPlatforms(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nCLOSURE ./result-arm\nGRAPH graph.json\nENTRYPOINT [\"${ROOT}/bin/app\"]\n"
	res := f.mustConvert(t, src, manifest2llb.ConvertOpt{TargetPlatforms: []ocispecs.Platform{armV7, amd64}})
	if len(res.Images) != 2 {
		t.Fatalf("%d images", len(res.Images))
	}
	for i, arch := range []string{"arm", "amd64"} {
		img := res.Images[i]
		app := f.Apps[arch].String()
		if img.Platform.Architecture != arch || img.Config.Architecture != arch {
			t.Errorf("image %d is for %+v, want %s", i, img.Platform, arch)
		}
		if !slices.Contains(planPaths(img.Plan), app) || len(planPaths(img.Plan)) != 3 {
			t.Errorf("%s plans %v", arch, planPaths(img.Plan))
		}
		if got := img.Config.Config.Entrypoint; len(got) != 1 || got[0] != app+"/bin/app" {
			t.Errorf("%s entrypoint %v", arch, got)
		}
	}
}

// TestConvertErrors: bad input is an error that names the problem, at the
// manifest line it comes from.
func TestConvertErrors(t *testing.T) {
	f := newFixture(t, "/nix/store")
	missing := "/nix/store/99999999999999999999999999999999-gone"
	for _, tc := range []struct {
		name, src string
		args      map[string]string
		opt       manifest2llb.ConvertOpt
		line      int // 0: none
		want      string
	}{
		{"unknown instruction", "CLOSURE ./result-amd64\nCLOSUR x\n", nil, manifest2llb.ConvertOpt{}, 2, "unknown instruction: CLOSUR"},
		{"missing root", "# comment\nCLOSURE ./no-such\nGRAPH graph.json\n", nil, manifest2llb.ConvertOpt{}, 2, "root ./no-such is not in the build context"},
		{"root not in the store", "CLOSURE " + missing + "\nGRAPH graph.json\n", nil, manifest2llb.ConvertOpt{}, 1, "root " + missing + " is not in"},
		{"root not in the graph", "GRAPH graph.json\nCLOSURE " + f.Extra.String() + "\nCLOSURE ./result-amd64\n", nil, manifest2llb.ConvertOpt{}, 2, "is not in the GRAPH files"},
		{"no closure for the platform", "CLOSURE ./result-arm\nGRAPH graph.json\n", nil, manifest2llb.ConvertOpt{}, 0, "no CLOSURE for platform linux/amd64"},
		{"budget", "CLOSURE ./result-amd64\nGRAPH graph.json\nLAYERS --max=1\nLINK /bin -> bin\n", nil, manifest2llb.ConvertOpt{}, 3, "LAYERS --max=1 leaves no layer"},
		{"budget override", "CLOSURE ./result-amd64\nGRAPH graph.json\nLINK /bin -> bin\n", nil, manifest2llb.ConvertOpt{MaxLayers: 1}, 0, "a layer budget of 1 leaves no layer"},
		{"previous unreadable", "CLOSURE ./result-amd64\nGRAPH graph.json\nLAYERS --previous=app:1\n", nil, manifest2llb.ConvertOpt{}, 3, "LAYERS --previous: app:1: no previous image can be read here"},
		{"epoch", "CLOSURE ./result-amd64\n", map[string]string{manifest2llb.BuildArgEpoch: "yesterday"}, manifest2llb.ConvertOpt{}, 0, `SOURCE_DATE_EPOCH="yesterday"`},
		{"method", "CLOSURE ./result-amd64\n", map[string]string{manifest2llb.BuildArgMethod: "stack"}, manifest2llb.ConvertOpt{}, 0, "want chain or merge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.convertWith(t, tc.src, tc.args, f.source(), tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errorLine(err) != tc.line {
				t.Errorf("err %v at line %d; want %q at line %d", err, errorLine(err), tc.want, tc.line)
			}
		})
	}
}

// TestConvertRefusesUnfitStore: the store paths are walked before they are
// copied: a setuid file, or a path that is not the one the GRAPH
// describes, is refused at the CLOSURE line.
func TestConvertRefusesUnfitStore(t *testing.T) {
	for name, tc := range map[string]struct {
		spoil func(f *fixture) error
		want  string
	}{
		"setuid": {func(f *fixture) error {
			return os.Chmod(filepath.Join(f.StoreDir, f.Lib.Base(), "lib", "libgreet.so"), os.ModeSetuid|0o555)
		}, "setuid"},
		"changed": {func(f *fixture) error {
			return os.WriteFile(filepath.Join(f.StoreDir, f.Data.Base(), "share", "greeting"), []byte("hello, changed"), 0o444)
		}, "is not the one the GRAPH describes"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "/nix/store")
			if err := tc.spoil(f); err != nil {
				t.Fatal(err)
			}
			_, err := f.convert(t, "ARG X\nCLOSURE ./result-amd64\nGRAPH graph.json\n", manifest2llb.ConvertOpt{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || errorLine(err) != 2 {
				t.Errorf("err %v at line %d; want %q at line 2", err, errorLine(err), tc.want)
			}
		})
	}
}

// TestConvertIsDeterministic: the same inputs give the same LLB and config,
// whatever the run.
func TestConvertIsDeterministic(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "CLOSURE ./result-amd64\nCLOSURE ./result-arm\nGRAPH graph.json\nLINK /bin -> bin\nENV A=1 B=2\n"
	opt := manifest2llb.ConvertOpt{TargetPlatforms: []ocispecs.Platform{amd64, armV7}}
	var first [][]byte
	for run := 0; run < 5; run++ {
		res := f.mustConvert(t, src, opt)
		var got [][]byte
		for _, img := range res.Images {
			// A local source is unique to its client unless told otherwise.
			def, err := img.State.Marshal(context.Background(), llb.LocalUniqueID("test"))
			if err != nil {
				t.Fatal(err)
			}
			for _, dt := range def.Def {
				got = append(got, dt)
			}
			cfg, err := json.Marshal(img.Config)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, cfg)
		}
		if first == nil {
			first = got
		} else if !reflect.DeepEqual(got, first) {
			t.Fatalf("run %d differs from run 0", run)
		}
	}
}
