package layering

import (
	"cmp"
	"math/bits"
	"slices"
)

const (
	// coarsenAbove is the number of groups above which grouping starts
	// with the cheaper absorbing pass (see coarsen): pricing a join of two
	// arbitrary groups means merging their sketches, and the greedy prices
	// every link, some many times, which would take seconds for 100,000
	// paths. Real closures rarely have more paths than this, so most plans
	// never take the shortcut. It costs quality: on the reuse benchmark
	// (make bench-layering), a smaller bound raises storepack's overhead
	// measurably.
	coarsenAbove = 2048

	// maxLinks is the number of linked pairs of groups above which the
	// absorbing pass goes on, halving the groups each time, before the
	// greedy starts: its work grows with the links, and a dense graph
	// coarsened to coarsenAbove groups links most pairs of them (a random
	// graph of 100,000 paths with five references each does). Debian-like
	// closures of 100,000 paths keep far fewer links and never go on.
	maxLinks = 16 * coarsenAbove

	// rootWeightFactor is how much of the closure a root counts for (see
	// grouping.rootWeight). Half: application releases are a large share
	// of all releases. The benchmark hardly moves between 0.25 and 1.
	rootWeightFactor = 0.5

	// horizonChanges is how many changed paths the price of a join looks
	// ahead to (see grouping.horizon). The benchmark hardly moves between
	// 1 and 16.
	horizonChanges = 4

	// marginFlips is how many joins are expected to come undone or be
	// made anew, over the price's horizon, because the number of paths
	// moves (see grouping.flipRisk). On the reuse benchmark's held-out
	// histories, 1 to 4 all make storepack ship more than auto on far
	// fewer histories (see docs/performance.md); 2 loses least in total.
	marginFlips = 2
)

// grouping partitions paths into groups for storepack and joins groups two
// at a time, cheapest first. Joining groups A and B raises
// Σ size(S)·|closure(S)| (see storepack) by
//
//	(size(A)+size(B))·|closure(A ∪ B)| − size(A)·|closure(A)| − size(B)·|closure(B)|
//
// which, divided by the closure's total weight (its paths, a root counting
// for more), is what the join wastes on average per changed path from then
// on. A group that is still a layer of the previous image costs its size as
// well when it is first joined: that layer must then be pushed again.
//
// A join also risks being made or undone from one release to the next:
// with a budget of K and n paths the plan makes the n−K cheapest joins, so
// when a release adds or removes paths, the joins at the margin change,
// and each layer a changed join makes or breaks is pushed again even if
// none of its paths changed. Nothing tells which joins will be at the
// margin, so each of the n−K bears an equal share of the marginFlips
// expected over the horizon (see flipRisk): near the budget every join is
// marginal and a join of big paths costs what pushing them again costs;
// far above it this share vanishes. The price counts what the join would
// push again beyond what changes anyway: a group that nearly every change
// reaches (the application's) costs little, a library far down a lot.
// Without this, the previous budget's plan moved big libraries such as libc
// from layer to layer as dependencies came and went, and shipped more than
// nixpkgs' auto-layer on many more histories (see docs/performance.md).
//
// Only groups joined by a reference are candidates: their closures overlap
// the most, and on the reuse benchmark, pricing every pair of groups of
// similar closure size as well gives worse plans, not better.
type grouping struct {
	x        *indexed
	leader   []int32   // union-find forest over path indexes; a group is named by its root
	size     []float64 // by group: the NAR size of its paths
	closure  []sketch  // by group: the union of its paths' closures (other paths' entries are stale)
	weight   []float64 // by group: closure[group].count(), plus rootWeight per root in it
	roots    []int     // by group: how many roots it holds
	keptSize []float64 // by group: its size if it is a whole layer of the previous image, else 0
	version  []uint32  // by group: how often it grew, to tell stale candidates
	count    int       // number of groups
	scratch  sketch

	// rootWeight is how many paths a root (a path nothing references:
	// the application) counts for in a closure: releases change the
	// application far more often than any one library, so a layer holding
	// it changes far more often than its closure size says.
	rootWeight float64

	// horizon turns the growth of Σ size(S)·|closure(S)| into bytes
	// wasted over the changes to come, to weigh it against pushing a
	// previous layer again now.
	horizon float64

	// totalWeight is the closure's total weight: its paths, a root
	// counting for rootWeight more.
	totalWeight float64

	// flipRisk is the share of the expected margin flips that each join
	// bears, set by reduce for its budget.
	flipRisk float64

	// referrers is x.referrers(), once coarsen needs it.
	referrers [][]int32
}

// newGrouping starts with every path alone.
func newGrouping(x *indexed) *grouping {
	g := &grouping{
		x:          x,
		leader:     make([]int32, x.len()),
		size:       make([]float64, x.len()),
		closure:    closureSketches(x),
		weight:     make([]float64, x.len()),
		roots:      make([]int, x.len()),
		keptSize:   make([]float64, x.len()),
		version:    make([]uint32, x.len()),
		count:      x.len(),
		scratch:    make(sketch, 0, sketchSize),
		rootWeight: float64(x.len()) * rootWeightFactor,
	}
	referenced := make([]bool, x.len())
	for _, refs := range x.refs {
		for _, ref := range refs {
			referenced[ref] = true
		}
	}
	for i := range g.leader {
		g.leader[i] = int32(i)
		g.size[i] = float64(x.sizes[i])
		if !referenced[i] {
			g.roots[i] = 1
		}
		g.weight[i] = g.closure[i].count() + g.rootWeight*float64(g.roots[i])
		g.totalWeight += 1 + g.rootWeight*float64(g.roots[i])
	}
	g.horizon = horizonChanges / g.totalWeight
	return g
}

// clone returns a copy of g that shares nothing it could change.
func (g *grouping) clone() *grouping {
	c := *g
	c.leader = slices.Clone(g.leader)
	c.size = slices.Clone(g.size)
	c.closure = cloneSketches(g.closure)
	c.weight = slices.Clone(g.weight)
	c.roots = slices.Clone(g.roots)
	c.keptSize = slices.Clone(g.keptSize)
	c.version = slices.Clone(g.version)
	c.scratch = make(sketch, 0, sketchSize)
	return &c
}

// keep joins the paths of each kept group (a whole layer of the previous
// image), which then costs its size to join to anything else.
func (g *grouping) keep(kept [][]int32) {
	for _, group := range kept {
		for _, i := range group[1:] {
			g.join(group[0], i)
		}
		leader := g.find(group[0])
		g.keptSize[leader] = g.size[leader]
	}
}

// expectedPush is what the grouping is expected to push: now, each group
// that is not a whole layer of kept (those are in the registry already);
// then, over the horizon, Σ size·weight as the price counts it (see
// grouping), which differs between groupings by the bytes they waste.
func (g *grouping) expectedPush(kept [][]int32) float64 {
	keptAt := make([]int, g.x.len()) // by path: 1 + the kept layer holding it, or 0
	for k, group := range kept {
		for _, i := range group {
			keptAt[i] = k + 1
		}
	}
	paths := make([]int, g.x.len())  // by group: how many paths it holds
	whole := make([]bool, g.x.len()) // by group: all its paths are in its leader's kept layer
	for i := range whole {
		whole[i] = true
	}
	for i := range g.leader {
		leader := g.find(int32(i))
		paths[leader]++
		whole[leader] = whole[leader] && keptAt[i] > 0 && keptAt[i] == keptAt[leader]
	}
	var now, later float64
	for leader, n := range paths {
		if n == 0 {
			continue
		}
		if !whole[leader] || n != len(kept[keptAt[leader]-1]) {
			now += g.size[leader]
		}
		later += g.size[leader] * g.weight[leader]
	}
	return now + g.horizon*later
}

// find returns the group of path i.
func (g *grouping) find(i int32) int32 {
	for g.leader[i] != i {
		g.leader[i] = g.leader[g.leader[i]]
		i = g.leader[i]
	}
	return i
}

// price is the price of joining groups a and b.
func (g *grouping) price(a, b int32) float64 {
	g.scratch = union(g.scratch, g.closure[a], g.closure[b])
	joined := g.scratch.count() + g.rootWeight*float64(g.roots[a]+g.roots[b])
	growth := (g.size[a]+g.size[b])*joined - g.size[a]*g.weight[a] - g.size[b]*g.weight[b]
	return g.horizon*growth + g.keptSize[a] + g.keptSize[b] + g.flipRisk*(g.unchanged(a)+g.unchanged(b))
}

// unchanged is the bytes of group a that a change is not expected to push
// anyway: its size times the chance that a changed path is outside its
// closure.
func (g *grouping) unchanged(a int32) float64 {
	return g.size[a] * max(0, 1-g.weight[a]/g.totalWeight)
}

// join merges the groups of paths a and b into one, named by the smaller
// index.
func (g *grouping) join(a, b int32) {
	a, b = g.find(a), g.find(b)
	a, b = min(a, b), max(a, b)
	g.scratch = union(g.scratch, g.closure[a], g.closure[b])
	g.closure[a] = append(g.closure[a][:0], g.scratch...) // the slice has room: see closureSketches
	g.roots[a] += g.roots[b]
	g.weight[a] = g.closure[a].count() + g.rootWeight*float64(g.roots[a])
	g.keptSize[a] = 0
	g.size[a] += g.size[b]
	g.version[a]++
	g.leader[b] = a
	g.count--
}

// reduce joins groups until at most budget remain.
func (g *grouping) reduce(budget int) {
	if g.count <= budget {
		return
	}
	g.flipRisk = marginFlips / float64(g.count-budget)
	if g.count > coarsenAbove {
		g.coarsen(max(budget, coarsenAbove))
	}
	pairs := g.linkedGroups()
	for limit := coarsenAbove / 2; len(pairs) > maxLinks && limit >= budget; limit /= 2 {
		g.coarsen(limit)
		pairs = g.linkedGroups()
	}
	q := &mergeQueue{pending: make(map[[2]int32]bool)}
	for _, pair := range pairs {
		g.offerJoin(q, pair[0], pair[1])
	}
	g.drain(q, budget)
	if g.count > budget {
		// Parts that no reference joins, such as roots with nothing in
		// common: pair up groups of similar closure size.
		groups := g.byWeight(func(int32) bool { return true })
		for k := 1; k < len(groups); k++ {
			g.offerJoin(q, groups[k-1], groups[k])
		}
		g.drain(q, budget)
	}
}

// linkedGroups returns each pair of groups that a reference joins, once,
// ordered by their leaders.
func (g *grouping) linkedGroups() [][2]int32 {
	if g.count <= linkMatrixGroups {
		return g.linkedGroupsByMatrix()
	}
	return g.linkedGroupsBySort()
}

// linkedGroupsBySort is linkedGroups for many groups.
func (g *grouping) linkedGroupsBySort() [][2]int32 {
	var keys []uint64
	for i, refs := range g.x.refs {
		for _, ref := range refs {
			if a, b := g.find(int32(i)), g.find(ref); a != b {
				keys = append(keys, uint64(min(a, b))<<32|uint64(max(a, b)))
			}
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	pairs := make([][2]int32, len(keys))
	for k, key := range keys {
		pairs[k] = [2]int32{int32(key >> 32), int32(key & (1<<32 - 1))}
	}
	return pairs
}

// linkMatrixGroups is the number of groups up to which linkedGroups marks
// links in a bit matrix (2 MiB at most) rather than sorting one key per
// reference: a closure coarsened to a few thousand groups still has all
// its references, millions in a dense graph, and most link the same pairs.
const linkMatrixGroups = 4096

// linkedGroupsByMatrix is linkedGroups for few groups.
func (g *grouping) linkedGroupsByMatrix() [][2]int32 {
	var leaders []int32
	rank := make([]int32, g.x.len()) // by leader: its place in leaders, which follow the leaders' order
	for i := range g.leader {
		if g.find(int32(i)) == int32(i) {
			rank[i] = int32(len(leaders))
			leaders = append(leaders, int32(i))
		}
	}
	n := len(leaders)
	linked := make([]uint64, (n*n+63)/64) // bit a*n+b: groups a < b are linked
	for i, refs := range g.x.refs {
		for _, ref := range refs {
			if a, b := rank[g.find(int32(i))], rank[g.find(ref)]; a != b {
				bit := int(min(a, b))*n + int(max(a, b))
				linked[bit/64] |= 1 << (bit % 64)
			}
		}
	}
	var pairs [][2]int32
	for w, word := range linked {
		for word != 0 {
			bit := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			pairs = append(pairs, [2]int32{leaders[bit/n], leaders[bit%n]})
		}
	}
	return pairs
}

// offerJoin offers the join of the groups of paths a and b, priced now.
func (g *grouping) offerJoin(q *mergeQueue, a, b int32) {
	a, b = g.find(a), g.find(b)
	if a != b {
		a, b = min(a, b), max(a, b)
		if !q.pending[[2]int32{a, b}] {
			q.push(candidate{price: g.price(a, b), a: a, b: b, versionA: g.version[a], versionB: g.version[b]})
		}
	}
}

// drain joins the cheapest candidates of q until at most budget groups
// remain or no candidate is left. Prices are computed when a candidate is
// offered; one that has grown stale since, because one of its groups took in
// another, is priced again and put back (the usual lazy greedy: prices
// grow as groups do, so a stale price is a lower bound, and the candidate
// is joined only once its fresh price is the least in the queue).
func (g *grouping) drain(q *mergeQueue, budget int) {
	for g.count > budget && len(q.heap) > 0 {
		c := q.pop()
		a, b := g.find(c.a), g.find(c.b)
		if a == b {
			continue
		}
		if min(a, b) != c.a || max(a, b) != c.b || g.version[c.a] != c.versionA || g.version[c.b] != c.versionB {
			g.offerJoin(q, a, b)
			continue
		}
		g.join(a, b)
	}
}

// coarsen absorbs groups into groups that reference them, cheapest first,
// until at most limit groups remain or none can be absorbed, and then
// joins groups of roots, which nothing references (see joinRoots).
//
// Here every group has a top, a path from which all its paths are
// reachable: its leader. A group B whose top a path of group A references
// lies wholly in A's closure, so absorbing B leaves A's closure as it was
// and the price is exact without sketches, size(B)·(weight(A) − weight(B)).
// Of the groups referencing B, the one of least weight is cheapest, and
// stays so until it is itself absorbed (weights only grow), so each group
// needs one candidate at a time. Joining unrelated groups (two roots, or
// two libraries used side by side) is left to the greedy, which is why
// this is only a first pass for large graphs. Whole layers of the previous
// image have no top and are left alone.
func (g *grouping) coarsen(limit int) {
	if g.referrers == nil { // a dense graph is coarsened more than once
		g.referrers = g.x.referrers()
	}
	referrers := g.referrers
	q := &mergeQueue{}
	for top := range g.leader {
		g.offerAbsorb(q, referrers, int32(top))
	}
	for g.count > limit && len(q.heap) > 0 {
		c := q.pop()
		into, top := c.a, c.b
		if g.find(top) != top {
			continue // absorbed already
		}
		if g.find(into) != into || g.version[top] != c.versionB {
			g.offerAbsorb(q, referrers, top)
			continue
		}
		g.leader[top] = into
		g.size[into] += g.size[top]
		g.version[into]++
		g.count--
	}
	if g.count > limit {
		g.joinRoots(g.count - limit)
	}
}

// joinRoots makes up to excess joins among the groups that hold roots,
// which absorbing never joins: a closure of many roots (a random graph,
// an image of thousands of programs) would otherwise leave the greedy more
// groups than it can price in time. Groups of similar closure size are
// joined, in runs of neighbours by weight, as the greedy would pair
// unrelated parts (see reduce).
func (g *grouping) joinRoots(excess int) {
	groups := g.byWeight(func(leader int32) bool { return g.roots[leader] > 0 && g.keptSize[leader] == 0 })
	if len(groups) < 2 {
		return
	}
	runs := max(1, len(groups)-excess) // groups left: run k is groups[k*len/runs : (k+1)*len/runs]
	for k := range runs {
		run := groups[k*len(groups)/runs : (k+1)*len(groups)/runs]
		for _, i := range run[1:] {
			g.join(run[0], i)
		}
	}
}

// byWeight returns the groups that take accepts, by their leaders, lightest
// first (ties by leader).
func (g *grouping) byWeight(take func(leader int32) bool) []int32 {
	var groups []int32
	for i := range g.leader {
		if leader := int32(i); g.find(leader) == leader && take(leader) {
			groups = append(groups, leader)
		}
	}
	slices.SortFunc(groups, func(a, b int32) int { return cmp.Or(cmp.Compare(g.weight[a], g.weight[b]), cmp.Compare(a, b)) })
	return groups
}

// offerAbsorb offers absorbing the group whose top is top into the
// cheapest group that references it (see coarsen).
func (g *grouping) offerAbsorb(q *mergeQueue, referrers [][]int32, top int32) {
	if g.find(top) != top || g.keptSize[top] > 0 {
		return
	}
	into := int32(-1)
	for _, referrer := range referrers[top] {
		group := g.find(referrer)
		if g.keptSize[group] == 0 && (into < 0 || g.weight[group] < g.weight[into] || g.weight[group] == g.weight[into] && group < into) {
			into = group
		}
	}
	if into >= 0 {
		q.push(candidate{price: g.horizon * g.size[top] * (g.weight[into] - g.weight[top]), a: into, b: top, versionB: g.version[top]})
	}
}

// groups returns the groups, each ascending, ordered by their first path.
func (g *grouping) groups() [][]int32 {
	slot := make([]int32, g.x.len()) // by leader: 1 + its group's place in groups
	var groups [][]int32
	for i := range g.leader {
		leader := g.find(int32(i))
		if slot[leader] == 0 {
			groups = append(groups, nil)
			slot[leader] = int32(len(groups))
		}
		k := slot[leader] - 1
		groups[k] = append(groups[k], int32(i))
	}
	return groups
}

// byStability sorts groups by weight, the estimated number of paths whose
// change would change them, least first.
func (g *grouping) byStability(groups [][]int32) [][]int32 {
	return g.x.sortGroups(groups, func(group []int32) float64 { return g.weight[g.find(group[0])] })
}

// candidate is a possible join of groups a and b (or absorption of b into
// a), priced when the groups had the given versions.
type candidate struct {
	price              float64
	a, b               int32
	versionA, versionB uint32
}

// cheaper orders candidates cheapest first, ties by groups.
func cheaper(c, d candidate) bool {
	if c.price != d.price {
		return c.price < d.price
	}
	if c.a != d.a {
		return c.a < d.a
	}
	return c.b < d.b
}

// mergeQueue is a min-heap of candidates. If it tracks pending pairs, it
// holds at most one candidate per pair of groups: a group that took in many
// paths has many links to each neighbour, and one candidate speaks for them
// all.
type mergeQueue struct {
	heap    []candidate
	pending map[[2]int32]bool // nil if not tracked
}

// push adds a candidate; the caller checks that none for the same pair
// is pending, before pricing it, as pricing can be dear.
func (q *mergeQueue) push(c candidate) {
	if q.pending != nil {
		q.pending[[2]int32{c.a, c.b}] = true
	}
	q.heap = append(q.heap, c)
	for k := len(q.heap) - 1; k > 0; {
		parent := (k - 1) / 2
		if !cheaper(q.heap[k], q.heap[parent]) {
			break
		}
		q.heap[k], q.heap[parent] = q.heap[parent], q.heap[k]
		k = parent
	}
}

// pop removes and returns the cheapest candidate.
func (q *mergeQueue) pop() candidate {
	top := q.heap[0]
	if q.pending != nil {
		delete(q.pending, [2]int32{top.a, top.b})
	}
	last := len(q.heap) - 1
	q.heap[0] = q.heap[last]
	q.heap = q.heap[:last]
	for k := 0; ; {
		smallest := k
		if left := 2*k + 1; left < last && cheaper(q.heap[left], q.heap[smallest]) {
			smallest = left
		}
		if right := 2*k + 2; right < last && cheaper(q.heap[right], q.heap[smallest]) {
			smallest = right
		}
		if smallest == k {
			return top
		}
		q.heap[k], q.heap[smallest] = q.heap[smallest], q.heap[k]
		k = smallest
	}
}
