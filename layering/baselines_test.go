package layering

import (
	"fmt"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
)

func TestPopularity(t *testing.T) {
	// A diamond under one root: popularities root 1, a 1, b 1, c 2 (via a
	// and via b), d 2 (only through c). Equal popularities go by name.
	diamond := graphOf(t, []node{
		{name: "root", refs: []string{"a", "b"}, size: 1},
		{name: "a", refs: []string{"c"}, size: 2},
		{name: "b", refs: []string{"c"}, size: 3},
		{name: "c", refs: []string{"d", "c"}, size: 4},
		{name: "d", size: 5},
	})
	tests := []struct {
		name      string
		graph     *store.Graph
		maxLayers int
		want      string
	}{
		{
			name: "most popular first, ties by name", graph: diamond, maxLayers: 10,
			want: "c[c]4 | d[d]5 | a[a]2 | b[b]3 | root[root]1",
		},
		{
			name: "budget exactly the number of paths", graph: diamond, maxLayers: 5,
			want: "c[c]4 | d[d]5 | a[a]2 | b[b]3 | root[root]1",
		},
		{
			name: "one path more than the budget", graph: diamond, maxLayers: 4,
			want: "c[c]4 | d[d]5 | a[a]2 | rest" + sortedNames("b", "root") + "4",
		},
		{
			name: "budget 1", graph: diamond, maxLayers: 1,
			want: "rest" + sortedNames("root", "a", "b", "c", "d") + "15",
		},
		{
			// Two roots: the counts add up, so shared (3: two paths
			// from top, one from other) beats only-top (1).
			name: "several roots",
			graph: graphOf(t, []node{
				{name: "top", refs: []string{"mid", "shared"}},
				{name: "other", refs: []string{"shared"}},
				{name: "mid", refs: []string{"shared"}},
				{name: "shared"},
			}),
			maxLayers: 10,
			want:      "shared[shared]0 | mid[mid]0 | other[other]0 | top[top]0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := NewPlan(tc.graph, Options{Strategy: "popularity", MaxLayers: tc.maxLayers})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(plan); got != tc.want {
				t.Errorf("plan\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func TestPopularityTieBreakMovesTheHashToTheEnd(t *testing.T) {
	// "foo" and "foo-bar" tie (both popularity 1). By name alone "foo"
	// comes first; with the hash moved to the end the comparison is
	// "foo-z…" against "foo-bar-…", and "foo-bar" comes first.
	foo := store.Path{Dir: "/nix/store", Hash: strings.Repeat("z", 32), Name: "foo"}
	fooBar := pathFor("foo-bar", "")
	g, err := store.NewGraph([]store.Info{{Path: foo}, {Path: fooBar}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(g, Options{Strategy: "popularity", MaxLayers: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := layerKeysOf(plan); strings.Join(got, " ") != "foo-bar foo" {
		t.Errorf("keys = %v, want [foo-bar foo]", got)
	}
}

func TestPopularitySaturates(t *testing.T) {
	// A ladder: each level's two paths both reference both paths of the
	// next level, so the number of paths from the root doubles with each
	// level: 2^level. From level 64 on the count saturates, and those
	// paths go by name (l64a, l64b, l65a, …) before level 63, although an
	// exact count would put level 69 first.
	const levels = 70
	var nodes []node
	nodes = append(nodes, node{name: "root", refs: []string{"l00a", "l00b"}})
	for level := range levels {
		n := node{}
		if level+1 < levels {
			n.refs = []string{fmt.Sprintf("l%02da", level+1), fmt.Sprintf("l%02db", level+1)}
		}
		for _, side := range "ab" {
			n.name = fmt.Sprintf("l%02d%c", level, side)
			nodes = append(nodes, n)
		}
	}
	plan, err := NewPlan(graphOf(t, nodes), Options{Strategy: "popularity", MaxLayers: 200})
	if err != nil {
		t.Fatal(err)
	}
	keys := layerKeysOf(plan)
	want := []string{"l64a", "l64b", "l65a", "l65b", "l66a", "l66b", "l67a", "l67b", "l68a", "l68b", "l69a", "l69b", "l63a", "l63b"}
	if got := keys[:len(want)]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("first layers = %v, want %v", got, want)
	}
	if last := keys[len(keys)-1]; last != "root" {
		t.Errorf("last layer = %s, want root", last)
	}
}

func TestAuto(t *testing.T) {
	// Largest first, the primaries are app, libA, data, libB, util, libc.
	//   app:  every path's key becomes {app}.
	//   libA: libA and libc get {libA} (app, a user of libA, is removed).
	//   data: data gets {data}.
	//   libB: libB gets {libB}; libc gets {libA, libB}: used by two
	//         primaries, it gets a layer of its own; data is left alone,
	//         as it is the closure of data, a primary libB depends on.
	//   util: util gets {util}.
	//   libc: libc gets {libc}.
	// Layers go by the NAR size of their closure.
	g := graphOf(t, []node{
		{name: "app", refs: []string{"libA", "libB", "util"}, size: 100},
		{name: "libA", refs: []string{"libc"}, size: 50},
		{name: "data", size: 45},
		{name: "libB", refs: []string{"libc", "data"}, size: 40},
		{name: "util", size: 20},
		{name: "libc", size: 10},
	})
	tests := []struct {
		maxLayers int
		want      string
	}{
		// libA's step makes 2 keys: too many.
		{maxLayers: 1, want: "app" + sortedNames("app", "libA", "data", "libB", "util", "libc") + "265"},
		{maxLayers: 2, want: "libA" + sortedNames("libA", "libc") + "60 | app" + sortedNames("app", "data", "libB", "util") + "205"},
		{maxLayers: 3, want: "data[data]45 | libA" + sortedNames("libA", "libc") + "60 | app" + sortedNames("app", "libB", "util") + "160"},
		// libB's step would make 5 keys: the plan stays at 3 layers.
		{maxLayers: 4, want: "data[data]45 | libA" + sortedNames("libA", "libc") + "60 | app" + sortedNames("app", "libB", "util") + "160"},
		{maxLayers: 5, want: "libc[libc]10 | data[data]45 | libA[libA]50 | libB[libB]40 | app" + sortedNames("app", "util") + "120"},
		{maxLayers: 6, want: "libc[libc]10 | util[util]20 | data[data]45 | libA[libA]50 | libB[libB]40 | app[app]100"},
		{maxLayers: 100, want: "libc[libc]10 | util[util]20 | data[data]45 | libA[libA]50 | libB[libB]40 | app[app]100"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("budget ", tc.maxLayers), func(t *testing.T) {
			plan, err := NewPlan(g, Options{Strategy: "auto", MaxLayers: tc.maxLayers})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(plan); got != tc.want {
				t.Errorf("plan\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func TestAutoTies(t *testing.T) {
	// x and y are equally large: x, first by name, becomes the primary,
	// and y stays with the root.
	g := graphOf(t, []node{
		{name: "root", refs: []string{"x", "y"}, size: 1},
		{name: "y", size: 5},
		{name: "x", size: 5},
	})
	plan, err := NewPlan(g, Options{Strategy: "auto", MaxLayers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(plan), "x[x]5 | y"+sortedNames("root", "y")+"6"; got != want {
		t.Errorf("plan\n  %s\nwant\n  %s", got, want)
	}
}
