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
//
// A graph of 100,000 paths is read whole into every build that names one,
// so it is kept small: a node holds its path and NAR, and references are
// positions of nodes, not paths.
type Graph struct {
	storeDir string
	nodes    []node // sorted by path, so that find can search them
	// The positions of each node's references (sorted), and of the nodes
	// that reference it (sorted, without the node itself).
	refs, referrers edges
}

// node is a path of a graph and what is known of its NAR.
type node struct {
	path    Path
	narSize uint64
	narHash digest.Digest
}

// edges are the positions of each node's neighbours, all in one array:
// node i's are to[start[i]:start[i+1]]. That is two allocations for a
// graph rather than one per node.
type edges struct {
	start []int32 // one more than there are nodes
	to    []int32
}

// of returns the neighbours of node i, which the caller must not modify.
func (e edges) of(i int) []int32 {
	return e.to[e.start[i]:e.start[i+1]:e.start[i+1]]
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

	g := &Graph{nodes: make([]node, len(order))}
	if len(order) > 0 {
		g.storeDir = paths[order[0]].Dir
	}
	total := 0
	for _, id := range order {
		total += len(nodes[nodeOf[id]].refs)
	}
	g.refs = edges{start: make([]int32, len(order)+1), to: make([]int32, 0, total)}
	for i, id := range order {
		n := nodes[nodeOf[id]]
		g.nodes[i] = node{path: paths[id], narSize: n.narSize, narHash: n.narHash}
		if err := checkDir(paths[id], g.storeDir); err != nil {
			return nil, err
		}
		start := len(g.refs.to)
		for _, ref := range n.refs {
			if nodeOf[ref] < 0 {
				return nil, fmt.Errorf("%s references %s, which is not in the graph", paths[id], paths[ref])
			}
			g.refs.to = append(g.refs.to, position[ref])
		}
		refs := g.refs.to[start:]
		slices.Sort(refs) // positions follow the paths' order
		g.refs.to = g.refs.to[:start+len(slices.Compact(refs))]
		g.refs.start[i+1] = int32(len(g.refs.to))
	}
	g.referrers = g.refs.invert()
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
func (e edges) invert() edges {
	n := len(e.start) - 1
	inv := edges{start: make([]int32, n+1)}
	for i := range n {
		for _, j := range e.of(i) {
			if int(j) != i {
				inv.start[j+1]++
			}
		}
	}
	for i := range n {
		inv.start[i+1] += inv.start[i]
	}
	inv.to = make([]int32, inv.start[n])
	next := slices.Clone(inv.start[:n]) // where each node's next referrer goes
	// Visiting referrers in order keeps each list sorted.
	for i := range n {
		for _, j := range e.of(i) {
			if int(j) != i {
				inv.to[next[j]] = int32(i)
				next[j]++
			}
		}
	}
	return inv
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

// find returns the position of p in nodes: a binary search, which needs no
// index beside the nodes.
func (g *Graph) find(p Path) (int, bool) {
	if p.Dir != g.storeDir {
		return 0, false
	}
	return slices.BinarySearchFunc(g.nodes, p, func(n node, p Path) int { return n.path.Compare(p) })
}

// pathsAt returns the paths at positions.
func (g *Graph) pathsAt(positions []int32) []Path {
	paths := make([]Path, len(positions))
	for k, i := range positions {
		paths[k] = g.nodes[i].path
	}
	return paths
}

// Paths returns every path of the graph, sorted.
func (g *Graph) Paths() []Path {
	paths := make([]Path, len(g.nodes))
	for i, n := range g.nodes {
		paths[i] = n.path
	}
	return paths
}

// Info returns the node for p, if p is in the graph.
func (g *Graph) Info(p Path) (Info, bool) {
	i, ok := g.find(p)
	if !ok {
		return Info{}, false
	}
	n := g.nodes[i]
	return Info{Path: n.path, References: g.pathsAt(g.refs.of(i)), NarSize: n.narSize, NarHash: n.narHash}, true
}

// NAR returns the NAR size and hash of p, as Info does without building
// its references, and whether p is in the graph.
func (g *Graph) NAR(p Path) (narSize uint64, narHash digest.Digest, ok bool) {
	i, ok := g.find(p)
	if !ok {
		return 0, "", false
	}
	return g.nodes[i].narSize, g.nodes[i].narHash, true
}

// Numbered returns the graph in numbers, for algorithms that would
// otherwise look every reference up by path: for each path in the order
// Paths returns them, its NAR size and the positions of its references in
// that order, ascending, self-references left out.
func (g *Graph) Numbered() (sizes []uint64, refs [][]int32) {
	sizes = make([]uint64, len(g.nodes))
	refs = make([][]int32, len(g.nodes))
	// The referrers are the same edges without self-references, counted
	// from the other end.
	all := make([]int32, 0, len(g.referrers.to)) // one array for all: far fewer allocations than a slice each
	for i, n := range g.nodes {
		sizes[i] = n.narSize
		start := len(all)
		for _, j := range g.refs.of(i) {
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
	return g.pathsAt(g.referrers.of(i))
}

// Closure returns the sub-graph of everything reachable from roots, roots
// included: g itself when that is all of g (a graph is immutable), else a
// graph that shares nothing with g but the paths' strings, so that g can be
// dropped. It is an error if a root is not in the graph.
func (g *Graph) Closure(roots ...Path) (*Graph, error) {
	reached := make([]bool, len(g.nodes))
	count := 0
	var stack []int32
	for _, root := range roots {
		i, ok := g.find(root)
		if !ok {
			return nil, fmt.Errorf("closure root %s is not in the graph", root)
		}
		if !reached[i] {
			reached[i] = true
			count++
			stack = append(stack, int32(i))
		}
	}
	edgeCount := 0 // of the reached nodes
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		refs := g.refs.of(int(i))
		edgeCount += len(refs)
		for _, j := range refs {
			if !reached[j] {
				reached[j] = true
				count++
				stack = append(stack, j)
			}
		}
	}
	if count == len(g.nodes) {
		return g, nil
	}

	// Walking g.nodes in order keeps the sub-graph's nodes sorted, and
	// renumbering keeps the positions' order.
	newPosition := make([]int32, len(g.nodes))
	sub := &Graph{storeDir: g.storeDir, nodes: make([]node, 0, count)}
	sub.refs = edges{start: make([]int32, 1, count+1), to: make([]int32, 0, edgeCount)}
	for i, n := range g.nodes {
		if reached[i] {
			newPosition[i] = int32(len(sub.nodes))
			sub.nodes = append(sub.nodes, n)
		}
	}
	for i := range g.nodes {
		if reached[i] {
			for _, j := range g.refs.of(i) {
				sub.refs.to = append(sub.refs.to, newPosition[j]) // a closure holds all references
			}
			sub.refs.start = append(sub.refs.start, int32(len(sub.refs.to)))
		}
	}
	sub.referrers = sub.refs.invert()
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
			refs := g.refs.of(top.node)
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
					cycle = append(cycle, g.nodes[f.node].path)
				}
				return append(cycle, g.nodes[ref].path)
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
