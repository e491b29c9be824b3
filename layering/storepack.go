package layering

// storepack is the default strategy. It groups paths so that a new release
// re-ships as few unchanged bytes as it can, and keeps the previous image's
// layers wherever they are still whole.
//
// The model. In Nix a path changes whenever anything in its closure changes,
// so a layer changes whenever anything in the union of its paths' closures
// does, and then every path of it that did not change is pushed for nothing.
// If any path of the closure is as likely as any other to be the one a
// release changes, a layer S wastes on average, per change,
//
//	Σ_{p ∈ S} size(p) · (|closure(S)| − |closure(p)|) / |graph|,
//
// and since Σ size(p)·|closure(p)| is the same for every plan, the plan
// should make Σ_S size(S)·|closure(S)| small. Joining a big library to
// what uses it costs its size times what its users add to the closure;
// joining paths whose closures are nearly the same (an application and
// its private modules, or small leaves) costs little.
//
// The greedy. Starting with one group per path, storepack repeatedly joins
// the two groups, linked by a reference, whose union raises that sum the
// least, until the groups fit the budget (see grouping). Near the budget it
// also prices the risk that a join is made or undone when the next release
// adds or drops a few paths, which ships the joined layers again: there it
// joins small paths rather than big ones. Closure sizes come
// from sketches keyed by path names, so that small changes elsewhere in the
// graph do not shift the plan.
//
// The previous layout. A layer of Options.Previous whose paths are all in
// the graph costs nothing to push as it is, so it starts out as a group of
// its own, and joining it to anything costs its size on top of the usual
// price: it is given up only where the budget leaves no cheaper join, for
// example to make room for big new paths that would otherwise have to share
// a layer with the application. The other paths (new ones, and the rest of
// broken layers) must be pushed anyway and are grouped afresh.
//
// Keeping a layer is free now but may cost later: its paths stay together
// though the new closure would group them better, and each release that
// changes one pushes them all again. The greedy never prices that, as a
// kept layer starts out whole, so storepack also plans as if there were no
// previous image and takes that plan instead if it is expected to push
// less, counting what it pushes now (its layers that the previous image
// lacks) and the waste its closures imply over the greedy's horizon.
// Without this, a layer kept through one release could cost more in the
// next few than pushing it again would have.
//
// Layers are ordered most stable first: by the estimated size of their
// closure, the number of paths whose change would change the layer (a root
// counting for many). A client that has the bottom layers of the chain can
// reuse them only if everything below is the same, so the layers least
// likely to change go first.
//
// Each layer is keyed by the name of its largest path, "package name and
// version", which survives rebuilds.
func storepack(v *view, opt Options) ([]Layer, error) {
	x, err := index(v)
	if err != nil {
		return nil, err
	}
	g := newGrouping(x)
	if kept := wholeLayers(x, opt.Previous); len(kept) > 0 {
		fresh := g.clone()
		g.keep(kept)
		g.reduce(opt.MaxLayers)
		fresh.reduce(opt.MaxLayers)
		if fresh.expectedPush(kept) < g.expectedPush(kept) {
			g = fresh
		}
	} else {
		g.reduce(opt.MaxLayers)
	}
	return x.layersOf(g.byStability(g.groups())), nil
}

// wholeLayers returns the layers of a previous plan whose paths are all in
// the graph, as groups of path indexes.
//
// A previous plan comes from an image, so it is not trusted: a path in two
// of its layers counts for the first only, and paths not in the graph
// simply break their layer.
func wholeLayers(x *indexed, previous *Plan) [][]int32 {
	if previous == nil {
		return nil
	}
	var whole [][]int32
	taken := make([]bool, x.len())
	for _, layer := range previous.Layers {
		group := make([]int32, 0, len(layer.Paths))
		for _, p := range layer.Paths {
			i, ok := x.indexOf(p)
			if !ok || taken[i] {
				break
			}
			taken[i] = true
			group = append(group, i)
		}
		if len(group) < len(layer.Paths) {
			for _, i := range group {
				taken[i] = false
			}
			continue
		}
		if len(group) > 0 {
			whole = append(whole, group)
		}
	}
	return whole
}
