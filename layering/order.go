package layering

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/storepack/storepack/store"
)

// dependencyOrder returns the paths of g so that every path comes after the
// paths it references (self-references aside): a topological order, bottom
// layer first.
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
func dependencyOrder(g *store.Graph) ([]store.Path, error) {
	paths := g.Paths()
	index := make(map[store.Path]int, len(paths))
	for i, p := range paths {
		index[p] = i
	}

	// Kahn's algorithm from the roots down: a path is visited once all its
	// referrers were, which is when its depth is final.
	depth := make([]int, len(paths))
	unvisitedReferrers := make([]int, len(paths))
	var ready []int
	for i, p := range paths {
		unvisitedReferrers[i] = len(g.Referrers(p))
		if unvisitedReferrers[i] == 0 {
			ready = append(ready, i)
		}
	}
	visited := 0
	for len(ready) > 0 {
		i := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		visited++
		info, _ := g.Info(paths[i])
		for _, ref := range info.References {
			if ref == paths[i] {
				continue
			}
			j := index[ref]
			depth[j] = max(depth[j], depth[i]+1)
			unvisitedReferrers[j]--
			if unvisitedReferrers[j] == 0 {
				ready = append(ready, j)
			}
		}
	}
	if visited < len(paths) {
		return nil, cycleError(g, paths, unvisitedReferrers)
	}

	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(
			cmp.Compare(depth[b], depth[a]), // deepest first
			strings.Compare(paths[a].Name, paths[b].Name),
			strings.Compare(paths[a].Hash, paths[b].Hash),
		)
	})
	sorted := make([]store.Path, len(order))
	for k, i := range order {
		sorted[k] = paths[i]
	}
	return sorted, nil
}

// cycleError describes one reference cycle among the paths that
// dependencyOrder could not visit. Each of them still has an unvisited
// referrer, so walking from referrer to referrer must run into a cycle; the
// walk starts at the first such path and takes the first referrer, so the
// same graph always gives the same message.
func cycleError(g *store.Graph, paths []store.Path, unvisitedReferrers []int) error {
	stuck := make(map[store.Path]bool)
	for i, p := range paths {
		if unvisitedReferrers[i] > 0 {
			stuck[p] = true
		}
	}
	start := slices.IndexFunc(paths, func(p store.Path) bool { return stuck[p] })
	walk := []store.Path{paths[start]}
	seen := map[store.Path]int{paths[start]: 0}
	for {
		current := walk[len(walk)-1]
		referrers := g.Referrers(current)
		next := referrers[slices.IndexFunc(referrers, func(p store.Path) bool { return stuck[p] })]
		if first, ok := seen[next]; ok {
			cycle := append(walk[first:], next)
			// The walk followed references backwards; print them forwards.
			slices.Reverse(cycle)
			names := make([]string, len(cycle))
			for i, p := range cycle {
				names[i] = p.String()
			}
			return fmt.Errorf("reference cycle between store paths: %s", strings.Join(names, " -> "))
		}
		seen[next] = len(walk)
		walk = append(walk, next)
	}
}
