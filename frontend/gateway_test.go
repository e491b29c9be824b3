package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/internal/gatewaytest"
	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// gateway returns a gateway client over the fixture with the manifest src
// as app.storepack, the store as the named context "store" or, when
// mainContext, inside the main context at its store directory, as
// `docker build -f app.storepack /` gives it.
func gateway(t *testing.T, f *storetest.Fixture, src string, mainContext bool) *gatewaytest.Client {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.CtxDir, "app.storepack"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &gatewaytest.Client{
		Opts:     map[string]string{"filename": "app.storepack"},
		Locals:   map[string]string{"context": f.CtxDir, "dockerfile": f.CtxDir},
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
	}
	if !mainContext {
		c.Opts["context:store"] = "local:store"
		c.Locals["store"] = f.StoreDir
		return c
	}
	// The main context is a root holding the store at its place.
	root := t.TempDir()
	dir := filepath.Join(root, filepath.FromSlash(f.StoreName))
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.StoreDir, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.CtxDir, filepath.Join(root, "ctx")); err != nil {
		t.Fatal(err)
	}
	c.Locals["context"] = root
	return c
}

// imageConfig is the image config the frontend's result carries.
func imageConfig(t *testing.T, meta map[string][]byte) dockerspec.DockerOCIImage {
	t.Helper()
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(meta[exptypes.ExporterImageConfigKey], &img); err != nil {
		t.Fatalf("image config: %v", err)
	}
	return img
}

// TestBuild runs the frontend in-process on both ways of getting the
// store, and checks that each layer's paths but the root (sent with the
// roots) are a transfer of their own, in its own copy in the builder, and
// that the image records its plan.
func TestBuild(t *testing.T) {
	for _, mainContext := range []bool{false, true} {
		name := map[bool]string{false: "named context", true: "main context"}[mainContext]
		t.Run(name, func(t *testing.T) {
			f := storetest.New(t, "/gnu/store")
			ctxPath := map[bool]string{false: "", true: "ctx/"}[mainContext]
			src := "# syntax=storepack\nSTORE /gnu/store\nCLOSURE ./" + ctxPath + "result-amd64\nGRAPH " + ctxPath + "graph.json\nENTRYPOINT [\"${ROOT}/bin/app\"]\n"
			c := gateway(t, f, src, mainContext)
			res, err := Build(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			img := imageConfig(t, res.Metadata)
			if got := img.Config.Entrypoint; len(got) != 1 || got[0] != f.Apps["amd64"].String()+"/bin/app" {
				t.Errorf("entrypoint %v", got)
			}
			plan, err := layerllb.RecordedPlan(img.Config.Labels)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(plan.Paths()); n != 3 {
				t.Errorf("recorded plan of %d paths, want 3: %+v", n, plan)
			}
			// Each layer's paths are a transfer of their own but for the
			// root, which comes from the roots' transfer.
			prefixed := func(p store.Path) string {
				if mainContext {
					return "gnu/store/" + p.Base()
				}
				return p.Base()
			}
			want := map[string][]string{transferRoots: {prefixed(f.Apps["amd64"])}}
			for _, l := range plan.Layers {
				for _, p := range l.Paths {
					if p != f.Apps["amd64"] {
						key := transferClosure + " " + l.Key
						want[key] = append(want[key], prefixed(p))
					}
				}
			}
			got := map[string][]string{}
			for _, def := range c.Solved() {
				for _, src := range localSources(t, def) {
					key := src.Attrs[pb.AttrSharedKeyHint]
					if key != transferRoots && !strings.HasPrefix(key, transferClosure+" ") {
						continue
					}
					var include []string
					if err := json.Unmarshal([]byte(src.Attrs[pb.AttrIncludePatterns]), &include); err != nil {
						t.Fatal(err)
					}
					slices.Sort(include)
					got[key] = include
				}
			}
			if len(want) < 2 || !maps.EqualFunc(got, want, slices.Equal) {
				t.Errorf("transfers by shared key %q, want %q", got, want)
			}
		})
	}
}

// TestBuildErrorSource: a located error names the manifest's file and
// line and carries the source lines for `docker build` to show.
func TestBuildErrorSource(t *testing.T) {
	f := storetest.New(t, "/nix/store")
	c := gateway(t, f, "# syntax=storepack\nCLOSURE ./no-such\n", false)
	_, err := Build(context.Background(), c)
	if err == nil || !strings.HasPrefix(err.Error(), "app.storepack:2: ") || !strings.Contains(err.Error(), "root ./no-such is not in the build context") {
		t.Fatalf("err = %v", err)
	}
	sources := errdefs.Sources(err)
	if len(sources) != 1 || sources[0].Info.Filename != "app.storepack" || sources[0].Ranges[0].Start.Line != 2 {
		t.Errorf("error sources %+v, want app.storepack line 2", sources)
	}
}

func localSources(t *testing.T, def *pb.Definition) []*pb.SourceOp {
	t.Helper()
	var srcs []*pb.SourceOp
	for _, op := range definitionOps(t, def) {
		if s := op.GetSource(); s != nil && strings.HasPrefix(s.Identifier, "local://") {
			srcs = append(srcs, s)
		}
	}
	return srcs
}

// definitionOps decodes the ops of def, in order.
func definitionOps(t *testing.T, def *pb.Definition) []*pb.Op {
	t.Helper()
	ops := make([]*pb.Op, len(def.Def))
	for i, dt := range def.Def {
		ops[i] = &pb.Op{}
		if err := ops[i].UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
	}
	return ops
}

// TestBuildSBOM: with attest:sbom, each platform's result carries its SPDX
// document as an in-toto attestation of BuildKit's SBOM predicate type,
// written by a state that holds the document alone, listing exactly the
// closure the platform's image records; without, there is none; a builder
// that keeps no attestations is an error.
func TestBuildSBOM(t *testing.T) {
	f := storetest.New(t, "/nix/store")
	src := "# syntax=storepack\nCLOSURE ./result-amd64\nCLOSURE ./result-arm\nGRAPH graph.json\n"
	c := gateway(t, f, src, false)
	c.Opts["platform"] = "linux/amd64,linux/arm/v7"
	c.Opts["attest:sbom"] = ""
	// The graph, from a scan, has no NAR hashes: the helper reads them.
	c.Frontend, c.WorkDir = "storepack:test", t.TempDir()
	res, err := Build(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	docs := writtenSBOMs(t, c.Solved())
	for _, id := range []string{"linux/amd64", "linux/arm/v7"} {
		atts := res.Attestations[id]
		if len(atts) != 1 {
			t.Fatalf("%s: %d attestations, want 1", id, len(atts))
		}
		a := atts[0]
		if a.Kind != gwpb.AttestationKind_InToto || a.InToto.PredicateType != "https://spdx.dev/Document" || a.Path != sbomFile || string(a.Metadata["reason"]) != "sbom" || a.Ref == nil {
			t.Errorf("%s: attestation %+v", id, a)
		}
		doc := docs[id]
		if doc == nil {
			t.Fatalf("%s: no document written (have %v)", id, slices.Collect(maps.Keys(docs)))
		}
		plan, err := layerllb.RecordedPlan(imageConfig(t, map[string][]byte{exptypes.ExporterImageConfigKey: res.Metadata[exptypes.ExporterImageConfigKey+"/"+id]}).Config.Labels)
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for _, p := range plan.Paths() {
			want = append(want, p.String())
		}
		for _, p := range doc.Packages {
			got = append(got, p.PackageFileName)
			path, err := store.ParsePath(p.PackageFileName)
			if err != nil {
				t.Fatal(err)
			}
			if sum, _, err := store.NarHash(context.Background(), os.DirFS(f.StoreDir), path); err != nil || len(p.PackageChecksums) != 1 || p.PackageChecksums[0].Value != sum.Encoded() {
				t.Errorf("%s: checksums %+v, want its NAR hash %s (%v)", p.PackageFileName, p.PackageChecksums, sum, err)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if len(want) != 3 || !slices.Equal(got, want) {
			t.Errorf("%s: the document lists %q, the image %q", id, got, want)
		}
		if len(doc.Files) != 0 {
			t.Errorf("%s: files not asked for, but listed: %+v", id, doc.Files)
		}
	}

	// files=true lists the files, read by the pass that reads the NAR
	// hashes: hash-store runs as often as without them.
	hashStores := func(from int) int {
		return len(slices.DeleteFunc(c.Ran()[from:], func(c inbuilder.Command) bool { return c != inbuilder.HashStore }))
	}
	c.Opts["attest:sbom"] = "files=true"
	solved, ran := len(c.Solved()), len(c.Ran())
	if _, err := Build(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got, want := hashStores(ran), hashStores(0)-hashStores(ran); got != want {
		t.Errorf("hash-store ran %d times with the files, %d times without", got, want)
	}
	for id, doc := range writtenSBOMs(t, c.Solved()[solved:]) {
		got, want := map[string]string{}, map[string]string{}
		for _, file := range doc.Files {
			got[file.FileName] = fmt.Sprint(file.Checksums)
		}
		for _, p := range doc.Packages {
			path, err := store.ParsePath(p.PackageFileName)
			if err != nil {
				t.Fatal(err)
			}
			scan, err := store.NarHashFiles(context.Background(), os.DirFS(f.StoreDir), path)
			if err != nil {
				t.Fatal(err)
			}
			for _, file := range scan.Files {
				want[sbommodel.Package{Path: path}.FileName(file)] = fmt.Sprint([]common.Checksum{{Algorithm: common.SHA1, Value: file.SHA1}, {Algorithm: common.SHA256, Value: file.SHA256}})
			}
		}
		if len(want) == 0 || !maps.Equal(got, want) {
			t.Errorf("%s: files\n%v\nwant\n%v", id, got, want)
		}
	}
	c.Opts["attest:sbom"] = "files=maybe"
	if _, err := Build(context.Background(), c); err == nil || !strings.Contains(err.Error(), "the SBOM's files=maybe: want true or false") {
		t.Errorf("files=maybe: err = %v", err)
	}

	delete(c.Opts, "attest:sbom")
	if res, err := Build(context.Background(), c); err != nil || len(res.Attestations) != 0 {
		t.Errorf("without attest:sbom: attestations %v, err %v", res.Attestations, err)
	}

	c.Opts["attest:sbom"] = ""
	old := llbtest.Without(&gwpb.Caps, gwpb.CapAttestations)
	c.Caps = &old
	if _, err := Build(context.Background(), c); err == nil || !strings.Contains(err.Error(), "an SBOM was asked for, but this builder cannot attach attestations") {
		t.Errorf("err = %v", err)
	}
}

// writtenSBOMs are the SBOM documents that defs write, by the platform they
// name.
func writtenSBOMs(t *testing.T, defs []*pb.Definition) map[string]*spdx.Document {
	t.Helper()
	docs := map[string]*spdx.Document{}
	for _, def := range defs {
		for _, op := range definitionOps(t, def) {
			for _, action := range op.GetFile().GetActions() {
				if mk := action.GetMkfile(); mk != nil && mk.Path == sbomFile {
					doc, err := spdxjson.Read(bytes.NewReader(mk.Data))
					if err != nil {
						t.Fatalf("%v\n%s", err, mk.Data)
					}
					platform, _, _ := strings.Cut(strings.TrimPrefix(doc.DocumentName, "storepack image for "), ":")
					docs[platform] = doc
				}
			}
		}
	}
	return docs
}

// TestBuildSources: the image's definition carries, as source files of its
// top step, the manifest and the document of its sources (its roots' store
// paths, its GRAPH files' digests), which BuildKit records in a provenance
// of mode=max.
func TestBuildSources(t *testing.T) {
	f := storetest.New(t, "/nix/store")
	src := "# syntax=storepack\nCLOSURE ./result-amd64\nCLOSURE ./result-arm\nGRAPH graph.json\nLINK /bin -> bin\n"
	c := gateway(t, f, src, false)
	c.Opts["platform"] = "linux/amd64,linux/arm/v7"
	if _, err := Build(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	graph, err := os.ReadFile(filepath.Join(f.CtxDir, "graph.json"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, def := range c.Solved() {
		if def.Source == nil {
			continue
		}
		files := map[string][]byte{}
		for _, info := range def.Source.Infos {
			files[info.Filename] = info.Data
		}
		data, ok := files[SourcesFile]
		if !ok {
			continue
		}
		if string(files["app.storepack"]) != src {
			t.Errorf("the manifest among the source files is %q", files["app.storepack"])
		}
		var got struct {
			Roots  []string
			Graphs []struct{ File, Digest string }
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Roots) != 1 || len(got.Graphs) != 1 || got.Graphs[0].File != "graph.json" || got.Graphs[0].Digest != digest.FromBytes(graph).String() {
			t.Errorf("sources %s", data)
		}
		found[got.Roots[0]] = true
		// On the top step, the one the terminal names.
		ops := definitionOps(t, def)
		var terminal pb.Op
		if err := terminal.UnmarshalVT(def.Def[len(def.Def)-1]); err != nil {
			t.Fatal(err)
		}
		if locs := def.Source.Locations[terminal.Inputs[0].Digest]; locs == nil || len(locs.Locations) != 2 {
			t.Errorf("the top step's source locations are %v (%d steps)", locs, len(ops))
		}
	}
	if want := map[string]bool{f.Apps["amd64"].String(): true, f.Apps["arm"].String(): true}; !maps.Equal(found, want) {
		t.Errorf("the images' roots are %v, want %v", found, want)
	}
}

// TestAddSourcesKeepsSteps: adding the source files changes no step of a
// definition, so not the image nor its cache keys.
func TestAddSourcesKeepsSteps(t *testing.T) {
	st := llb.Scratch().File(llb.Mkfile("/a", 0o644, []byte("a")))
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pbDef := def.ToPB()
	steps := slices.Clone(pbDef.Def)
	sm := llb.NewSourceMap(nil, "app.storepack", "storepack", []byte("CLOSURE ./result\nLINK /bin -> bin\n"))
	if err := addSources(pbDef, sm, manifest2llb.Sources{}); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(pbDef.Def, steps, bytes.Equal) {
		t.Error("the steps changed")
	}
	if pbDef.Source == nil || len(pbDef.Source.Infos) != 2 || len(pbDef.Source.Locations) != 1 {
		t.Errorf("source files %+v", pbDef.Source)
	}
}

// TestReadLargeFile: a file larger than the gateway sends in one read (a
// GRAPH of a closure of 100,000 paths is about 40 MB) is read whole.
func TestReadLargeFile(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), (gatewaytest.MaxReadSize+readChunk)/16+3)
	if err := os.WriteFile(filepath.Join(dir, "graph.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := &gatewaytest.Ref{Dir: dir}
	if _, err := ref.ReadFile(context.Background(), client.ReadRequest{Filename: "graph.json"}); err == nil {
		t.Fatal("the gateway read the whole file at once: the test proves nothing")
	}
	got, err := refFiles{ref: ref}.ReadFile(context.Background(), "graph.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, want the file's %d", len(got), len(data))
	}
}

// TestTransferGroups: up to the bound, one transfer of every path; beyond,
// one per first character of the hash part, each path in exactly one, the
// same whatever the other paths are.
func TestTransferGroups(t *testing.T) {
	var paths []store.Path
	for i := range 100 {
		hash := strings.Repeat(string("0123456789abcdfghijklmnpqrsvwxyz"[i%32]), 31) + string("0123456789"[i/32])
		paths = append(paths, store.Path{Dir: "/nix/store", Hash: hash, Name: fmt.Sprintf("p%d", i)})
	}
	if groups := transferGroups(nil, 10); len(groups) != 0 {
		t.Errorf("no paths: %v", groups)
	}
	if groups := transferGroups(paths, 100); len(groups) != 1 || groups[0].prefix != "" || !slices.Equal(groups[0].paths, paths) {
		t.Errorf("within the bound: %d transfers", len(groups))
	}
	groups := transferGroups(paths, 99)
	if len(groups) != 32 {
		t.Fatalf("beyond the bound: %d transfers, want 32", len(groups))
	}
	seen := 0
	for _, g := range groups {
		for _, p := range g.paths {
			if !strings.HasPrefix(p.Hash, g.prefix) || len(g.prefix) != 1 {
				t.Errorf("%s in the transfer of hashes %q", p, g.prefix)
			}
			seen++
		}
	}
	if seen != len(paths) {
		t.Errorf("%d paths in the transfers, want %d", seen, len(paths))
	}
	// Without half the paths, every other path stays in its transfer.
	for _, g := range transferGroups(paths[50:], 49) {
		for _, p := range g.paths {
			if p.Hash[:1] != g.prefix {
				t.Errorf("%s moved to the transfer of hashes %q", p, g.prefix)
			}
		}
	}
}
