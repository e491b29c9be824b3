package cliplugin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/go-units"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend"
	"github.com/storepack/storepack/internal/gatewaytest"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

func decodePlan(t *testing.T, out string) layering.Plan {
	t.Helper()
	var plan layering.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("output is not a plan: %v\n%s", err, out)
	}
	return plan
}

// planJSON is what plan --format json must print for plan.
func planJSON(t *testing.T, plan layering.Plan) string {
	t.Helper()
	b, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func buildPlan(t *testing.T, g *store.Graph, strategy string, max int) layering.Plan {
	t.Helper()
	plan, err := layering.NewPlan(g, layering.Options{Strategy: strategy, MaxLayers: max})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// tableRows splits plan's table into the header and the rows' cells.
func tableRows(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var rows [][]string
	for _, line := range lines {
		rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1))
	}
	if want := []string{"LAYER", "KEY", "PATHS", "SIZE", "STORE PATHS"}; !slices.Equal(rows[0], want) {
		t.Fatalf("header %q, want %q", lines[0], want)
	}
	// Aligned: every column starts at the same offset in every line.
	for _, col := range []string{"KEY", "PATHS", "SIZE", "STORE PATHS"} {
		at := strings.Index(lines[0], col)
		for _, line := range lines[1:] {
			if len(line) <= at || line[at-1] != ' ' || line[at] == ' ' {
				t.Errorf("column %s is not aligned in %q", col, line)
			}
		}
	}
	return rows[1:]
}

// checkTable compares plan's table with the plan it must show.
func checkTable(t *testing.T, out string, plan layering.Plan) {
	t.Helper()
	rows := tableRows(t, out)
	if len(rows) != len(plan.Layers) {
		t.Fatalf("%d rows for %d layers:\n%s", len(rows), len(plan.Layers), out)
	}
	for i, l := range plan.Layers {
		var names []string
		for _, p := range l.Paths {
			names = append(names, p.Name)
		}
		slices.Sort(names)
		want := []string{strconv.Itoa(i), l.Key, strconv.Itoa(len(l.Paths)), units.HumanSize(float64(l.Size)), strings.Join(names, ", ")}
		if !slices.Equal(rows[i], want) {
			t.Errorf("row %d = %q, want %q", i, rows[i], want)
		}
	}
}

func TestPlanRoots(t *testing.T) {
	s := storetest.NewHostStore(t)
	g := s.Graph(t)

	// JSON: the plan of the scanned closure, indented.
	perPath := buildPlan(t, g, "per-path", 100)
	out := mustRun(t, "plan", "--strategy", "per-path", "--format", "json", s.Result())
	if want := planJSON(t, perPath); out != want {
		t.Errorf("json:\n%s\nwant:\n%s", out, want)
	}

	// Table: one row per layer, bottom first, dependencies below.
	out = mustRun(t, "plan", "--strategy=per-path", s.Result())
	checkTable(t, out, perPath)
	rows := tableRows(t, out)
	at := func(name string) int {
		return slices.IndexFunc(rows, func(r []string) bool { return r[4] == name })
	}
	if !(at("libc-2.39") < at("lib-2.1") && at("lib-2.1") < at("app-1.0") && at("data") < at("app-1.0")) {
		t.Errorf("per-path layers are not in dependency order:\n%s", out)
	}

	// Defaults: the default strategy with a budget of 100, less the
	// customisation layer that the image of ROOTs has (LINK /bin).
	def := decodePlan(t, mustRun(t, "plan", "--format=json", s.Result()))
	if want := buildPlan(t, g, layering.DefaultStrategy, 99); planJSON(t, def) != planJSON(t, want) {
		t.Errorf("default plan %+v, want %+v", def, want)
	}

	// A budget of two: everything in one layer, under the customisation
	// layer; --max is --max-layers's old spelling.
	for _, flag := range []string{"--max-layers", "--max"} {
		out = mustRun(t, "plan", flag, "2", s.Result())
		checkTable(t, out, buildPlan(t, g, layering.DefaultStrategy, 1))
		if rows := tableRows(t, out); len(rows) != 1 || rows[0][2] != "4" || rows[0][4] != "app-1.0, data, lib-2.1, libc-2.39" {
			t.Errorf("%s 2:\n%s", flag, out)
		}
	}
	mustFail(t, []string{"a layer budget of 1 leaves no layer"}, "plan", "--max-layers", "1", s.Result())

	// --from FILE: the file's sizes and references; sizes unknown are "-".
	infos := []store.Info{
		{Path: s.App, References: []store.Path{s.Lib}, NarSize: 3_000_000, NarHash: storetest.NarHash(s.App)},
		{Path: s.Lib, NarHash: storetest.NarHash(s.Lib)},
	}
	reg := s.Registration(t, infos)
	out = mustRun(t, "plan", "--strategy", "per-path", "--from", reg, s.Result())
	rows = tableRows(t, out)
	if len(rows) != 2 || rows[0][4] != "lib-2.1" || rows[0][3] != "-" || rows[1][3] != "3MB" {
		t.Errorf("--from registration:\n%s", out)
	}

	// The output is deterministic.
	if again := mustRun(t, "plan", "--strategy", "per-path", "--from", reg, s.Result()); again != out {
		t.Errorf("second run differs:\n%s\nfirst:\n%s", again, out)
	}
}

// manifestFile writes a manifest for the test store into its work
// directory, where result is.
func manifestFile(t *testing.T, s *storetest.HostStore, name string, lines ...string) string {
	t.Helper()
	src := "# syntax=storepack\nSTORE " + s.Dir + "\n" + strings.Join(lines, "\n") + "\n"
	return s.WriteFile(t, name, src)
}

func TestPlanManifest(t *testing.T) {
	s := storetest.NewHostStore(t)
	g := s.Graph(t)

	// Without GRAPH the store is scanned; without LAYERS the budget is 100.
	plain := manifestFile(t, s, "plain.storepack", "CLOSURE ./result", `ENTRYPOINT ["/bin/app"]`)
	out := mustRun(t, "plan", "--format", "json", plain)
	if want := planJSON(t, buildPlan(t, g, layering.DefaultStrategy, 100)); out != want {
		t.Errorf("manifest:\n%s\nwant:\n%s", out, want)
	}
	checkTable(t, mustRun(t, "plan", plain), buildPlan(t, g, layering.DefaultStrategy, 100))

	// The budget counts the customisation layer: --max=2 with a LINK
	// leaves exactly one store layer; without it, two.
	link := manifestFile(t, s, "link.storepack", "CLOSURE ./result", "LINK /bin -> bin")
	plan := decodePlan(t, mustRun(t, "plan", "--max=2", "--format=json", link))
	if len(plan.Layers) != 1 || len(plan.Layers[0].Paths) != 4 {
		t.Errorf("--max=2 with LINK: %d layers, want 1 with every path: %+v", len(plan.Layers), plan)
	}
	if got := decodePlan(t, mustRun(t, "plan", "--max=2", "--format=json", plain)); len(got.Layers) != 2 {
		t.Errorf("--max=2 without LINK: %d layers, want 2", len(got.Layers))
	}
	out = mustRun(t, "plan", "--max=2", link)
	if rows := tableRows(t, out); len(rows) != 1 {
		t.Errorf("--max=2 with LINK, table:\n%s", out)
	}

	// RUN makes the customisation layer too, and plans without a builder.
	run := manifestFile(t, s, "run.storepack", "CLOSURE ./result", "RUN touch /marker")
	if got := decodePlan(t, mustRun(t, "plan", "--max=2", "--format=json", run)); len(got.Layers) != 1 {
		t.Errorf("--max=2 with RUN: %d layers, want 1", len(got.Layers))
	}

	// The manifest's LAYERS, a DIR, and flags that override them.
	layers := manifestFile(t, s, "layers.storepack", "CLOSURE ./result", "DIR --mode=1777 /tmp", "LAYERS --max=2 --strategy=per-path")
	got := decodePlan(t, mustRun(t, "plan", "--format=json", layers))
	if want := buildPlan(t, g, "per-path", 1); planJSON(t, got) != planJSON(t, want) {
		t.Errorf("LAYERS --max=2 --strategy=per-path with DIR: %+v, want %+v", got, want)
	}
	got = decodePlan(t, mustRun(t, "plan", "--format=json", "--max=4", "--strategy=single", layers))
	if want := buildPlan(t, g, "single", 3); planJSON(t, got) != planJSON(t, want) {
		t.Errorf("--max=4 --strategy=single over LAYERS: %+v, want %+v", got, want)
	}
	got = decodePlan(t, mustRun(t, "plan", "--format=json", "--max=4", layers))
	if want := buildPlan(t, g, "per-path", 3); planJSON(t, got) != planJSON(t, want) {
		t.Errorf("--max=4 over LAYERS: %+v, want %+v", got, want)
	}

	// No layer left for the store paths.
	tight := manifestFile(t, s, "tight.storepack", "CLOSURE ./result", "LINK /bin -> bin", "LAYERS --max=1")
	mustFail(t, []string{tight + ":5:", "LAYERS --max=1 leaves no layer"}, "plan", tight)
	mustFail(t, []string{"a layer budget of 1 leaves no layer"}, "plan", "--max=1", link)

	// GRAPH: the graph comes from the file, and ${ROOT} works in LINK.
	reg := s.Registration(t, []store.Info{
		{Path: s.App, References: []store.Path{s.Libc}, NarSize: 7, NarHash: storetest.NarHash(s.App)},
		{Path: s.Libc, NarSize: 8, NarHash: storetest.NarHash(s.Libc)},
	})
	withGraph := manifestFile(t, s, "graph.storepack", "CLOSURE ./result", "GRAPH "+filepath.Base(reg), "LINK /app -> ${ROOT}/bin/app", "LAYERS --strategy=per-path")
	out = mustRun(t, "plan", withGraph)
	rows := tableRows(t, out)
	if len(rows) != 2 || rows[0][4] != "libc-2.39" || rows[0][3] != "8B" || rows[1][4] != "app-1.0" {
		t.Errorf("GRAPH manifest:\n%s", out)
	}

	// --context: the manifest elsewhere, its files in the context. A
	// symlink to a manifest is a manifest.
	elsewhere := t.TempDir()
	moved := filepath.Join(elsewhere, "app.storepack")
	if err := os.Rename(plain, moved); err != nil {
		t.Fatal(err)
	}
	mustFail(t, []string{moved + ":3:", "root ./result is not in the build context"}, "plan", moved)
	viaContext := mustRun(t, "plan", "--context", s.Work, moved)
	linked := filepath.Join(elsewhere, "linked.storepack")
	if err := os.Symlink(moved, linked); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, "plan", "--context", s.Work, linked); got != viaContext {
		t.Errorf("a symlink to the manifest:\n%s\nwant:\n%s", got, viaContext)
	}
	checkTable(t, viaContext, buildPlan(t, g, layering.DefaultStrategy, 100))

	// Errors name the manifest file and line.
	bad := manifestFile(t, s, "bad.storepack", "CLOSURE ./result", "CLOSUR ./result")
	mustFail(t, []string{bad + ":4:", "unknown instruction: CLOSUR"}, "plan", bad)
	badStrategy := manifestFile(t, s, "strategy.storepack", "CLOSURE ./result", "LAYERS --strategy=nope")
	mustFail(t, []string{badStrategy + ":4:", `unknown layering strategy "nope"`, "per-path"}, "plan", badStrategy)

	// Flags of the other mode.
	mustFail(t, []string{"--from applies to ROOT arguments"}, "plan", "--from", "scan", link)
	mustFail(t, []string{"--store-dir applies to ROOT arguments"}, "plan", "--store-dir", s.Dir, link)
	mustFail(t, []string{"--context applies to a manifest"}, "plan", "--context", s.Work, s.Result())
	mustFail(t, []string{"--platform=bogus/os/x/y"}, "plan", "--platform", "bogus/os/x/y", link)
	mustFail(t, []string{"no CLOSURE for platform"}, "plan", "--platform", "aarch64-linux",
		manifestFile(t, s, "arm.storepack", "CLOSURE --platform=linux/arm/v7 ./result"))
}

func TestPlanStrategyAndFlagErrors(t *testing.T) {
	s := storetest.NewHostStore(t)
	link := manifestFile(t, s, "link.storepack", "CLOSURE ./result", "LINK /bin -> bin")
	known := strings.Join(layering.Strategies(), ", ")
	for _, arg := range []string{s.Result(), link, filepath.Join(s.Work, "missing")} {
		mustFail(t, []string{"--strategy=nope", "unknown layering strategy", "(known: " + known + ")"}, "plan", "--strategy", "nope", arg)
	}
	mustFail(t, []string{"--format=yaml", "table", "json"}, "plan", "--format", "yaml", s.Result())
	mustFail(t, []string{"--max-layers=0", "at least 1"}, "plan", "--max", "0", s.Result())
	mustFail(t, []string{"invalid argument", "--max"}, "plan", "--max", "many", s.Result())
	mustFail(t, []string{"requires at least 1 argument"}, "plan")
	mustFail(t, []string{"root " + s.Work, "not a store path"}, "plan", s.Work)
}

// TestPlanIsTheFrontendsPlan: `plan` of a manifest prints the plan that
// the frontend records in the image it builds from the same inputs, for
// both are the one conversion.
func TestPlanIsTheFrontendsPlan(t *testing.T) {
	file, gw := frontendBuild(t, "LAYERS --max=3\nLINK /bin -> bin\n")
	res, err := frontend.Build(context.Background(), gw)
	if err != nil {
		t.Fatal(err)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(res.Metadata[exptypes.ExporterImageConfigKey], &img); err != nil {
		t.Fatal(err)
	}
	recorded, err := layerllb.RecordedPlan(img.Config.Labels)
	if err != nil {
		t.Fatal(err)
	}
	planned := decodePlan(t, mustRun(t, "plan", "--format", "json", "--platform", "linux/amd64", file))
	if !reflect.DeepEqual(planned, *recorded) {
		t.Errorf("plan printed:\n%+v\nthe frontend recorded:\n%+v", planned, *recorded)
	}
	if len(planned.Layers) != 2 {
		t.Errorf("%d store layers, want 2 (LAYERS --max=3 less the customisation layer)", len(planned.Layers))
	}
}

// frontendBuild writes a manifest of the test store's amd64 closure and
// its graph with the lines extra, and returns its file and a gateway that
// builds it with the frontend for linux/amd64, as the plugin reads it.
func frontendBuild(t *testing.T, extra string) (string, *gatewaytest.Client) {
	t.Helper()
	f := storetest.New(t, "")
	src := "# syntax=storepack\nSTORE " + f.StoreName + "\nCLOSURE ./result-amd64\nGRAPH graph.json\n" + extra
	file := filepath.Join(f.CtxDir, "app.storepack")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, &gatewaytest.Client{
		Opts:     map[string]string{"filename": "app.storepack", "context:store": "local:store", "platform": "linux/amd64"},
		Locals:   map[string]string{"context": f.CtxDir, "dockerfile": f.CtxDir, "store": f.StoreDir},
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
	}
}
