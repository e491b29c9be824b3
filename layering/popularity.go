package layering

import (
	"cmp"
	"slices"
)

// popularity is nixpkgs' classic layering (referencesByPopularity): the
// most popular paths get their own layers, most popular first, and the rest
// share a catch-all layer on top.
//
// A path's popularity is the number of distinct paths through the graph
// from a root (a store path nothing references) down to it. A root counts
// the empty path, so it has popularity 1; every other path has the sum of
// its referrers' popularities; with several roots the counts add up. libc,
// reached along almost every chain, is the most popular; the roots are the
// least. Path counts grow exponentially with depth, so they saturate at
// 2^64-1: paths that popular are all alike and fall back to the tie-break,
// the name with the hash moved to the end.
func popularity(v *view, opt Options) ([]Layer, error) {
	x, err := index(v)
	if err != nil {
		return nil, err
	}
	popularity := make([]uint64, x.len())
	// Backwards, every referrer comes before what it references, so a path's
	// count is complete when the loop reaches it; one still at zero has no
	// referrer.
	for i := x.len() - 1; i >= 0; i-- {
		if popularity[i] == 0 {
			popularity[i] = 1
		}
		for _, ref := range x.refs[i] {
			popularity[ref] = addSaturating(popularity[ref], popularity[i])
		}
	}
	order := make([]int32, x.len())
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		return cmp.Or(cmp.Compare(popularity[b], popularity[a]), x.compareNames(a, b))
	})
	return x.singletonsThenRest(order, opt.MaxLayers), nil
}
