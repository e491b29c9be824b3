package store

import (
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
)

// Info is one node of a closure graph.
type Info struct {
	Path       Path
	References []Path // sorted by String(), deduplicated; may include Path itself (self-reference)
	NarSize    uint64 // 0 when unknown
	// NarHash is the SHA-256 digest of the path's NAR in the form NarHash
	// returns, "sha256:" and 64 lower-case hexadecimal digits; "" when
	// unknown.
	NarHash digest.Digest
}

// Graph is an immutable, validated reference graph: every reference names a
// node of the graph, and all nodes share one store directory. Its methods
// return copies, so callers may modify what they get.
type Graph struct {
	storeDir string
	nodes    []Info // sorted by Path; References normalized
	// byHash finds a node by hash part: it holds the position of the first
	// node with it. Nodes that share a hash part (Nix never makes any) are
	// next to each other, as nodes are sorted.
	byHash map[string]int
	// Parallel to nodes: the positions of each node's references, and of
	// the nodes that reference it (sorted, without the node itself).
	refs, referrers [][]int32
}

// NewGraph validates infos and builds a graph from them. References are sorted
// and deduplicated. A path listed twice is accepted when both entries agree
// (references, NAR size and NAR hash) and is an error otherwise. Every path
// and reference must be valid and in the same store directory, every
// reference must name a listed path, and a NAR hash must be "" or in the
// form NarHash returns.
func NewGraph(infos []Info) (*Graph, error) {
	var (
		storeDir string
		ids      = make(map[Path]int, len(infos))
		paths    []Path // by id
		nodes    = make([]idNode, len(infos))
	)
	id := func(p Path) int {
		i, ok := ids[p]
		if !ok {
			i = len(paths)
			ids[p] = i
			paths = append(paths, p)
		}
		return i
	}
	for k, info := range infos {
		if err := checkIn(info.Path, &storeDir); err != nil {
			return nil, err
		}
		if err := checkNarHash(info.NarHash); err != nil {
			return nil, fmt.Errorf("%s: %w", info.Path, err)
		}
		nodes[k] = idNode{path: id(info.Path), narSize: info.NarSize, narHash: info.NarHash, refs: make([]int, len(info.References))}
	}
	for k, info := range infos {
		for r, ref := range info.References {
			if _, ok := ids[ref]; !ok {
				// A reference that is a node is valid; say what is wrong
				// with this one.
				if err := checkIn(ref, &storeDir); err != nil {
					return nil, fmt.Errorf("%s: reference: %w", info.Path, err)
				}
				return nil, fmt.Errorf("%s references %s, which is not in the graph", info.Path, ref)
			}
			nodes[k].refs[r] = id(ref)
		}
	}
	return graphOfIDs(paths, nodes)
}

// idNode is a node whose path and references are given by ids, positions
// in a slice of paths: what the loaders produce, having met each distinct
// path once (see pathParser).
type idNode struct {
	path    int
	narSize uint64
	narHash digest.Digest
	refs    []int
}

// checkNarHash accepts what Info.NarHash may hold.
func checkNarHash(d digest.Digest) error {
	if d == "" {
		return nil
	}
	if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("NAR hash %s is not sha256:<64 lower-case hexadecimal digits>", quote(string(d)))
	}
	return nil
}

// graphOfIDs builds a graph from nodes, whose ids are positions in paths.
// The paths must be valid, and those of nodes in one store directory; a
// path may have several identical nodes.
func graphOfIDs(paths []Path, nodes []idNode) (*Graph, error) {
	// The node of each id, if any, and the ids of the nodes in path order.
	nodeOf := make([]int, len(paths))
	for i := range nodeOf {
		nodeOf[i] = -1
	}
	var order []int
	for k, node := range nodes {
		if first := nodeOf[node.path]; first >= 0 {
			if differ := difference(nodes[first], node); differ != "" {
				return nil, fmt.Errorf("%s is listed twice with %s", paths[node.path], differ)
			}
			continue
		}
		nodeOf[node.path] = k
		order = append(order, node.path)
	}
	slices.SortFunc(order, func(a, b int) int { return paths[a].Compare(paths[b]) })
	position := make([]int32, len(paths)) // of each id with a node, in the graph's nodes
	for i, id := range order {
		position[id] = int32(i)
	}

	g := &Graph{nodes: make([]Info, len(order)), refs: make([][]int32, len(order))}
	if len(order) > 0 {
		g.storeDir = paths[order[0]].Dir
	}
	total := 0
	for _, id := range order {
		total += len(nodes[nodeOf[id]].refs)
	}
	positions := make([]int32, 0, total) // one allocation for all nodes' references
	for i, id := range order {
		node := nodes[nodeOf[id]]
		g.nodes[i] = Info{Path: paths[id], NarSize: node.narSize, NarHash: node.narHash}
		if err := checkDir(g.nodes[i].Path, g.storeDir); err != nil {
			return nil, err
		}
		start := len(positions)
		for _, ref := range node.refs {
			if nodeOf[ref] < 0 {
				return nil, fmt.Errorf("%s references %s, which is not in the graph", paths[id], paths[ref])
			}
			positions = append(positions, position[ref])
		}
		refs := positions[start:]
		slices.Sort(refs) // positions follow the paths' order
		refs = slices.Compact(refs)
		positions = positions[:start+len(refs)]
		g.refs[i] = refs[:len(refs):len(refs)]
	}
	references := make([]Path, len(positions)) // one allocation for all References
	for i, refs := range g.refs {
		for k, j := range refs {
			references[k] = g.nodes[j].Path
		}
		g.nodes[i].References, references = references[:len(refs):len(refs)], references[len(refs):]
	}
	g.indexHashes()
	g.referrers = invert(g.refs)
	return g, nil
}

// difference compares two nodes of one path, whose references may be in any
// order, and says how they differ, "" if they do not. Differing NAR hashes
// are named: the inputs disagree on the path's very contents.
func difference(a, b idNode) string {
	if a.narHash != b.narHash {
		return fmt.Sprintf("different NAR hashes, %s and %s", orUnknown(a.narHash), orUnknown(b.narHash))
	}
	refsA, refsB := slices.Clone(a.refs), slices.Clone(b.refs)
	slices.Sort(refsA)
	slices.Sort(refsB)
	if a.narSize != b.narSize || !slices.Equal(slices.Compact(refsA), slices.Compact(refsB)) {
		return "different data"
	}
	return ""
}

// orUnknown names a NAR hash in an error.
func orUnknown(d digest.Digest) string {
	if d == "" {
		return "unknown"
	}
	return string(d)
}

// invert turns the positions of each node's references into the positions
// of each node's referrers, sorted and without self-references.
func invert(refs [][]int32) [][]int32 {
	counts := make([]int, len(refs))
	total := 0
	for i, positions := range refs {
		for _, j := range positions {
			if int(j) != i {
				counts[j]++
				total++
			}
		}
	}
	backing := make([]int32, total)
	referrers := make([][]int32, len(refs))
	for i, count := range counts {
		referrers[i], backing = backing[:0:count], backing[count:]
	}
	// Visiting referrers in order keeps each list sorted.
	for i, positions := range refs {
		for _, j := range positions {
			if int(j) != i {
				referrers[j] = append(referrers[j], int32(i))
			}
		}
	}
	return referrers
}

// checkIn validates p, a path of a graph in *storeDir, which the first path
// sets (and which is then valid, so that the others need only be compared
// with it).
func checkIn(p Path, storeDir *string) error {
	if *storeDir == "" {
		if err := p.check(); err != nil {
			return err
		}
		*storeDir = p.Dir
		return nil
	}
	if err := checkDir(p, *storeDir); err != nil {
		return err
	}
	return p.checkBase()
}

func checkDir(p Path, storeDir string) error {
	if p.Dir != storeDir {
		return fmt.Errorf("%s is in store directory %s, but the graph is in %s", p, p.Dir, storeDir)
	}
	return nil
}

// indexHashes fills byHash from nodes.
func (g *Graph) indexHashes() {
	g.byHash = make(map[string]int, len(g.nodes))
	for i := len(g.nodes) - 1; i >= 0; i-- { // the first of equal hash parts wins
		g.byHash[g.nodes[i].Path.Hash] = i
	}
}

// find returns the position of p in nodes.
func (g *Graph) find(p Path) (int, bool) {
	i, ok := g.byHash[p.Hash]
	for ; ok && i < len(g.nodes) && g.nodes[i].Path.Hash == p.Hash; i++ {
		if g.nodes[i].Path == p {
			return i, true
		}
	}
	return 0, false
}

// pathsAt returns the paths at positions.
func (g *Graph) pathsAt(positions []int32) []Path {
	paths := make([]Path, len(positions))
	for k, i := range positions {
		paths[k] = g.nodes[i].Path
	}
	return paths
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
	i, ok := g.find(p)
	if !ok {
		return Info{}, false
	}
	info := g.nodes[i]
	info.References = slices.Clone(info.References)
	return info, true
}

// Numbered returns the graph in numbers, for algorithms that would
// otherwise look every reference up by path: for each path in the order
// Paths returns them, its NAR size and the positions of its references in
// that order, ascending, self-references left out.
func (g *Graph) Numbered() (sizes []uint64, refs [][]int32) {
	sizes = make([]uint64, len(g.nodes))
	refs = make([][]int32, len(g.nodes))
	total := 0
	for _, referrers := range g.referrers { // the same edges, counted from the other end
		total += len(referrers)
	}
	all := make([]int32, 0, total) // one array for all: far fewer allocations than a slice each
	for i, node := range g.nodes {
		sizes[i] = node.NarSize
		start := len(all)
		for _, j := range g.refs[i] {
			if int(j) != i {
				all = append(all, j)
			}
		}
		refs[i] = all[start:len(all):len(all)]
	}
	return sizes, refs
}

// Len returns the number of paths in the graph.
func (g *Graph) Len() int { return len(g.nodes) }

// StoreDir returns the store directory shared by all paths, "" for an empty graph.
func (g *Graph) StoreDir() string { return g.storeDir }

// Referrers returns the paths that reference p, sorted, leaving out p itself.
func (g *Graph) Referrers(p Path) []Path {
	i, ok := g.find(p)
	if !ok {
		return nil
	}
	return g.pathsAt(g.referrers[i])
}

// Closure returns the sub-graph of everything reachable from roots, roots
// included. It is an error if a root is not in the graph.
func (g *Graph) Closure(roots ...Path) (*Graph, error) {
	reached := make([]bool, len(g.nodes))
	var stack []int32
	for _, root := range roots {
		i, ok := g.find(root)
		if !ok {
			return nil, fmt.Errorf("closure root %s is not in the graph", root)
		}
		if !reached[i] {
			reached[i] = true
			stack = append(stack, int32(i))
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range g.refs[i] {
			if !reached[j] {
				reached[j] = true
				stack = append(stack, j)
			}
		}
	}

	// Walking g.nodes in order keeps the sub-graph's nodes sorted, and
	// renumbering keeps the positions' order.
	newPosition := make([]int32, len(g.nodes))
	sub := &Graph{storeDir: g.storeDir}
	for i, node := range g.nodes {
		if reached[i] {
			newPosition[i] = int32(len(sub.nodes))
			sub.nodes = append(sub.nodes, node) // References are never modified, so sharing them is safe.
		}
	}
	sub.indexHashes()
	sub.refs = make([][]int32, 0, len(sub.nodes))
	for i, refs := range g.refs {
		if reached[i] {
			positions := make([]int32, len(refs))
			for k, j := range refs {
				positions[k] = newPosition[j] // a closure holds all references
			}
			sub.refs = append(sub.refs, positions)
		}
	}
	sub.referrers = invert(sub.refs)
	return sub, nil
}

// Cycle returns a reference cycle between distinct paths in reference order,
// its first path repeated at the end (a references b, b references a: a, b,
// a), or nil if there is none. Self-references are not cycles.
//
// Nix and Guix cannot build such a cycle: a path's hash must be known before
// anything can mention it. Graphs may still hold one (NewGraph does not
// check), so that the layering can report it.
func (g *Graph) Cycle() []Path {
	const (
		unvisited = iota
		onStack
		finished
	)
	state := make([]uint8, len(g.nodes))
	// An iterative depth-first search: a deep graph must not exhaust the
	// goroutine stack. next is the position in the node's references.
	type frame struct{ node, next int }
	var stack []frame
	for start := range g.nodes {
		if state[start] != unvisited {
			continue
		}
		state[start] = onStack
		stack = append(stack[:0], frame{node: start})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			refs := g.refs[top.node]
			if top.next == len(refs) {
				state[top.node] = finished
				stack = stack[:len(stack)-1]
				continue
			}
			ref := int(refs[top.next])
			top.next++
			switch {
			case state[ref] == unvisited:
				state[ref] = onStack
				stack = append(stack, frame{node: ref})
			case state[ref] == onStack && ref != top.node:
				first := slices.IndexFunc(stack, func(f frame) bool { return f.node == ref })
				var cycle []Path
				for _, f := range stack[first:] {
					cycle = append(cycle, g.nodes[f.node].Path)
				}
				return append(cycle, g.nodes[ref].Path)
			}
		}
	}
	return nil
}

// checkAcyclic reports a reference cycle between distinct paths as an
// error, for the loaders: a graph read from a file or a store has none
// unless that input is corrupt.
func checkAcyclic(g *Graph) error {
	if cycle := g.Cycle(); cycle != nil {
		return fmt.Errorf("reference cycle between distinct store paths, which Nix and Guix cannot build: %s", joinPaths(cycle, " -> "))
	}
	return nil
}
