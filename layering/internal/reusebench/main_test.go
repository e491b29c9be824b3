package main

import "testing"

// knownMisses are the goals storepack does not meet, by name: without the
// previous layout, on three of the 21 histories and budgets it ships a
// little more than auto (0.06% to 0.22%), all from one release each where
// the number of paths moves across the budget and a different pair of
// layers has to be joined. With the previous layout it meets them all.
var knownMisses = map[string]bool{
	"storepack ships no more than auto on any history and budget": true,
}

// TestGoals replays the corpus and fails if storepack falls short of a goal
// it meets today: the benchmark as a regression test.
func TestGoals(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the whole corpus")
	}
	r, err := measure(false)
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
