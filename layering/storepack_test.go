package layering

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/layering/internal/corpus"
	"github.com/storepack/storepack/store"
)

// pythonApp is an application with two small private modules on top of a
// big interpreter library and libc.
func pythonApp(t testing.TB, appSeed string) *store.Graph {
	return graphOf(t, []node{
		{name: "app-1.0", refs: []string{"mod1-1.0", "mod2-1.0", "libpython-3.12"}, size: 1 << 20, hashSeed: appSeed},
		{name: "mod1-1.0", refs: []string{"libpython-3.12"}, size: 10 << 10},
		{name: "mod2-1.0", refs: []string{"libpython-3.12"}, size: 10 << 10},
		{name: "libpython-3.12", refs: []string{"glibc-2.39"}, size: 50 << 20},
		{name: "glibc-2.39", size: 30 << 20},
	})
}

func TestStorepack(t *testing.T) {
	g := pythonApp(t, "")
	tests := []struct {
		maxLayers int
		want      string
	}{
		// Room for every path: one layer each, the lower bound on what
		// any plan pushes. Most stable first: glibc's closure is 1 path,
		// libpython's 2, the modules' 3; the application counts as more.
		{maxLayers: 5, want: "glibc-2.39[glibc-2.39]31457280 | libpython-3.12[libpython-3.12]52428800 | " +
			"mod1-1.0[mod1-1.0]10240 | mod2-1.0[mod2-1.0]10240 | app-1.0[app-1.0]1048576"},
		// The cheapest joins put the small modules with the application
		// (they change with it whenever libpython or glibc does); the big
		// libraries keep their own layers.
		{maxLayers: 3, want: "glibc-2.39[glibc-2.39]31457280 | libpython-3.12[libpython-3.12]52428800 | " +
			"app-1.0" + sortedNames("app-1.0", "mod1-1.0", "mod2-1.0") + "1069056"},
		// Then libpython joins glibc, which re-ships glibc with every
		// libpython release, rather than libpython joining the application,
		// which would re-ship 50 MiB with every application release.
		{maxLayers: 2, want: "libpython-3.12" + sortedNames("libpython-3.12", "glibc-2.39") + "83886080 | " +
			"app-1.0" + sortedNames("app-1.0", "mod1-1.0", "mod2-1.0") + "1069056"},
		{maxLayers: 1, want: "libpython-3.12" + sortedNames("app-1.0", "mod1-1.0", "mod2-1.0", "libpython-3.12", "glibc-2.39") + "84955136"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("budget ", tc.maxLayers), func(t *testing.T) {
			plan, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: tc.maxLayers})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(plan); got != tc.want {
				t.Errorf("plan\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func TestStorepackKeepsBigPathsOutOfMarginalJoins(t *testing.T) {
	// One join too many paths. Joining libbig with base, which only it
	// uses, wastes the least from then on (base's half MiB with each
	// libbig release), but a plan one path away from the budget makes
	// or undoes its last join whenever a dependency comes or goes, and
	// each time that join would ship libbig's 100 MiB again. Joining the
	// small libraries y and x risks 2 MiB.
	g := graphOf(t, []node{
		{name: "app-1.0", refs: []string{"y-1.0", "libbig-1.0"}, size: 1 << 20},
		{name: "y-1.0", refs: []string{"x-1.0"}, size: 1 << 20},
		{name: "x-1.0", size: 1 << 20},
		{name: "libbig-1.0", refs: []string{"base-1.0"}, size: 100 << 20},
		{name: "base-1.0", size: 512 << 10},
	})
	plan, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := "base-1.0[base-1.0]524288 | libbig-1.0[libbig-1.0]104857600 | x-1.0" + sortedNames("x-1.0", "y-1.0") + "2097152 | app-1.0[app-1.0]1048576"
	if got := summary(plan); got != want {
		t.Errorf("plan\n  %s\nwant\n  %s", got, want)
	}
}

func TestStorepackKeepsPreviousLayers(t *testing.T) {
	first, err := NewPlan(pythonApp(t, "release 1"), Options{Strategy: "storepack", MaxLayers: 3})
	if err != nil {
		t.Fatal(err)
	}
	// A new application build: its path changes, the rest stays.
	second := pythonApp(t, "release 2")
	plan, err := NewPlan(second, Options{Strategy: "storepack", MaxLayers: 3, Previous: &first})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plan.Layers[:2], first.Layers[:2]) {
		t.Errorf("library layers changed:\n  %s\nwas\n  %s", summary(plan), summary(first))
	}

	// The previous layout only names paths: the same plan as if the
	// application layer had never been there.
	withoutApp := first
	withoutApp.Layers = first.Layers[:2]
	again, err := NewPlan(second, Options{Strategy: "storepack", MaxLayers: 3, Previous: &withoutApp})
	if err != nil || !reflect.DeepEqual(again, plan) {
		t.Errorf("plan with the whole layers only = %s, %v; want %s", summary(again), err, summary(plan))
	}
}

func TestStorepackGivesUpPreviousLayersForTheBudget(t *testing.T) {
	g := pythonApp(t, "")
	previous, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: 5})
	if err != nil {
		t.Fatal(err)
	}
	// Five whole layers, a budget of three: the two cheapest joins are
	// those of the small modules, which cost their own few bytes to push
	// again, and the big libraries keep their layers.
	plan, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: 3, Previous: &previous})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(layerKeysOf(plan), []string{"glibc-2.39", "libpython-3.12", "app-1.0"}) || !reflect.DeepEqual(plan.Layers[:2], previous.Layers[:2]) {
		t.Errorf("plan\n  %s\nfrom previous\n  %s", summary(plan), summary(previous))
	}
}

func TestStorepackGivesUpACostlyPreviousLayer(t *testing.T) {
	g := pythonApp(t, "")
	previous, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: 1})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Keeping the one previous layer pushes nothing now, but each release
	// of the application or a library would push all 81 MiB again: the
	// budget now has room to part them, and that soon pays.
	plan, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: 3, Previous: &previous})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plan.Layers, fresh.Layers) {
		t.Errorf("plan\n  %s\nwant, as with no previous image,\n  %s", summary(plan), summary(fresh))
	}
}

func TestStorepackDistrustsThePreviousPlan(t *testing.T) {
	g := helloClosure(t)
	paths := g.Paths()
	stranger := pathFor("not-in-the-graph", "")
	previous := &Plan{Strategy: "whatever", Layers: []Layer{
		{Key: "a", Paths: []store.Path{paths[0], paths[1]}},
		{Key: "a", Paths: []store.Path{paths[1], paths[2]}}, // paths[1] again: not whole any more
		{Key: "b", Paths: []store.Path{paths[3], stranger}}, // a path the graph does not have
		{Key: "empty"},
		{Key: "c", Paths: []store.Path{paths[4], paths[4]}}, // a path twice
	}}
	// Only the first layer is whole: the plan is the one made from it
	// alone.
	whole := &Plan{Strategy: "whatever", Layers: previous.Layers[:1]}
	for _, maxLayers := range []int{1, 2, 3, 5} {
		plan, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: maxLayers, Previous: previous})
		if err != nil {
			t.Fatalf("budget %d: %v", maxLayers, err) // NewPlan checks the plan
		}
		want, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: maxLayers, Previous: whole})
		if err != nil || !reflect.DeepEqual(plan, want) {
			t.Errorf("budget %d: %s, want %s (%v)", maxLayers, summary(plan), summary(want), err)
		}
	}
}

func TestStorepackJoinsUnlinkedParts(t *testing.T) {
	// Four roots with nothing in common: no reference links them, yet
	// the budget must hold.
	g := graphOf(t, []node{{name: "a", size: 1}, {name: "b", size: 2}, {name: "c", size: 3}, {name: "d", size: 4}})
	for maxLayers := 1; maxLayers <= 4; maxLayers++ {
		plan, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: maxLayers})
		if err != nil || len(plan.Layers) != maxLayers {
			t.Errorf("budget %d: %s, %v", maxLayers, summary(plan), err)
		}
	}
}

// TestStorepackLargeGraph takes the coarsening shortcut for graphs of more
// than coarsenAbove paths, and must stay within budget and deterministic,
// whatever their shape: a Debian-like closure, one of more roots than the
// greedy's limit (which absorbing cannot join), a random sparse graph.
func TestStorepackLargeGraph(t *testing.T) {
	synthetic, err := corpus.Synthetic(3*coarsenAbove, 7)
	if err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*store.Graph{
		"synthetic":  synthetic,
		"many roots": manyRoots(t, 3*coarsenAbove),
		"sparse DAG": sparseDAG(t, 3*coarsenAbove, 5),
	} {
		infos := make([]store.Info, 0, g.Len())
		for _, p := range g.Paths() {
			info, _ := g.Info(p)
			infos = append(infos, info)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		rng.Shuffle(len(infos), func(i, j int) { infos[i], infos[j] = infos[j], infos[i] })
		shuffled, err := store.NewGraph(infos)
		if err != nil {
			t.Fatal(err)
		}
		for _, maxLayers := range []int{1, 20, 100, 3000} {
			opt := Options{Strategy: "storepack", MaxLayers: maxLayers}
			plan, err := NewPlan(g, opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Layers) != maxLayers {
				t.Errorf("%s, budget %d: %d layers", name, maxLayers, len(plan.Layers))
			}
			again, err := NewPlan(shuffled, opt)
			if err != nil || !reflect.DeepEqual(again, plan) {
				t.Errorf("%s, budget %d: plan differs after shuffling the input (%v)", name, maxLayers, err)
			}
			opt.Previous = &plan
			if again, err := NewPlan(g, opt); err != nil || !reflect.DeepEqual(again.Layers, plan.Layers) {
				t.Errorf("%s, budget %d: with itself as the previous plan, the plan changed (%v)", name, maxLayers, err)
			}
		}
	}
}

// manyRoots is an image of n-1 programs that all use one library: n-1
// roots.
func manyRoots(tb testing.TB, n int) *store.Graph {
	lib := pathFor("libshared-1.0", "")
	infos := []store.Info{{Path: lib, NarSize: 1 << 20}}
	for i := 1; i < n; i++ {
		infos = append(infos, store.Info{Path: pathFor(fmt.Sprintf("program%d-1.0", i), ""), References: []store.Path{lib}, NarSize: uint64(1000 + i%97*100)})
	}
	g, err := store.NewGraph(infos)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// sparseDAG is a random graph of n paths, each referencing refs paths
// made before it: about one path in six is a root.
func sparseDAG(tb testing.TB, n, refs int) *store.Graph {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(refs)))
	infos := make([]store.Info, n)
	for i := range infos {
		infos[i] = store.Info{Path: pathFor(fmt.Sprintf("p%d-1.0", i), ""), NarSize: 1 + rng.Uint64N(1<<24)}
		for range min(refs, i) {
			if ref := infos[rng.IntN(i)].Path; !slices.Contains(infos[i].References, ref) {
				infos[i].References = append(infos[i].References, ref)
			}
		}
		slices.SortFunc(infos[i].References, func(a, b store.Path) int { return strings.Compare(a.String(), b.String()) })
	}
	g, err := store.NewGraph(infos)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// TestLinkedGroups checks that the bit matrix and the sorted keys find
// the same links, in the same order.
func TestLinkedGroups(t *testing.T) {
	g := sparseDAG(t, 600, 4)
	x, err := index(newView(g))
	if err != nil {
		t.Fatal(err)
	}
	grouping := newGrouping(x)
	rng := rand.New(rand.NewPCG(8, 9))
	for range 400 {
		if a, b := int32(rng.IntN(x.len())), int32(rng.IntN(x.len())); grouping.find(a) != grouping.find(b) {
			grouping.join(a, b)
		}
	}
	byMatrix, bySort := grouping.linkedGroupsByMatrix(), grouping.linkedGroupsBySort()
	if len(bySort) == 0 || !reflect.DeepEqual(byMatrix, bySort) {
		t.Errorf("by matrix %d links, by sort %d: they differ", len(byMatrix), len(bySort))
	}
}

func TestStorepackDeterministicWithPrevious(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	infos := randomDAG(rng, 120)
	g, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	// The previous release: the same graph less its first path, with
	// another budget.
	older, err := store.NewGraph(infos[1:])
	if err != nil {
		t.Fatal(err)
	}
	previous, err := NewPlan(older, Options{Strategy: "storepack", MaxLayers: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, maxLayers := range []int{1, 5, 9, 30, 200} {
		want, err := NewPlan(g, Options{Strategy: "storepack", MaxLayers: maxLayers, Previous: &previous})
		if err != nil {
			t.Fatal(err)
		}
		for round := range 3 {
			shuffled := slices.Clone(infos)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			g2, err := store.NewGraph(shuffled)
			if err != nil {
				t.Fatal(err)
			}
			reordered := previous
			reordered.Layers = slices.Clone(previous.Layers)
			rng.Shuffle(len(reordered.Layers), func(i, j int) {
				reordered.Layers[i], reordered.Layers[j] = reordered.Layers[j], reordered.Layers[i]
			})
			got, err := NewPlan(g2, Options{Strategy: "storepack", MaxLayers: maxLayers, Previous: &reordered})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("budget %d, round %d: plan differs after shuffling the input", maxLayers, round)
			}
		}
	}
}
