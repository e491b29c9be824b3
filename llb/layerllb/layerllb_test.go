package layerllb

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

func mustPath(t testing.TB, s string) store.Path {
	t.Helper()
	p, err := store.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testPlan(t testing.TB) layering.Plan {
	libc := mustPath(t, "/nix/store/0000000000000000000000000000000a-glibc-2.39")
	lib := mustPath(t, "/nix/store/0000000000000000000000000000000b-zlib-1.3")
	app := mustPath(t, "/nix/store/0000000000000000000000000000000c-hello-1.0")
	return layering.Plan{Strategy: "per-path", Layers: []layering.Layer{
		{Key: "glibc-2.39", Paths: []store.Path{libc}},
		{Key: "zlib-1.3", Paths: []store.Path{lib}},
		{Key: "hello-1.0", Paths: []store.Path{app}},
	}}
}

func TestMethodFor(t *testing.T) {
	if m := MethodFor(llbtest.AllCaps()); m != Merge {
		t.Errorf("with MergeOp: %s", m)
	}
	if m := MethodFor(llbtest.CapsWithout(pb.CapMergeOp)); m != Chain {
		t.Errorf("without MergeOp: %s", m)
	}
}

func TestStoreLayers(t *testing.T) {
	epoch := time.Unix(42, 0)
	plan := testPlan(t)
	exact := make(Source, len(plan.Layers))
	for i, l := range plan.Layers {
		exact[i] = []Part{{State: llb.Local("store", llb.IncludePatterns([]string{"nix/store/" + l.Paths[0].Base()})), Dir: "/nix/store", Paths: l.Paths, Exact: true}}
	}
	only := make(Source, len(plan.Layers))
	for i, l := range plan.Layers {
		only[i] = []Part{{State: llb.Local("store", llb.IncludePatterns([]string{l.Paths[0].Hash + "-*"})), Dir: "/", Paths: l.Paths, Only: true}}
	}
	for _, tc := range []struct {
		name   string
		src    Source
		method Method
	}{
		{"shared, merge", SharedSource(llb.Local("store"), "/", plan), Merge},
		{"shared, chain", SharedSource(llb.Local("store"), "/", plan), Chain},
		{"exact, merge", exact, Merge},
		{"exact, chain", exact, Chain},
		{"only, merge", only, Merge},
		{"only, chain", only, Chain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := StoreLayers(llb.Scratch(), plan, tc.src, Options{StoreDir: "/nix/store", Epoch: epoch, Method: tc.method})
			if err != nil {
				t.Fatal(err)
			}
			o := llbtest.Marshal(t, st, llbtest.AllCaps())
			exact, whole := tc.src[0][0].Exact, tc.src[0][0].Only
			// One FileOp per layer, plus the store skeleton's unless
			// every part is exact.
			wantFileOps, perLayer := len(plan.Layers)+1, 2
			if exact {
				wantFileOps, perLayer = len(plan.Layers), 1
			}
			if got := len(o.File); got != wantFileOps {
				t.Errorf("%d FileOps, want %d", got, wantFileOps)
			}
			merges := o.Merge
			if tc.method == Merge && (len(merges) != 1 || len(merges[0].Inputs) != len(plan.Layers)) {
				t.Errorf("want one MergeOp of %d layers, have %v", len(plan.Layers), merges)
			}
			if tc.method == Chain && len(merges) != 0 {
				t.Errorf("Chain has a MergeOp")
			}
			copies := o.Copies()
			// Each layer: the copy of its one store path, then the
			// skeleton; or the copy of its exact transfer's root alone.
			if len(copies) != perLayer*len(plan.Layers) {
				t.Fatalf("%d copies, want %d", len(copies), perLayer*len(plan.Layers))
			}
			for _, c := range copies {
				if c.Timestamp != epoch.UnixNano() {
					t.Errorf("copy %s → %s has timestamp %d", c.Src, c.Dest, c.Timestamp)
				}
				if c.Owner == nil || c.Owner.User.GetByID() != 0 || c.Owner.Group.GetByID() != 0 {
					t.Errorf("copy %s → %s not owned by 0:0: %v", c.Src, c.Dest, c.Owner)
				}
			}
			for i, l := range plan.Layers {
				c := copies[perLayer*i]
				switch {
				case exact && (c.Src != "/" || c.Dest != "/" || !c.DirCopyContents):
					t.Errorf("layer %d copies %+v, want its transfer's root's contents onto /", i, c)
				case whole && (c.Src != "/" || c.Dest != "/nix/store" || !c.DirCopyContents || !c.CreateDestPath):
					t.Errorf("layer %d copies %+v, want its transfer's contents into /nix/store", i, c)
				case !exact && !whole && (c.Src != "/"+l.Paths[0].Base() || c.Dest != l.Paths[0].String()):
					t.Errorf("layer %d copies %s → %s", i, c.Src, c.Dest)
				}
				if exact {
					continue
				}
				if s := copies[2*i+1]; !s.DirCopyContents || s.Src != "/" || s.Dest != "/" {
					t.Errorf("layer %d does not end with the skeleton copy: %+v", i, s)
				}
			}
		})
	}
}

// TestSplitSource: each layer copies each path from the first part that
// holds it, its parts in the order given; a path no part holds is an error.
func TestSplitSource(t *testing.T) {
	plan := testPlan(t)
	all := plan.Paths()
	first, rest := all[:1], all[1:]
	parts := []Part{
		{State: llb.Local("roots"), Dir: "/nix/store", Paths: first},
		{State: llb.Local("closure"), Dir: "/", Paths: all},
	}
	src, err := SplitSource(plan, parts)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]store.Path
	var dirs []string
	for _, layer := range src {
		for _, part := range layer {
			got = append(got, part.Paths)
			dirs = append(dirs, part.Dir)
		}
	}
	var want [][]store.Path
	var wantDirs []string
	for _, l := range plan.Layers {
		var fromFirst, fromRest []store.Path
		for _, p := range l.Paths {
			if slices.Contains(first, p) {
				fromFirst = append(fromFirst, p)
			} else {
				fromRest = append(fromRest, p)
			}
		}
		if len(fromFirst) > 0 {
			want, wantDirs = append(want, fromFirst), append(wantDirs, "/nix/store")
		}
		if len(fromRest) > 0 {
			want, wantDirs = append(want, fromRest), append(wantDirs, "/")
		}
	}
	if !reflect.DeepEqual(got, want) || !slices.Equal(dirs, wantDirs) {
		t.Errorf("parts %v in %v, want %v in %v", got, dirs, want, wantDirs)
	}
	if _, err := SplitSource(plan, []Part{{State: llb.Local("closure"), Dir: "/", Paths: rest}}); err == nil || !strings.Contains(err.Error(), first[0].String()) {
		t.Errorf("a path no part holds: %v", err)
	}
	// A part of one layer's paths alone is still the layer's only; a
	// part of two layers' is neither's.
	src, err = SplitSource(plan, []Part{
		{State: llb.Local("first"), Dir: "/", Paths: first, Only: true},
		{State: llb.Local("rest"), Dir: "/", Paths: rest, Only: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, layer := range src {
		if want := i == 0; len(layer) != 1 || layer[0].Only != want {
			t.Errorf("layer %d: parts %+v, want one, Only %v", i, layer, want)
		}
	}
}

// TestStoreLayersParts: a layer from two parts, one shared (the roots'
// transfer) and one exact, copies the shared part's paths one by one and
// the exact part's root once, and ends with the skeleton.
func TestStoreLayersParts(t *testing.T) {
	plan := testPlan(t)
	lib, app := plan.Layers[1].Paths[0], plan.Layers[2].Paths[0]
	plan.Layers = []layering.Layer{{Key: "hello-1.0", Paths: []store.Path{lib, app}}}
	src := Source{{
		{State: llb.Local("roots"), Dir: "/nix/store", Paths: []store.Path{app}},
		{State: llb.Local("layer"), Dir: "/nix/store", Paths: []store.Path{lib}, Exact: true},
	}}
	st, err := StoreLayers(llb.Scratch(), plan, src, Options{StoreDir: "/nix/store", Epoch: time.Unix(1, 0), Method: Chain})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range llbtest.Marshal(t, st, llbtest.AllCaps()).Copies() {
		got = append(got, c.Src+" → "+c.Dest)
	}
	want := []string{app.String() + " → " + app.String(), "/ → /", "/ → /"}
	if !slices.Equal(got, want) {
		t.Errorf("copies %q, want %q", got, want)
	}
	if _, err := StoreLayers(llb.Scratch(), testPlan(t), src, Options{StoreDir: "/nix/store", Method: Chain}); err == nil {
		t.Error("a source of 1 layer for a plan of 3 is accepted")
	}
}

func TestCustomisationFileOps(t *testing.T) {
	c := Customisation{
		Dirs:  []Dir{{Path: "/var/cache", Mode: 0o700}},
		Links: []Link{{Path: "/usr/bin", Target: "/nix/store/0000000000000000000000000000000c-hello-1.0/bin"}},
	}
	st, err := CustomisationLayer(context.Background(), llb.Scratch(), c, nil, nil, llbtest.AllCaps(), nil, nil, Options{Epoch: time.Unix(1, 0), Method: Merge})
	if err != nil {
		t.Fatal(err)
	}
	o := llbtest.Marshal(t, st, llbtest.AllCaps())
	if len(o.Exec) != 0 {
		t.Errorf("a capable builder runs a helper")
	}
	if want := []string{"/usr/bin -> " + c.Links[0].Target}; !slices.Equal(o.Symlinks(), want) {
		t.Errorf("symlink actions %v, want %v", o.Symlinks(), want)
	}
}

// fakeStager marks the stage it makes, so a test can tell it was used.
type fakeStager struct{ staged *Customisation }

func (f fakeStager) Stage(c Customisation) (llb.State, error) {
	*f.staged = c
	return llb.Image("stager:latest"), nil
}

func TestCustomisationStager(t *testing.T) {
	for name, tc := range map[string]struct {
		c    Customisation
		caps apicaps.CapSet
	}{
		"no symlink FileOp": {Customisation{Links: []Link{{Path: "/bin", Target: "x/bin"}}}, llbtest.CapsWithout(pb.CapFileSymlinkCreate, pb.CapMergeOp)},
		"sticky dir":        {Customisation{Dirs: []Dir{{Path: "/tmp", Mode: 0o1777}}}, llbtest.AllCaps()},
	} {
		t.Run(name, func(t *testing.T) {
			var staged Customisation
			st, err := CustomisationLayer(context.Background(), llb.Scratch(), tc.c, nil, nil, tc.caps, fakeStager{&staged}, nil, Options{Epoch: time.Unix(1, 0), Method: Chain})
			if err != nil {
				t.Fatal(err)
			}
			if len(staged.Dirs) != len(tc.c.Dirs) || len(staged.Links) != len(tc.c.Links) {
				t.Errorf("staged %+v, want %+v", staged, tc.c)
			}
			var fromStager bool
			for _, src := range llbtest.Marshal(t, st, tc.caps).Source {
				fromStager = fromStager || strings.Contains(src.Identifier, "stager:latest")
			}
			if !fromStager {
				t.Errorf("the layer does not copy from the stager's state")
			}
		})
	}
	_, err := CustomisationLayer(context.Background(), llb.Scratch(), Customisation{Links: []Link{{Path: "/bin", Target: "bin"}}}, nil, nil, llbtest.CapsWithout(pb.CapFileSymlinkCreate), nil, nil, Options{Method: Chain})
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("no stager on an old builder: err = %v", err)
	}
}

func TestImage(t *testing.T) {
	plan := testPlan(t)
	epoch := time.Unix(1700000000, 0)
	img, err := Image(plan, ImageOptions{
		Platform:      ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"},
		Epoch:         epoch,
		Customisation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if img.Architecture != "arm" || img.Variant != "v7" || img.OS != "linux" {
		t.Errorf("platform %+v", img.Platform)
	}
	if !img.Created.Equal(epoch) || len(img.History) != len(plan.Layers)+1 {
		t.Fatalf("created %v, %d history entries", img.Created, len(img.History))
	}
	for i, h := range img.History {
		if !h.Created.Equal(epoch) || h.EmptyLayer {
			t.Errorf("history %d: %+v", i, h)
		}
	}
	if !strings.Contains(img.History[1].Comment, plan.Layers[1].Paths[0].String()) {
		t.Errorf("history comment %q does not name the store path", img.History[1].Comment)
	}
	var back layering.Plan
	if err := json.Unmarshal([]byte(img.Config.Labels[PlanLabel]), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Layers) != 3 || back.Layers[2].Paths[0] != plan.Layers[2].Paths[0] {
		t.Errorf("plan label round trip: %+v", back)
	}
}

// TestLayerComment: a layer's history comment names its store paths, all
// of them while they fit, else as many as fit and how many more the plan
// label names, within maxCommentBytes.
func TestLayerComment(t *testing.T) {
	a, b := mustPath(t, "/nix/store/"+strings.Repeat("a", 32)+"-a"), mustPath(t, "/nix/store/"+strings.Repeat("b", 32)+"-b")
	if got, want := layerComment(layering.Layer{Paths: []store.Path{a, b}}), "store paths: "+a.String()+" "+b.String(); got != want {
		t.Errorf("comment %q, want %q", got, want)
	}
	guix := mustPath(t, "/gnu/store/"+strings.Repeat("g", 32)+"-hello-2.12")
	if got, want := layerComment(layering.Layer{Paths: []store.Path{guix}}), "store paths: "+guix.String(); got != want {
		t.Errorf("comment of a Guix layer %q, want %q", got, want)
	}
	var many []store.Path
	for i := range 1000 {
		many = append(many, mustPath(t, fmt.Sprintf("/nix/store/%s-pkg%04d", strings.Repeat("c", 32), i)))
	}
	got := layerComment(layering.Layer{Paths: many})
	if len(got) > maxCommentBytes || !strings.HasPrefix(got, "store paths: "+many[0].String()+" ") {
		t.Fatalf("comment of %d bytes %q..., want at most %d naming the first path", len(got), got[:min(len(got), 80)], maxCommentBytes)
	}
	named := strings.Count(got, "/nix/store/")
	if want := fmt.Sprintf(" (+%d more in the %s label)", len(many)-named, PlanLabel); !strings.HasSuffix(got, want) {
		t.Errorf("comment %q does not end %q", got, want)
	}
}
