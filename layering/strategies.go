package layering

import "github.com/storepack/storepack/store"

const (
	// singleKey is the key of the one layer of the single strategy.
	singleKey = "closure"
	// catchAllKey is the key of the last layer of per-path and popularity
	// when the budget is too small for one layer per path.
	catchAllKey = "rest"
)

// single puts the whole closure into one layer: the smallest image
// metadata, and no reuse at all between versions.
func single(v *view, _ Options) ([]Layer, error) {
	if v.len() == 0 {
		return nil, nil
	}
	layer := Layer{Key: singleKey, Paths: v.paths}
	for _, size := range v.sizes {
		layer.Size = addSaturating(layer.Size, size)
	}
	return []Layer{layer}, nil
}

// perPath gives each store path its own layer, in dependency order. When
// there are more paths than MaxLayers, the first MaxLayers-1 paths of that
// order (the deepest dependencies, shared the most) get their own layers and
// the rest (the paths closest to the roots, which change most often) share
// a catch-all layer on top.
func perPath(v *view, opt Options) ([]Layer, error) {
	x, err := index(v)
	if err != nil {
		return nil, err
	}
	order := make([]int32, x.len())
	for i := range order {
		order[i] = int32(i)
	}
	return x.singletonsThenRest(order, opt.MaxLayers), nil
}

// layerKeys returns the key of each single-path layer: the path's name
// ("glibc-2.39-52"), which survives a rebuild with a new hash, so that a tool
// comparing two plans can pair the layers up. Where that name is not unique
// (two paths named "source", a path named like a reserved key) the key is the
// full base name instead, hash included: still stable, and unique.
func layerKeys(paths []store.Path, reserved ...string) []string {
	keys := make([]string, len(paths))
	for i, path := range paths {
		keys[i] = path.Name
	}
	// A name could even equal another path's base name, so repeat until no
	// key is taken twice. Each round turns at least one name into a base
	// name and base names never clash, so this ends.
	for {
		uses := make(map[string]int, len(keys)+len(reserved))
		for _, key := range keys {
			uses[key]++
		}
		for _, key := range reserved {
			uses[key]++
		}
		changed := false
		for i, key := range keys {
			if uses[key] > 1 && key != paths[i].Base() {
				keys[i] = paths[i].Base()
				changed = true
			}
		}
		if !changed {
			return keys
		}
	}
}
