package hostbuild

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/internal/gatewaytest"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// TestInputKey: the key changes with everything a build reads, and with
// nothing else.
func TestInputKey(t *testing.T) {
	f := storetest.New(t, "")
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	base := func() Request {
		return Request{
			Manifest:     []byte("# syntax=storepack\nSTORE " + f.StoreName + "\nCLOSURE ./result-amd64\nGRAPH graph.json\n"),
			ManifestName: "app.storepack",
			ContextDir:   f.CtxDir,
			BuildArgs:    map[string]string{"A": "1"},
			Settings:     Settings{Labels: map[string]string{"org.example": "x"}},
		}
	}
	key := func(req Request, p ocispecs.Platform) string {
		t.Helper()
		in, err := Open(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return in.Key(p).String()
	}
	first := key(base(), amd64)
	if again := key(base(), amd64); again != first {
		t.Fatalf("the same inputs gave %s, then %s", first, again)
	}
	// An unrelated file in the context and the order of map entries
	// change nothing.
	if err := os.WriteFile(filepath.Join(f.CtxDir, "notes.txt"), []byte("unrelated"), 0o644); err != nil {
		t.Fatal(err)
	}
	more := base()
	more.BuildArgs["B"], more.Labels["org.example.b"] = "2", "y"
	withMore := key(more, amd64)
	for i := 0; i < 20; i++ {
		if key(more, amd64) != withMore {
			t.Fatal("the key depends on map order")
		}
	}
	if key(base(), amd64) != first {
		t.Error("an unrelated context file changed the key")
	}

	changed := map[string]string{"more build args and labels": withMore}
	opt := base()
	opt.Manifest = append(opt.Manifest, "ENV X=1\n"...)
	changed["manifest"] = key(opt, amd64)
	opt = base()
	opt.BuildArgs["A"] = "2"
	changed["build arg"] = key(opt, amd64)
	opt = base()
	opt.Labels["org.example"] = "y"
	changed["label"] = key(opt, amd64)
	opt = base()
	opt.Strategy, opt.MaxLayers = "single", 7
	changed["layering"] = key(opt, amd64)
	changed["platform"] = key(base(), ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"})

	graph := filepath.Join(f.CtxDir, "graph.json")
	data, err := os.ReadFile(graph)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(graph, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	changed["GRAPH file"] = key(base(), amd64)
	if err := os.WriteFile(graph, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// ./result-amd64 now points to another store path, as after a rebuild.
	link := filepath.Join(f.CtxDir, "result-amd64")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.Apps["arm"].String(), link); err != nil {
		t.Fatal(err)
	}
	changed["root"] = key(base(), amd64)

	seen := map[string]string{first: "the first inputs"}
	for what, k := range changed {
		if other, ok := seen[k]; ok {
			t.Errorf("%s gave the same key as %s", what, other)
		}
		seen[k] = what
	}

	bad := base()
	bad.Manifest = []byte("# syntax=storepack\nSTORE " + f.StoreName + "\nCLOSURE ./no-such-result\n")
	if _, err := Open(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "app.storepack:3") {
		t.Errorf("a missing root: %v, want an error at app.storepack:3", err)
	}
}

// TestPlanIsTheBuildsPlan: Plan gives exactly the plan that a build of the
// same Input records in its image, for a manifest and for ROOTs (whose
// generated manifest has a customisation layer, which the budget counts).
func TestPlanIsTheBuildsPlan(t *testing.T) {
	f := storetest.New(t, "")
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	roots, _, err := RootsManifest([]store.Path{f.Apps["amd64"]}, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]Request{
		"manifest": {
			Manifest:   []byte("# syntax=storepack\nSTORE " + f.StoreName + "\nCLOSURE ./result-amd64\nGRAPH graph.json\nLAYERS --max=3\nDIR /tmp\n"),
			ContextDir: f.CtxDir,
		},
		"roots": {Manifest: roots, Settings: Settings{MaxLayers: 3, Strategy: "per-path"}},
	} {
		t.Run(name, func(t *testing.T) {
			req.Platforms = []ocispecs.Platform{amd64}
			in, err := Open(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			planned, err := in.Plan(context.Background(), amd64, nil)
			if err != nil {
				t.Fatal(err)
			}
			recorded := builtPlan(t, in, amd64)
			if !reflect.DeepEqual(planned.Plan, recorded) {
				t.Errorf("Plan:\n%+v\nthe build recorded:\n%+v", planned.Plan, recorded)
			}
			if len(recorded.Layers) != 2 {
				t.Errorf("%d store layers, want 2 (a budget of 3 less the customisation layer)", len(recorded.Layers))
			}
		})
	}
}

// builtPlan runs the gateway side of Build on in with a fake gateway and
// returns the plan the image records.
func builtPlan(t *testing.T, in *Input, p ocispecs.Platform) layering.Plan {
	t.Helper()
	gw := &gatewaytest.Client{Opts: map[string]string{}, Platform: p}
	res, err := in.solve(context.Background(), gw, in.buildOpt(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(res.Metadata[exptypes.ExporterImageConfigKey], &img); err != nil {
		t.Fatal(err)
	}
	plan, err := layerllb.RecordedPlan(img.Config.Labels)
	if err != nil {
		t.Fatal(err)
	}
	return *plan
}

// countingSource counts what the host pipeline reads through its Source.
type countingSource struct {
	HostSource
	contexts  *int
	fileReads map[string]int
}

func (c countingSource) Context(ctx context.Context, names []string) (inputs.Files, error) {
	*c.contexts++
	files, err := c.HostSource.Context(ctx, names)
	return countingFiles{files, c.fileReads}, err
}

type countingFiles struct {
	inputs.Files
	reads map[string]int
}

func (c countingFiles) ReadFile(ctx context.Context, name string) ([]byte, error) {
	c.reads[name]++
	return c.Files.ReadFile(ctx, name)
}

func (c countingFiles) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	c.reads[name]++
	return c.Files.Open(ctx, name)
}

// TestInputReadOnce: the key, the plan and the build of one Input read the
// build context (the manifest's GRAPH files and roots) once.
func TestInputReadOnce(t *testing.T) {
	f := storetest.New(t, "")
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	req := Request{
		Manifest:   []byte("# syntax=storepack\nSTORE " + f.StoreName + "\nCLOSURE ./result-amd64\nGRAPH graph.json\n"),
		ContextDir: f.CtxDir,
		Settings:   Settings{Platforms: []ocispecs.Platform{amd64}},
	}
	contexts, reads := 0, map[string]int{}
	in := &Input{Request: req, locals: &Locals{}}
	if err := in.read(context.Background(), countingSource{HostSource{ContextDir: f.CtxDir, Locals: in.locals}, &contexts, reads}); err != nil {
		t.Fatal(err)
	}
	first := in.Key(amd64)
	if _, err := in.Plan(context.Background(), amd64, nil); err != nil {
		t.Fatal(err)
	}
	builtPlan(t, in, amd64)
	if in.Key(amd64) != first {
		t.Error("the key changed after a plan and a build")
	}
	if contexts != 1 || reads["graph.json"] != 1 {
		t.Errorf("the context was read %d times, graph.json %d times; want each once", contexts, reads["graph.json"])
	}
}
