package main

import (
	"testing"

	"github.com/storepack/storepack/layering/internal/corpus"
)

// knownMisses are the goals storepack does not meet, by name: without the
// previous layout, on a few of the 21 histories and budgets it ships a
// little more than auto (docs/performance.md has the figures), from
// releases where the number of paths moves across the budget and both
// strategies must join layers that did not change. With the previous
// layout it meets them all. The held-out table's calibration rows (auto
// against itself with one layer less) show why a plan made without the
// previous layout cannot promise this one.
var knownMisses = map[string]bool{
	"storepack ships no more than auto on any history and budget": true,
}

// TestGoals replays the corpus and fails if storepack falls short of a goal
// it meets today: the benchmark as a regression test.
func TestGoals(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the whole corpus")
	}
	histories, err := corpus.Histories()
	if err != nil {
		t.Fatal(err)
	}
	r, err := measure(histories, variants, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range r.goals() {
		switch {
		case g.met && knownMisses[g.name]:
			t.Logf("now met, drop it from knownMisses: %s", g)
		case !g.met && !knownMisses[g.name]:
			t.Error(g)
		}
	}
}
