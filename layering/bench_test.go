package layering

import (
	"testing"

	"github.com/storepack/storepack/layering/internal/corpus"
	"github.com/storepack/storepack/store"
)

// BenchmarkPlan100k plans a synthetic closure of 100,000 paths, shaped like
// the Debian closures of the reuse benchmark, with the default budget.
func BenchmarkPlan100k(b *testing.B) {
	g, err := corpus.Synthetic(100_000, 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, strategy := range Strategies() {
		b.Run(strategy, func(b *testing.B) { benchmarkPlan(b, g, strategy) })
	}
}

// BenchmarkPlan100kShapes plans, with storepack, 100,000-path graphs of
// shapes the reuse benchmark's closures do not have: a random sparse graph
// and an image of as many programs sharing one library, both with far
// more roots than the greedy takes.
func BenchmarkPlan100kShapes(b *testing.B) {
	for name, g := range map[string]*store.Graph{
		"sparse-dag": sparseDAG(b, 100_000, 5),
		"many-roots": manyRoots(b, 100_000),
	} {
		b.Run(name, func(b *testing.B) { benchmarkPlan(b, g, "storepack") })
	}
}

func benchmarkPlan(b *testing.B, g *store.Graph, strategy string) {
	for b.Loop() {
		if _, err := NewPlan(g, Options{Strategy: strategy, MaxLayers: 100}); err != nil {
			b.Fatal(err)
		}
	}
}
