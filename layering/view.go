package layering

import (
	"slices"

	"github.com/storepack/storepack/store"
)

// view is what planning needs of a store.Graph, read from it once per NewPlan:
// strategies and NewPlan's checks share it, so that a large graph is walked
// through its (copying) accessors only once.
type view struct {
	paths []store.Path // all paths, sorted, as g.Paths() returns them
	sizes []uint64     // NarSize, by position in paths
	refs  [][]int32    // references as positions in paths, self-references left out
}

func newView(g *store.Graph) *view {
	paths := g.Paths()
	sizes, refs := g.Numbered()
	return &view{paths: paths, sizes: sizes, refs: refs}
}

func (v *view) len() int { return len(v.paths) }

// position returns the position of p in v.paths, if p is in the graph: a
// binary search of the sorted paths, which needs no index of 100,000
// entries beside them.
func (v *view) position(p store.Path) (int32, bool) {
	i, ok := slices.BinarySearchFunc(v.paths, p, store.Path.Compare)
	return int32(i), ok
}
