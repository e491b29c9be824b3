package layering

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
)

// node describes a graph node for the tests: its name, what it references
// (by name), and its size. Names double as identities, so a test graph
// cannot hold two paths of the same name unless they set hashSeed.
type node struct {
	name     string
	refs     []string
	size     uint64
	hashSeed string // optional, to give two paths the same name
}

// pathFor makes a store path with a fake but valid hash derived from seed.
func pathFor(name, seed string) store.Path {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	sum := sha256.Sum256([]byte(seed + "/" + name))
	hash := make([]byte, 32)
	for i := range hash {
		hash[i] = alphabet[sum[i]%32]
	}
	return store.Path{Dir: "/nix/store", Hash: string(hash), Name: name}
}

func (n node) path() store.Path { return pathFor(n.name, n.hashSeed) }

// graphOf builds a graph from nodes; a reference names a node by name.
func graphOf(t testing.TB, nodes []node) *store.Graph {
	t.Helper()
	byName := make(map[string]store.Path)
	for _, n := range nodes {
		byName[n.name] = n.path()
	}
	infos := make([]store.Info, 0, len(nodes))
	for _, n := range nodes {
		info := store.Info{Path: n.path(), NarSize: n.size}
		for _, ref := range n.refs {
			p, ok := byName[ref]
			if !ok {
				t.Fatalf("test graph: %s references unknown %s", n.name, ref)
			}
			info.References = append(info.References, p)
		}
		infos = append(infos, info)
	}
	g, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// helloClosure is a real-looking closure; its depths below the root:
// hello 0, glibc 1, libidn2 2, xgcc-libgcc 2, libunistring 3.
func helloClosure(t testing.TB) *store.Graph {
	return graphOf(t, []node{
		{name: "hello-2.12.1", refs: []string{"glibc-2.39-52", "hello-2.12.1"}, size: 100},
		{name: "glibc-2.39-52", refs: []string{"glibc-2.39-52", "libidn2-2.3.7", "xgcc-13.3.0-libgcc"}, size: 2000},
		{name: "libidn2-2.3.7", refs: []string{"libunistring-1.2", "libidn2-2.3.7"}, size: 30},
		{name: "libunistring-1.2", refs: []string{"libunistring-1.2"}, size: 400},
		{name: "xgcc-13.3.0-libgcc", size: 5},
	})
}

// summary renders a plan compactly: "key[name,name]size | …".
func summary(plan Plan) string {
	var parts []string
	for _, layer := range plan.Layers {
		var names []string
		for _, p := range layer.Paths {
			names = append(names, p.Name)
		}
		parts = append(parts, fmt.Sprintf("%s[%s]%d", layer.Key, strings.Join(names, ","), layer.Size))
	}
	return strings.Join(parts, " | ")
}

func TestPerPath(t *testing.T) {
	tests := []struct {
		name      string
		graph     *store.Graph
		maxLayers int
		want      string
	}{
		{
			name: "one layer per path, deepest first", graph: helloClosure(t), maxLayers: 100,
			want: "libunistring-1.2[libunistring-1.2]400 | libidn2-2.3.7[libidn2-2.3.7]30 | " +
				"xgcc-13.3.0-libgcc[xgcc-13.3.0-libgcc]5 | glibc-2.39-52[glibc-2.39-52]2000 | hello-2.12.1[hello-2.12.1]100",
		},
		{
			name: "budget exactly the number of paths", graph: helloClosure(t), maxLayers: 5,
			want: "libunistring-1.2[libunistring-1.2]400 | libidn2-2.3.7[libidn2-2.3.7]30 | " +
				"xgcc-13.3.0-libgcc[xgcc-13.3.0-libgcc]5 | glibc-2.39-52[glibc-2.39-52]2000 | hello-2.12.1[hello-2.12.1]100",
		},
		{
			// 5 paths, budget 4: three own layers, and the two paths
			// closest to the root share the catch-all. Paths in a layer
			// are sorted by store path (hash first), not by name.
			name: "one path more than the budget", graph: helloClosure(t), maxLayers: 4,
			want: "libunistring-1.2[libunistring-1.2]400 | libidn2-2.3.7[libidn2-2.3.7]30 | " +
				"xgcc-13.3.0-libgcc[xgcc-13.3.0-libgcc]5 | rest" + sortedNames("glibc-2.39-52", "hello-2.12.1") + "2100",
		},
		{
			name: "budget 2", graph: helloClosure(t), maxLayers: 2,
			want: "libunistring-1.2[libunistring-1.2]400 | rest" +
				sortedNames("libidn2-2.3.7", "xgcc-13.3.0-libgcc", "glibc-2.39-52", "hello-2.12.1") + "2135",
		},
		{
			name: "budget 1 is a single layer", graph: helloClosure(t), maxLayers: 1,
			want: "rest" + sortedNames("libunistring-1.2", "libidn2-2.3.7", "xgcc-13.3.0-libgcc", "glibc-2.39-52", "hello-2.12.1") + "2535",
		},
		{
			name: "budget 1 with one path", graph: graphOf(t, []node{{name: "a", size: 1}}), maxLayers: 1,
			want: "a[a]1",
		},
		{
			name: "empty graph", graph: graphOf(t, nil), maxLayers: 3,
			want: "",
		},
		{
			// app uses python (which uses glibc) and its own data; the
			// depth puts glibc (2) below python and the data (1), then
			// app (0); equal depths go by name.
			name: "depth decides, then name",
			graph: graphOf(t, []node{
				{name: "app", refs: []string{"python3", "app-data"}},
				{name: "python3", refs: []string{"glibc"}},
				{name: "app-data"},
				{name: "glibc"},
			}),
			maxLayers: 10,
			want:      "glibc[glibc]0 | app-data[app-data]0 | python3[python3]0 | app[app]0",
		},
		{
			// Depth is the longest chain: zlib is reached directly from
			// app (depth 1) and through libpng (depth 2); it must sit
			// below libpng.
			name: "longest chain wins",
			graph: graphOf(t, []node{
				{name: "app", refs: []string{"zlib", "libpng"}},
				{name: "libpng", refs: []string{"zlib"}},
				{name: "zlib"},
			}),
			maxLayers: 10,
			want:      "zlib[zlib]0 | libpng[libpng]0 | app[app]0",
		},
		{
			name: "several roots",
			graph: graphOf(t, []node{
				{name: "b-root", refs: []string{"shared"}},
				{name: "a-root", refs: []string{"shared"}},
				{name: "shared"},
			}),
			maxLayers: 10,
			want:      "shared[shared]0 | a-root[a-root]0 | b-root[b-root]0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := NewPlan(tc.graph, Options{Strategy: "per-path", MaxLayers: tc.maxLayers})
			if err != nil {
				t.Fatal(err)
			}
			if plan.Strategy != "per-path" {
				t.Errorf("Strategy = %q", plan.Strategy)
			}
			if got := summary(plan); got != tc.want {
				t.Errorf("plan\n  %s\nwant\n  %s", got, tc.want)
			}
			checkDependenciesBelow(t, tc.graph, plan)
		})
	}
}

// sortedNames renders names as summary does for one layer: in the order of
// their store paths.
func sortedNames(names ...string) string {
	paths := make([]store.Path, len(names))
	for i, name := range names {
		paths[i] = pathFor(name, "")
	}
	slices.SortFunc(paths, store.Path.Compare)
	for i, p := range paths {
		names[i] = p.Name
	}
	return "[" + strings.Join(names, ",") + "]"
}

// checkDependenciesBelow checks per-path's ordering promise: everything a
// path references is in its own layer or one below.
func checkDependenciesBelow(t *testing.T, g *store.Graph, plan Plan) {
	t.Helper()
	layerOf := make(map[store.Path]int)
	for i, layer := range plan.Layers {
		for _, p := range layer.Paths {
			layerOf[p] = i
		}
	}
	for _, p := range g.Paths() {
		info, _ := g.Info(p)
		for _, ref := range info.References {
			if layerOf[ref] > layerOf[p] {
				t.Errorf("%s (layer %d) references %s in layer %d above it", p.Name, layerOf[p], ref.Name, layerOf[ref])
			}
		}
	}
}

func TestSingle(t *testing.T) {
	g := helloClosure(t)
	plan, err := NewPlan(g, Options{Strategy: "single", MaxLayers: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Layers) != 1 || plan.Layers[0].Key != "closure" || plan.Layers[0].Size != 2535 ||
		!slices.Equal(plan.Layers[0].Paths, g.Paths()) {
		t.Errorf("single plan = %s", summary(plan))
	}
	empty, err := NewPlan(graphOf(t, nil), Options{Strategy: "single", MaxLayers: 1})
	if err != nil || len(empty.Layers) != 0 {
		t.Errorf("single plan of an empty graph = %s, %v; want no layers", summary(empty), err)
	}
}

func TestKeys(t *testing.T) {
	// Two paths named "source": both keyed by base name, the others by name
	// (per-path's keys; the other strategies share the scheme).
	src1, src2 := pathFor("source", "1"), pathFor("source", "2")
	g, err := store.NewGraph([]store.Info{
		{Path: pathFor("app", ""), References: []store.Path{src1, src2}},
		{Path: src1},
		{Path: src2},
	})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(g, Options{Strategy: "per-path", MaxLayers: 10})
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{src1.Base(), src2.Base(), "app"}
	if src2.Compare(src1) < 0 {
		wantKeys[0], wantKeys[1] = wantKeys[1], wantKeys[0]
	}
	if got := layerKeysOf(plan); !slices.Equal(got, wantKeys) {
		t.Errorf("keys = %v, want %v", got, wantKeys)
	}

	// A path named "rest" is keyed by base name only when there is a
	// catch-all layer to clash with.
	rest := pathFor("rest", "")
	restGraph := graphOf(t, []node{{name: "rest"}, {name: "a", refs: []string{"rest"}}, {name: "b"}})
	plan, err = NewPlan(restGraph, Options{Strategy: "per-path", MaxLayers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := layerKeysOf(plan); !slices.Equal(got, []string{rest.Base(), "rest"}) {
		t.Errorf("keys with catch-all = %v, want [%s rest]", got, rest.Base())
	}
	plan, err = NewPlan(restGraph, Options{Strategy: "per-path", MaxLayers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := layerKeysOf(plan); !slices.Equal(got, []string{"rest", "a", "b"}) {
		t.Errorf("keys without catch-all = %v, want [rest a b]", got)
	}

	// Two paths named x are keyed by base name; a third path named like one
	// of those base names must then move to its own base name too.
	x1, x2 := pathFor("x", "1"), pathFor("x", "2")
	tricky := pathFor(x1.Base(), "")
	g, err = store.NewGraph([]store.Info{{Path: x1}, {Path: x2}, {Path: tricky}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err = NewPlan(g, Options{Strategy: "per-path", MaxLayers: 3}) // NewPlan checks that keys are unique
	if err != nil {
		t.Fatal(err)
	}
	if got := layerKeysOf(plan); !slices.Contains(got, tricky.Base()) || !slices.Contains(got, x1.Base()) {
		t.Errorf("keys = %v, want base names only", got)
	}
}

func layerKeysOf(plan Plan) []string {
	var keys []string
	for _, layer := range plan.Layers {
		keys = append(keys, layer.Key)
	}
	return keys
}

func TestCycle(t *testing.T) {
	g := graphOf(t, []node{
		{name: "root", refs: []string{"a"}},
		{name: "a", refs: []string{"b", "a"}},
		{name: "b", refs: []string{"c"}},
		{name: "c", refs: []string{"a", "leaf"}},
		{name: "leaf"},
	})
	_, err := NewPlan(g, Options{Strategy: "per-path", MaxLayers: 10})
	if err == nil {
		t.Fatal("NewPlan accepted a reference cycle")
	}
	for _, name := range []string{"a", "b", "c"} {
		if !strings.Contains(err.Error(), pathFor(name, "").String()) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	for _, name := range []string{"root", "leaf"} {
		if strings.Contains(err.Error(), pathFor(name, "").String()) {
			t.Errorf("error %q names %s, which is not in the cycle", err, name)
		}
	}
	a, b, c := pathFor("a", ""), pathFor("b", ""), pathFor("c", "")
	// The cycle is printed in reference direction, starting where the walk
	// found it closed.
	valid := []string{
		fmt.Sprintf("%s -> %s -> %s -> %s", a, b, c, a),
		fmt.Sprintf("%s -> %s -> %s -> %s", b, c, a, b),
		fmt.Sprintf("%s -> %s -> %s -> %s", c, a, b, c),
	}
	if !slices.ContainsFunc(valid, func(s string) bool { return strings.HasSuffix(err.Error(), s) }) {
		t.Errorf("error %q does not show the cycle in reference order", err)
	}

	// A self-reference alone is not a cycle.
	if _, err := NewPlan(graphOf(t, []node{{name: "a", refs: []string{"a"}}}), Options{MaxLayers: 2}); err != nil {
		t.Errorf("self-reference: %v", err)
	}
	// single does not care about order.
	if _, err := NewPlan(g, Options{Strategy: "single", MaxLayers: 1}); err != nil {
		t.Errorf("single with a cycle: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	g := helloClosure(t)
	tests := []struct {
		name    string
		graph   *store.Graph
		opt     Options
		wantErr string
	}{
		{"unknown strategy", g, Options{Strategy: "fancy", MaxLayers: 3}, `unknown layering strategy "fancy" (known: auto, per-path, popularity, single, storepack)`},
		{"zero budget", g, Options{MaxLayers: 0}, "layer budget 0 is too small"},
		{"negative budget", g, Options{Strategy: "single", MaxLayers: -1}, "layer budget -1 is too small"},
		{"no graph", nil, Options{MaxLayers: 3}, "no graph"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPlan(tc.graph, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewPlan error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestStrategies(t *testing.T) {
	if got := Strategies(); !slices.Equal(got, []string{"auto", "per-path", "popularity", "single", "storepack"}) {
		t.Errorf("Strategies() = %v", got)
	}
	plan, err := NewPlan(helloClosure(t), Options{MaxLayers: 3})
	if err != nil || plan.Strategy != DefaultStrategy || DefaultStrategy != "storepack" {
		t.Errorf("default strategy: plan.Strategy = %q, %v", plan.Strategy, err)
	}
}

func TestSizeSaturates(t *testing.T) {
	huge := ^uint64(0) - 1
	g := graphOf(t, []node{{name: "a", size: huge}, {name: "b", size: huge}})
	plan, err := NewPlan(g, Options{Strategy: "single", MaxLayers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Layers[0].Size != ^uint64(0) {
		t.Errorf("size = %d, want the maximum", plan.Layers[0].Size)
	}
}

func TestPlanJSON(t *testing.T) {
	g := graphOf(t, []node{{name: "app", refs: []string{"lib"}, size: 7}, {name: "lib", size: 3}})
	plan, err := NewPlan(g, Options{Strategy: "per-path", MaxLayers: 1})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	paths := g.Paths()
	want := fmt.Sprintf(`{"strategy":"per-path","layers":[{"key":"rest","paths":["%s","%s"],"size":10}]}`, paths[0], paths[1])
	if string(data) != want {
		t.Errorf("JSON\n  %s\nwant\n  %s", data, want)
	}
	var back Plan
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, plan) {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, plan)
	}

	empty, err := NewPlan(graphOf(t, nil), Options{Strategy: "per-path", MaxLayers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := json.Marshal(empty); string(data) != `{"strategy":"per-path","layers":[]}` {
		t.Errorf("empty plan JSON = %s", data)
	}
	if err := json.Unmarshal([]byte(`{"layers":[{"paths":["/nix/store/../etc"]}]}`), &back); err == nil {
		t.Errorf("Unmarshal accepted an invalid store path")
	}
}

// randomDAG builds a random closure: node i references only nodes with a
// larger index, so there is no cycle; names repeat to exercise tie-breaks
// and key clashes.
func randomDAG(rng *rand.Rand, n int) []store.Info {
	names := []string{"source", "lib", "glibc-2.39", "perl-5.38", "python3-3.12", "zlib-1.3"}
	paths := make([]store.Path, n)
	for i := range paths {
		paths[i] = pathFor(names[rng.IntN(len(names))], fmt.Sprint(i))
	}
	infos := make([]store.Info, n)
	for i := range infos {
		infos[i] = store.Info{Path: paths[i], NarSize: rng.Uint64N(1 << 30)}
		for j := i + 1; j < n; j++ {
			if rng.IntN(8) == 0 {
				infos[i].References = append(infos[i].References, paths[j])
			}
		}
		if rng.IntN(2) == 0 {
			infos[i].References = append(infos[i].References, paths[i])
		}
	}
	return infos
}

func TestDeterministicUnderShuffle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	infos := randomDAG(rng, 120)
	g, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	for _, strategy := range Strategies() {
		for _, maxLayers := range []int{1, 2, 7, 119, 120, 121, 500} {
			opt := Options{Strategy: strategy, MaxLayers: maxLayers}
			want, err := NewPlan(g, opt)
			if err != nil {
				t.Fatal(err)
			}
			if strategy == "per-path" {
				checkDependenciesBelow(t, g, want)
				if wantLen := min(maxLayers, g.Len()); len(want.Layers) != wantLen {
					t.Errorf("per-path with budget %d: %d layers, want %d", maxLayers, len(want.Layers), wantLen)
				}
			}
			for round := range 5 {
				shuffled := slices.Clone(infos)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				for i := range shuffled {
					refs := slices.Clone(shuffled[i].References)
					rng.Shuffle(len(refs), func(a, b int) { refs[a], refs[b] = refs[b], refs[a] })
					shuffled[i].References = refs
				}
				g2, err := store.NewGraph(shuffled)
				if err != nil {
					t.Fatal(err)
				}
				got, err := NewPlan(g2, opt)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s, budget %d, round %d: plan differs after shuffling the input", strategy, maxLayers, round)
				}
			}
		}
	}
}

func TestHashClash(t *testing.T) {
	// Two paths with one hash part: Nix never makes them, a crafted
	// graph file can.
	a := pathFor("a", "")
	b := store.Path{Dir: a.Dir, Hash: a.Hash, Name: "b"}
	g, err := store.NewGraph([]store.Info{{Path: a, References: []store.Path{b}, NarSize: 1}, {Path: b, NarSize: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, strategy := range Strategies() {
		for _, maxLayers := range []int{1, 2} {
			// NewPlan checks that each path is in exactly one layer.
			if _, err := NewPlan(g, Options{Strategy: strategy, MaxLayers: maxLayers, Previous: &Plan{Layers: []Layer{{Paths: []store.Path{b}}}}}); err != nil {
				t.Errorf("%s, budget %d: %v", strategy, maxLayers, err)
			}
		}
	}
}
