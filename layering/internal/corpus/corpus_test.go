package corpus

import (
	"slices"
	"testing"

	"github.com/storepack/storepack/store"
)

func TestHistories(t *testing.T) {
	histories, err := Histories()
	if err != nil {
		t.Fatal(err)
	}
	if len(histories) < 5 {
		t.Errorf("%d histories, want at least 5", len(histories))
	}
	large := false
	for _, h := range histories {
		if len(h.Releases) < 20 {
			t.Errorf("%s: %d releases, want at least 20", h.Name, len(h.Releases))
		}
		kinds := make(map[Change]bool)
		for i, release := range h.Releases {
			kinds[release.Change] = true
			large = large || release.Graph.Len() >= 500
			if (i == 0) != (release.Change == Initial) {
				t.Errorf("%s release %d: change %s", h.Name, i, release.Change)
			}
			if i > 0 {
				checkRelease(t, h.Name, i, h.Releases[i-1].Graph, release)
			}
		}
		for _, mix := range changeMix {
			if !kinds[mix.change] {
				t.Errorf("%s: no %s release", h.Name, mix.change)
			}
		}
	}
	if !large {
		t.Errorf("no closure of 500 paths or more")
	}
}

// checkRelease checks Nix semantics: a path referencing a new path is new
// itself, and each kind of change changes what it should.
func checkRelease(t *testing.T, history string, i int, before *store.Graph, release Release) {
	t.Helper()
	old := make(map[store.Path]bool)
	for _, p := range before.Paths() {
		old[p] = true
	}
	g := release.Graph
	var fresh []store.Path
	for _, p := range g.Paths() {
		info, _ := g.Info(p)
		if !old[p] {
			fresh = append(fresh, p)
			continue
		}
		for _, ref := range info.References {
			if !old[ref] {
				t.Errorf("%s release %d: %s is unchanged but references the new %s", history, i, p, ref)
			}
		}
	}
	roots := 0
	for _, p := range g.Paths() {
		if len(g.Referrers(p)) == 0 {
			roots++
		}
	}
	switch release.Change {
	case AppOnly:
		if len(fresh) != 1 || len(g.Referrers(fresh[0])) != 0 {
			t.Errorf("%s release %d: an application release made %v new", history, i, fresh)
		}
	case MassRebuild:
		if len(fresh) < g.Len()*3/4 { // data packages without dependencies stay
			t.Errorf("%s release %d: a mass rebuild changed only %d of %d paths", history, i, len(fresh), g.Len())
		}
	case AddedDep, RemovedDep, OneLibrary, FewLibs:
		if len(fresh) == 0 {
			t.Errorf("%s release %d: %s changed nothing", history, i, release.Change)
		}
	}
	if roots != 1 {
		t.Errorf("%s release %d: %d roots, want 1", history, i, roots)
	}
}

func TestHistoriesAreReproducible(t *testing.T) {
	first, err := Histories()
	if err != nil {
		t.Fatal(err)
	}
	second, err := Histories()
	if err != nil {
		t.Fatal(err)
	}
	for h := range first {
		for i := range first[h].Releases {
			a, b := first[h].Releases[i].Graph, second[h].Releases[i].Graph
			if !slices.Equal(a.Paths(), b.Paths()) {
				t.Fatalf("%s release %d differs between two runs", first[h].Name, i)
			}
		}
	}
}

func TestSynthetic(t *testing.T) {
	g, err := Synthetic(5000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 5000 {
		t.Errorf("%d paths, want 5000", g.Len())
	}
	var roots []store.Path
	for _, p := range g.Paths() {
		if len(g.Referrers(p)) == 0 {
			roots = append(roots, p)
		}
	}
	if len(roots) != 1 || roots[0].Name != "profile" {
		t.Errorf("roots %v, want the profile alone", roots)
	}
	again, err := Synthetic(5000, 1)
	if err != nil || !slices.Equal(again.Paths(), g.Paths()) {
		t.Errorf("two graphs of the same seed differ (%v)", err)
	}
	if _, err := Synthetic(0, 1); err == nil {
		t.Errorf("Synthetic(0) did not fail")
	}
}

func TestHeldOut(t *testing.T) {
	histories, err := HeldOut(12)
	if err != nil {
		t.Fatal(err)
	}
	if len(histories) != 12 {
		t.Fatalf("%d histories, want 12", len(histories))
	}
	roots := make(map[string]bool)
	for _, shape := range shapes {
		roots[shape.root] = true
	}
	for _, h := range histories {
		if roots[h.Root] {
			t.Errorf("%s: root %s is held out twice, or is a tuned shape's", h.Name, h.Root)
		}
		roots[h.Root] = true
		for i, release := range h.Releases[1:] {
			checkRelease(t, h.Name, i+1, h.Releases[i].Graph, release)
		}
	}
	if _, err := HeldOut(100_000); err == nil {
		t.Errorf("HeldOut(100000) did not fail")
	}
}
