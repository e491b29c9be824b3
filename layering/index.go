package layering

import (
	"cmp"
	"slices"
	"strings"

	"github.com/storepack/storepack/store"
)

// indexed is a graph numbered for arithmetic (see index). Paths are in
// dependency order, so every path comes after the paths it references: a
// loop forwards over the indexes meets references first, a loop backwards
// meets referrers first.
type indexed struct {
	view     *view
	indexAt  []int32 // by position in view.paths: the path's index
	paths    []store.Path
	sizes    []uint64
	refs     [][]int32 // references without the self-reference; each smaller than its referrer
	sortedAt []int32   // each path's position in sorted order, to sort a layer's paths cheaply
}

func (x *indexed) len() int { return len(x.paths) }

// indexOf returns the index of p, if p is in the graph.
func (x *indexed) indexOf(p store.Path) (int32, bool) {
	at, ok := x.view.position(p)
	if !ok {
		return 0, false
	}
	return x.indexAt[at], true
}

// referrers returns, for each path, the paths that reference it.
func (x *indexed) referrers() [][]int32 {
	counts := make([]int, x.len())
	total := 0
	for _, refs := range x.refs {
		for _, ref := range refs {
			counts[ref]++
			total++
		}
	}
	// All in one array, each path's share cut to its count.
	all := make([]int32, total)
	referrers := make([][]int32, x.len())
	start := 0
	for i, count := range counts {
		referrers[i] = all[start : start : start+count]
		start += count
	}
	for i, refs := range x.refs {
		for _, ref := range refs {
			referrers[ref] = append(referrers[ref], int32(i))
		}
	}
	return referrers
}

// closureOf appends to into the paths that i needs, itself included, and
// returns it. seen must be false for all of them and is left true.
func (x *indexed) closureOf(i int32, seen []bool, into []int32) []int32 {
	start := len(into)
	seen[i] = true
	into = append(into, i)
	for k := start; k < len(into); k++ {
		for _, ref := range x.refs[into[k]] {
			if !seen[ref] {
				seen[ref] = true
				into = append(into, ref)
			}
		}
	}
	return into
}

// compareNames orders paths by name with the hash moved to the end
// ("glibc-2.39-52-<hash>"), as nixpkgs' strategies break ties: stable
// across rebuilds, unlike the hash, and still total.
func (x *indexed) compareNames(a, b int32) int {
	p, q := x.paths[a], x.paths[b]
	if n := min(len(p.Name), len(q.Name)); p.Name[:n] != q.Name[:n] || len(p.Name) == len(q.Name) {
		return cmp.Or(strings.Compare(p.Name, q.Name), strings.Compare(p.Hash, q.Hash))
	}
	// One name starts the other ("foo" and "foo-bar"): compare what
	// follows it, rare enough to build the strings.
	return strings.Compare(p.Name+"-"+p.Hash, q.Name+"-"+q.Hash)
}

// layersOf makes one layer of each group of path indexes, keyed by the name
// of its largest path (see layerKeys), in the order given.
func (x *indexed) layersOf(groups [][]int32) []Layer {
	representatives := make([]store.Path, len(groups))
	for k, group := range groups {
		largest := slices.MaxFunc(group, func(a, b int32) int {
			return cmp.Or(cmp.Compare(x.sizes[a], x.sizes[b]), -x.compareNames(a, b))
		})
		representatives[k] = x.paths[largest]
	}
	keys := layerKeys(representatives)
	layers := make([]Layer, len(groups))
	for k, group := range groups {
		layers[k] = x.layer(keys[k], group)
	}
	return layers
}

// layer makes a layer of a group of path indexes.
func (x *indexed) layer(key string, group []int32) Layer {
	group = slices.Clone(group)
	slices.SortFunc(group, func(a, b int32) int { return cmp.Compare(x.sortedAt[a], x.sortedAt[b]) })
	layer := Layer{Key: key, Paths: make([]store.Path, len(group))}
	for n, i := range group {
		layer.Paths[n] = x.paths[i]
		layer.Size = addSaturating(layer.Size, x.sizes[i])
	}
	return layer
}

// singletonsThenRest gives each path of order its own layer, in that order,
// if the budget allows; otherwise the first maxLayers-1 paths get their own
// layers and the others share a catch-all layer on top.
func (x *indexed) singletonsThenRest(order []int32, maxLayers int) []Layer {
	own, rest := order, []int32(nil)
	var reserved []string
	if len(order) > maxLayers {
		own, rest = order[:maxLayers-1], order[maxLayers-1:]
		reserved = []string{catchAllKey}
	}
	ownPaths := make([]store.Path, len(own))
	for k, i := range own {
		ownPaths[k] = x.paths[i]
	}
	keys := layerKeys(ownPaths, reserved...)
	layers := make([]Layer, 0, len(own)+1)
	for k, i := range own {
		layers = append(layers, x.layer(keys[k], []int32{i}))
	}
	if len(rest) > 0 {
		layers = append(layers, x.layer(catchAllKey, rest))
	}
	return layers
}

// byClosureSize sorts groups of path indexes by the NAR size of everything
// their paths need, smallest (the base of the closure) first.
func (x *indexed) byClosureSize(groups [][]int32) [][]int32 {
	seen := make([]bool, x.len())
	var closure []int32
	return x.sortGroups(groups, func(group []int32) float64 {
		closure = closure[:0]
		for _, i := range group {
			if !seen[i] {
				closure = x.closureOf(i, seen, closure)
			}
		}
		var size uint64
		for _, i := range closure {
			size = addSaturating(size, x.sizes[i])
			seen[i] = false
		}
		return float64(size)
	})
}

// sortGroups sorts groups of path indexes by rank, ascending; ties go by
// the first name in the group (see compareNames), which no other group
// shares.
func (x *indexed) sortGroups(groups [][]int32, rank func(group []int32) float64) [][]int32 {
	type ranked struct {
		group     []int32
		rank      float64
		firstName int32
	}
	ranks := make([]ranked, len(groups))
	for k, group := range groups {
		ranks[k] = ranked{group: group, rank: rank(group), firstName: slices.MinFunc(group, x.compareNames)}
	}
	slices.SortFunc(ranks, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), x.compareNames(a.firstName, b.firstName))
	})
	sorted := make([][]int32, len(ranks))
	for k, r := range ranks {
		sorted[k] = r.group
	}
	return sorted
}
