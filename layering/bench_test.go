package layering

import (
	"testing"

	"github.com/storepack/storepack/layering/internal/corpus"
)

// BenchmarkPlan100k plans a synthetic closure of 100,000 paths, shaped like
// the Debian closures of the reuse benchmark, with the default budget.
func BenchmarkPlan100k(b *testing.B) {
	g, err := corpus.Synthetic(100_000, 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, strategy := range Strategies() {
		b.Run(strategy, func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(g, Options{Strategy: strategy, MaxLayers: 100}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
