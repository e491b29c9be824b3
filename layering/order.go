package layering

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/storepack/storepack/store"
)

// index numbers the paths of v in dependency order: every path comes after
// the paths it references (self-references aside), a topological order,
// bottom layer first.
//
// Among the many topological orders it picks the one by depth: the length of
// the longest reference chain from a root (a path nothing references) down to
// the path. Deepest first, so that the widely shared base of a closure (glibc,
// libgcc) comes first and the paths only the roots use (the application and
// its private bits) come last; then by name, then by hash, so that the order
// never depends on the input order. Depth works as an order because a path is
// always strictly deeper than anything that references it.
//
// A reference cycle between distinct paths is an error naming them: Nix and
// Guix never produce one, so it means a broken graph file.
func index(v *view) (*indexed, error) {
	paths, refs := v.paths, v.refs
	unvisitedReferrers := make([]int, len(paths))
	for _, pathRefs := range refs {
		for _, ref := range pathRefs {
			unvisitedReferrers[ref]++
		}
	}

	// Kahn's algorithm from the roots down: a path is visited once all its
	// referrers were, which is when its depth is final.
	depth := make([]int, len(paths))
	var ready []int32
	for i, count := range unvisitedReferrers {
		if count == 0 {
			ready = append(ready, int32(i))
		}
	}
	visited := 0
	for len(ready) > 0 {
		i := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		visited++
		for _, j := range refs[i] {
			depth[j] = max(depth[j], depth[i]+1)
			unvisitedReferrers[j]--
			if unvisitedReferrers[j] == 0 {
				ready = append(ready, j)
			}
		}
	}
	if visited < len(paths) {
		return nil, cycleError(v, unvisitedReferrers)
	}

	order := make([]int32, len(paths))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		return cmp.Or(
			cmp.Compare(depth[b], depth[a]), // deepest first
			strings.Compare(paths[a].Name, paths[b].Name),
			strings.Compare(paths[a].Hash, paths[b].Hash),
		)
	})
	renumbered := make([]int32, len(paths))
	for k, i := range order {
		renumbered[i] = int32(k)
	}
	x := &indexed{
		view:     v,
		indexAt:  renumbered,
		paths:    make([]store.Path, len(paths)),
		sizes:    make([]uint64, len(paths)),
		refs:     make([][]int32, len(paths)),
		sortedAt: order,
	}
	total := 0
	for _, pathRefs := range refs {
		total += len(pathRefs)
	}
	all := make([]int32, 0, total) // every path's references, in one allocation as the graph is large
	for k, i := range order {
		p := paths[i]
		x.paths[k] = p
		x.sizes[k] = v.sizes[i]
		start := len(all)
		for _, j := range refs[i] {
			all = append(all, renumbered[j])
		}
		x.refs[k] = all[start:len(all):len(all)]
	}
	return x, nil
}

// cycleError describes one reference cycle among the paths that index could
// not visit. Each of them still has an unvisited referrer, so walking from
// referrer to referrer must run into a cycle; the walk starts at the first
// such path and takes the first referrer, so the same graph always gives
// the same message.
func cycleError(v *view, unvisitedReferrers []int) error {
	stuck := func(i int32) bool { return unvisitedReferrers[i] > 0 }
	firstStuckReferrer := make([]int32, v.len())
	for i := range firstStuckReferrer {
		firstStuckReferrer[i] = -1
	}
	// Referrers in sorted order, so "first" means the smallest path.
	for i, refs := range v.refs {
		for _, ref := range refs {
			if stuck(int32(i)) && firstStuckReferrer[ref] < 0 {
				firstStuckReferrer[ref] = int32(i)
			}
		}
	}
	start := int32(slices.IndexFunc(unvisitedReferrers, func(n int) bool { return n > 0 }))
	walk := []int32{start}
	seen := map[int32]int{start: 0}
	for {
		next := firstStuckReferrer[walk[len(walk)-1]]
		if first, ok := seen[next]; ok {
			cycle := append(walk[first:], next)
			// The walk followed references backwards; print them forwards.
			slices.Reverse(cycle)
			names := make([]string, len(cycle))
			for k, i := range cycle {
				names[k] = v.paths[i].String()
			}
			return fmt.Errorf("reference cycle between store paths: %s", strings.Join(names, " -> "))
		}
		seen[next] = len(walk)
		walk = append(walk, next)
	}
}
