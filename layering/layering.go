// Package layering turns a closure graph into an ordered list of image layers.
//
// The strategies: single (one layer), per-path (a layer per path, capped),
// popularity and auto (the two layerings of nixpkgs' dockerTools, as
// baselines), and storepack, the default, which groups paths so that a new
// release re-ships as few unchanged bytes as it can and keeps the layers of
// the previous image (Options.Previous) where they are still whole. How
// they compare: go run ./layering/internal/reusebench.
//
// It is pure and deterministic: no I/O, and nothing in a plan depends on map
// order, time or the machine, so the same graph and options always give the
// same plan, whatever the order of the input. Each strategy is a function
// registered in strategies, and NewPlan checks every plan against the same
// rules.
package layering

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/storepack/storepack/store"
)

// DefaultStrategy is used when Options.Strategy is empty.
const DefaultStrategy = "storepack"

// Layer is one image layer: a set of whole store paths.
type Layer struct {
	// Key identifies the layer across builds, so that tools can tell which
	// layers of two plans correspond. It is derived from the content's
	// names, never from a rank or a position.
	Key   string       `json:"key"`
	Paths []store.Path `json:"paths"` // sorted; encoded as strings (store.Path is a TextMarshaler)
	Size  uint64       `json:"size"`  // sum of the paths' NarSize; 0 when unknown
}

// Plan is the result of NewPlan: the layers of the store part of an image.
type Plan struct {
	Strategy string  `json:"strategy"` // the strategy that made the plan, never empty
	Layers   []Layer `json:"layers"`   // bottom (applied first) to top
}

// Paths lists the plan's store paths, layer by layer, bottom first.
func (p Plan) Paths() []store.Path {
	var paths []store.Path
	for _, l := range p.Layers {
		paths = append(paths, l.Paths...)
	}
	return paths
}

// Options selects and tunes a strategy.
type Options struct {
	Strategy string // one of Strategies(); "" means DefaultStrategy

	// MaxLayers is the number of layers the plan may use, at least 1. The
	// caller has already subtracted the layers it needs for itself (base
	// image, customisation layer).
	MaxLayers int

	// Previous is the plan of the image's previous release, if known (it
	// is recorded in every image). storepack keeps the layers whose paths
	// are all still wanted, which the registry and the clients already
	// have, unless giving one up ships fewer bytes; the other strategies
	// ignore it. It is not trusted: it may name paths that are not in the
	// graph, or a path twice.
	Previous *Plan
}

// strategyFunc builds the layers of one strategy. It gets a validated
// Options (MaxLayers >= 1) and must return layers that NewPlan's checks accept.
type strategyFunc func(v *view, opt Options) ([]Layer, error)

var strategies = map[string]strategyFunc{
	"single":     single,
	"per-path":   perPath,
	"popularity": popularity,
	"auto":       auto,
	"storepack":  storepack,
}

// Strategies returns the names of the known strategies, sorted.
func Strategies() []string {
	names := make([]string, 0, len(strategies))
	for name := range strategies {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// NewPlan cuts the closure g into layers by opt.Strategy.
func NewPlan(g *store.Graph, opt Options) (Plan, error) {
	if opt.Strategy == "" {
		opt.Strategy = DefaultStrategy
	}
	build, ok := strategies[opt.Strategy]
	if !ok {
		return Plan{}, fmt.Errorf("unknown layering strategy %q (known: %s)", opt.Strategy, strings.Join(Strategies(), ", "))
	}
	if opt.MaxLayers < 1 {
		return Plan{}, fmt.Errorf("layer budget %d is too small: a plan needs at least 1 layer", opt.MaxLayers)
	}
	if g == nil {
		return Plan{}, errors.New("layering: no graph")
	}
	v := newView(g)
	layers, err := build(v, opt)
	if err != nil {
		return Plan{}, err
	}
	if layers == nil {
		layers = []Layer{} // encode as [], not null
	}
	plan := Plan{Strategy: opt.Strategy, Layers: layers}
	if err := plan.check(v, opt.MaxLayers); err != nil {
		// A strategy broke a rule: a bug, not bad input.
		return Plan{}, fmt.Errorf("layering strategy %s: internal error: %w", opt.Strategy, err)
	}
	return plan, nil
}

// check verifies the rules every plan follows, whatever the strategy: within
// budget, every path in exactly one non-empty layer, paths sorted, sizes
// right, keys unique. Layer order is the strategy's business: an image works
// whatever the order, since layers hold disjoint sets of paths.
func (p Plan) check(v *view, maxLayers int) error {
	if len(p.Layers) > maxLayers {
		return fmt.Errorf("%d layers, more than the budget of %d", len(p.Layers), maxLayers)
	}
	placed := make([]bool, v.len())
	count := 0
	keys := make(map[string]bool, len(p.Layers))
	for i, layer := range p.Layers {
		if len(layer.Paths) == 0 {
			return fmt.Errorf("layer %d (%s) is empty", i, layer.Key)
		}
		if layer.Key == "" || keys[layer.Key] {
			return fmt.Errorf("layer %d has an empty or repeated key %q", i, layer.Key)
		}
		keys[layer.Key] = true
		if !slices.IsSortedFunc(layer.Paths, store.Path.Compare) {
			return fmt.Errorf("layer %s: paths are not sorted", layer.Key)
		}
		var size uint64
		for _, path := range layer.Paths {
			at, ok := v.position(path)
			if !ok {
				return fmt.Errorf("layer %s: %s is not in the graph", layer.Key, path)
			}
			if placed[at] {
				return fmt.Errorf("%s is in two layers", path)
			}
			placed[at] = true
			count++
			size = addSaturating(size, v.sizes[at])
		}
		if size != layer.Size {
			return fmt.Errorf("layer %s: size %d, want %d", layer.Key, layer.Size, size)
		}
	}
	if count != v.len() {
		return fmt.Errorf("%d of %d paths are in no layer", v.len()-count, v.len())
	}
	return nil
}

// addSaturating adds NAR sizes. Real sizes never come near 2^64, but graph
// files are untrusted and a wrapped sum would be silently wrong.
func addSaturating(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}
