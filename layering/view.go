package layering

import "github.com/storepack/storepack/store"

// view is what planning needs of a store.Graph, read from it once per NewPlan:
// strategies and NewPlan's checks share it, so that a large graph is walked
// through its (copying) accessors only once.
type view struct {
	paths []store.Path // all paths, sorted, as g.Paths() returns them
	sizes []uint64     // NarSize, by position in paths
	refs  [][]int32    // references as positions in paths, self-references left out

	// byHash finds a path's position by its hash part, which is quicker to
	// hash than the whole path and unique in any real store; the paths that
	// share a hash part with an earlier one (only in a crafted graph) are in
	// clashes instead.
	byHash  map[string]int32
	clashes map[store.Path]int32
}

func newView(g *store.Graph) *view {
	paths := g.Paths()
	sizes, refs := g.Numbered()
	v := &view{paths: paths, sizes: sizes, refs: refs, byHash: make(map[string]int32, len(paths))}
	for i, p := range paths {
		if _, taken := v.byHash[p.Hash]; !taken {
			v.byHash[p.Hash] = int32(i)
			continue
		}
		if v.clashes == nil {
			v.clashes = make(map[store.Path]int32)
		}
		v.clashes[p] = int32(i)
	}
	return v
}

func (v *view) len() int { return len(v.paths) }

// position returns the position of p in v.paths, if p is in the graph.
func (v *view) position(p store.Path) (int32, bool) {
	if i, ok := v.byHash[p.Hash]; ok && v.paths[i] == p {
		return i, true
	}
	i, ok := v.clashes[p]
	return i, ok
}
