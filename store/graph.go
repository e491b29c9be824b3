package store

import (
	"fmt"
	"slices"
)

// Info is one node of a closure graph.
type Info struct {
	Path       Path
	References []Path // sorted by String(), deduplicated; may include Path itself (self-reference)
	NarSize    uint64 // 0 when unknown
}

// Graph is an immutable, validated reference graph: every reference names a
// node of the graph, and all nodes share one store directory. Its methods
// return copies, so callers may modify what they get.
type Graph struct {
	storeDir  string
	nodes     []Info       // sorted by Path; References normalized
	index     map[Path]int // Path -> position in nodes
	referrers [][]Path     // parallel to nodes: sorted, without self-references
}

// NewGraph validates infos and builds a graph from them. References are sorted
// and deduplicated. A path listed twice is accepted when both entries agree
// and is an error otherwise. Every path and reference must be valid and in the
// same store directory, and every reference must name a listed path.
func NewGraph(infos []Info) (*Graph, error) {
	nodes := make([]Info, 0, len(infos))
	storeDir := ""
	for _, info := range infos {
		if err := info.Path.check(); err != nil {
			return nil, err
		}
		if storeDir == "" {
			storeDir = info.Path.Dir
		}
		if err := checkDir(info.Path, storeDir); err != nil {
			return nil, err
		}
		refs := slices.Clone(info.References)
		for _, ref := range refs {
			if err := ref.check(); err != nil {
				return nil, fmt.Errorf("%s: reference: %w", info.Path, err)
			}
			if err := checkDir(ref, storeDir); err != nil {
				return nil, fmt.Errorf("%s: reference: %w", info.Path, err)
			}
		}
		slices.SortFunc(refs, Path.Compare)
		nodes = append(nodes, Info{Path: info.Path, References: slices.Compact(refs), NarSize: info.NarSize})
	}

	slices.SortFunc(nodes, func(a, b Info) int { return a.Path.Compare(b.Path) })
	for i := 1; i < len(nodes); i++ {
		prev, node := nodes[i-1], nodes[i]
		if node.Path == prev.Path && (node.NarSize != prev.NarSize || !slices.Equal(node.References, prev.References)) {
			return nil, fmt.Errorf("%s is listed twice with different data", node.Path)
		}
	}
	g := newGraph(storeDir, slices.CompactFunc(nodes, func(a, b Info) bool { return a.Path == b.Path }))
	for _, node := range g.nodes {
		for _, ref := range node.References {
			if _, ok := g.index[ref]; !ok {
				return nil, fmt.Errorf("%s references %s, which is not in the graph", node.Path, ref)
			}
		}
	}
	g.referrers = make([][]Path, len(g.nodes))
	for _, node := range g.nodes {
		// nodes are visited in sorted order, so each referrers list comes out sorted.
		for _, ref := range node.References {
			if ref != node.Path {
				i := g.index[ref]
				g.referrers[i] = append(g.referrers[i], node.Path)
			}
		}
	}
	return g, nil
}

func checkDir(p Path, storeDir string) error {
	if p.Dir != storeDir {
		return fmt.Errorf("%s is in store directory %s, but the graph is in %s", p, p.Dir, storeDir)
	}
	return nil
}

// newGraph indexes nodes, which must be sorted, unique and normalized. It
// leaves referrers to the caller.
func newGraph(storeDir string, nodes []Info) *Graph {
	g := &Graph{storeDir: storeDir, nodes: nodes, index: make(map[Path]int, len(nodes))}
	for i, node := range nodes {
		g.index[node.Path] = i
	}
	return g
}

// Paths returns every path of the graph, sorted.
func (g *Graph) Paths() []Path {
	paths := make([]Path, len(g.nodes))
	for i, node := range g.nodes {
		paths[i] = node.Path
	}
	return paths
}

// Info returns the node for p, if p is in the graph.
func (g *Graph) Info(p Path) (Info, bool) {
	i, ok := g.index[p]
	if !ok {
		return Info{}, false
	}
	info := g.nodes[i]
	info.References = slices.Clone(info.References)
	return info, true
}

// Len returns the number of paths in the graph.
func (g *Graph) Len() int { return len(g.nodes) }

// StoreDir returns the store directory shared by all paths, "" for an empty graph.
func (g *Graph) StoreDir() string { return g.storeDir }

// Referrers returns the paths that reference p, sorted, leaving out p itself.
func (g *Graph) Referrers(p Path) []Path {
	i, ok := g.index[p]
	if !ok {
		return nil
	}
	return slices.Clone(g.referrers[i])
}

// Closure returns the sub-graph of everything reachable from roots, roots
// included. It is an error if a root is not in the graph.
func (g *Graph) Closure(roots ...Path) (*Graph, error) {
	reached := make([]bool, len(g.nodes))
	var stack []int
	for _, root := range roots {
		i, ok := g.index[root]
		if !ok {
			return nil, fmt.Errorf("closure root %s is not in the graph", root)
		}
		if !reached[i] {
			reached[i] = true
			stack = append(stack, i)
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, ref := range g.nodes[i].References {
			if j := g.index[ref]; !reached[j] {
				reached[j] = true
				stack = append(stack, j)
			}
		}
	}

	// Walking g.nodes in order keeps the sub-graph's nodes and referrers sorted.
	var nodes []Info
	for i, node := range g.nodes {
		if reached[i] {
			nodes = append(nodes, node) // References are never modified, so sharing them is safe.
		}
	}
	sub := newGraph(g.storeDir, nodes)
	sub.referrers = make([][]Path, len(nodes))
	for i, node := range nodes {
		for _, referrer := range g.referrers[g.index[node.Path]] {
			if reached[g.index[referrer]] {
				sub.referrers[i] = append(sub.referrers[i], referrer)
			}
		}
	}
	return sub, nil
}
