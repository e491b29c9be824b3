package corpus

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/storepack/storepack/store"
)

// A History is a sequence of releases of one image.
type History struct {
	Name     string // the shape, e.g. "cli"
	Root     string // the Debian package at its top, e.g. "curl"
	Releases []Release
}

// A Release is the closure of one release and what changed since the one
// before.
type Release struct {
	Graph  *store.Graph
	Change Change
}

// Change is the kind of change that made a release.
type Change string

const (
	Initial     Change = "initial"      // the first release
	AppOnly     Change = "app"          // a new version of the application only
	OneLibrary  Change = "library"      // a new version of one dependency
	FewLibs     Change = "libraries"    // new versions of two to four dependencies
	MassRebuild Change = "mass-rebuild" // a new version of what all needs (libc's base): nearly every path changes
	AddedDep    Change = "added-dep"    // a path gains a dependency (and maybe new paths)
	RemovedDep  Change = "removed-dep"  // a path loses a dependency (and maybe paths)
)

// changeMix is the kinds of change of every history's releases after the
// first, in an order shuffled per history: mostly application releases
// and library updates, a few dependency changes, and two mass rebuilds.
var changeMix = []struct {
	change Change
	count  int
}{
	{AppOnly, 7}, {OneLibrary, 5}, {FewLibs, 4}, {AddedDep, 3}, {RemovedDep, 2}, {MassRebuild, 2},
}

// shapes are the closures of the corpus, from small to large; each root is
// a package of the fixture.
var shapes = []struct{ name, root string }{
	{"cli", "curl"},                    // a small command-line tool
	{"jvm", "openjdk-17-jre-headless"}, // a language runtime
	{"python-app", "ansible"},          // an interpreter with many modules
	{"server", "postgresql-15"},        // a database server
	{"science", "octave"},              // a numerical environment: large libraries
	{"gui-app", "kdenlive"},            // a large GUI application
	{"desktop", "gnome-core"},          // a desktop: the largest closure
}

// Histories returns the corpus: for each shape, a history of 24 releases.
func Histories() ([]History, error) {
	var histories []History
	for _, shape := range shapes {
		h, err := newHistory(shape.name, shape.root)
		if err != nil {
			return nil, fmt.Errorf("history %s: %w", shape.name, err)
		}
		histories = append(histories, h)
	}
	return histories, nil
}

// HeldOut returns histories the strategies were not tuned on, to check
// that what the benchmark shows is not an artefact of its seven shapes:
// count histories rooted at other packages of the fixture, every package
// whose closure has between minPaths and maxPaths paths taken in turn
// (about every step-th of them, in the fixture's order), each with its own
// seed.
func HeldOut(count int) ([]History, error) {
	const minPaths, maxPaths = 16, 1000
	packages, names, err := universe()
	if err != nil {
		return nil, err
	}
	w := &world{packages: packages, names: names}
	tuned := make(map[string]bool)
	for _, shape := range shapes {
		tuned[shape.root] = true
	}
	var roots []string
	for _, name := range names {
		if n := len(w.closureOf(name)); !tuned[name] && n >= minPaths && n <= maxPaths {
			roots = append(roots, name)
		}
	}
	if len(roots) < count {
		return nil, fmt.Errorf("the fixture has %d roots with %d to %d paths, fewer than %d", len(roots), minPaths, maxPaths, count)
	}
	var histories []History
	for k := range count {
		root := roots[k*len(roots)/count]
		h, err := newHistory("held-out/"+root, root)
		if err != nil {
			return nil, fmt.Errorf("held-out history %s: %w", root, err)
		}
		histories = append(histories, h)
	}
	return histories, nil
}

// world is a history's copy of the universe, changed release by release.
type world struct {
	packages map[string]*pkg
	names    []string // every package, dependencies before dependents
	root     string
	rng      *rand.Rand
}

func newHistory(name, root string) (History, error) {
	packages, names, err := universe()
	if err != nil {
		return History{}, err
	}
	if packages[root] == nil {
		return History{}, fmt.Errorf("root %s is not in the fixture", root)
	}
	seed := fnv.New64a()
	seed.Write([]byte(name))
	w := &world{packages: packages, names: names, root: root, rng: rand.New(rand.NewPCG(seed.Sum64(), 20240601))}

	var changes []Change
	for _, mix := range changeMix {
		for range mix.count {
			changes = append(changes, mix.change)
		}
	}
	w.rng.Shuffle(len(changes), func(i, j int) { changes[i], changes[j] = changes[j], changes[i] })
	changes = append([]Change{Initial}, changes...)

	h := History{Name: name, Root: root}
	for _, change := range changes {
		w.apply(change)
		g, err := w.graph()
		if err != nil {
			return History{}, err
		}
		h.Releases = append(h.Releases, Release{Graph: g, Change: change})
	}
	return h, nil
}

// closure returns the names of the packages the root needs.
func (w *world) closure() []string { return w.closureOf(w.root) }

// closureOf returns name and the packages it needs, directly or not, each
// after its dependencies.
func (w *world) closureOf(name string) []string {
	var order []string
	seen := make(map[string]bool)
	var visit func(name string)
	visit = func(name string) {
		seen[name] = true
		for _, dep := range w.packages[name].deps {
			if !seen[dep] {
				visit(dep)
			}
		}
		order = append(order, name)
	}
	visit(name)
	return order
}

// graph returns the store closure of the current release.
func (w *world) graph() (*store.Graph, error) {
	paths := make(map[string]store.Path)
	var infos []store.Info
	for _, name := range w.closure() {
		p := w.packages[name]
		depHashes := make([]string, len(p.deps))
		info := store.Info{NarSize: p.size}
		for i, dep := range p.deps {
			depHashes[i] = paths[dep].Hash
			info.References = append(info.References, paths[dep])
		}
		slices.Sort(depHashes)
		info.Path = storePath(p, depHashes)
		paths[name] = info.Path
		infos = append(infos, info)
	}
	return store.NewGraph(infos)
}

// apply makes the change in the world.
func (w *world) apply(change Change) {
	closure := w.closure()
	libraries := slices.DeleteFunc(slices.Clone(closure), func(name string) bool { return name == w.root })
	if len(libraries) == 0 && change != MassRebuild && change != AddedDep {
		// A removed dependency can leave the root alone.
		change = AppOnly
	}
	switch change {
	case AppOnly:
		w.bump(w.root)
	case OneLibrary:
		w.bump(libraries[w.rng.IntN(len(libraries))])
	case FewLibs:
		w.rng.Shuffle(len(libraries), func(i, j int) { libraries[i], libraries[j] = libraries[j], libraries[i] })
		for _, name := range libraries[:min(len(libraries), 2+w.rng.IntN(3))] {
			w.bump(name)
		}
	case MassRebuild:
		w.bump(w.mostUsed(closure))
	case AddedDep:
		w.addDependency(closure)
	case RemovedDep:
		w.removeDependency(closure)
	}
}

// bump gives a package a new version (its last number goes up, as in
// 7.88.1-10+deb12u15 to 7.88.1-10+deb12u16) and a slightly different size.
func (w *world) bump(name string) {
	old := w.packages[name]
	p := *old
	end := len(p.version)
	for end > 0 && !isDigit(p.version[end-1]) {
		end--
	}
	start := end
	for start > 0 && isDigit(p.version[start-1]) {
		start--
	}
	if start == end {
		p.version += ".1"
	} else {
		n, _ := strconv.Atoi(p.version[start:end])
		p.version = p.version[:start] + strconv.Itoa(n+1) + p.version[end:]
	}
	p.size = p.size * uint64(95+w.rng.IntN(11)) / 100
	w.packages[name] = &p
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// mostUsed returns the package of the closure that the most packages of the
// closure need, directly or not: in every shape gcc-12-base, under
// libgcc-s1 and libc6 (see mkfixture on the cycle between those two).
func (w *world) mostUsed(closure []string) string {
	users := make(map[string]int)
	for _, name := range closure {
		for _, needed := range w.closureOf(name) {
			users[needed]++
		}
	}
	best := closure[0]
	for _, name := range closure {
		if users[name] > users[best] {
			best = name
		}
	}
	return best
}

// addDependency makes the root or a random package of the closure depend on
// a package outside the closure that brings at most maxNew new packages,
// like an application or a library starting to use one more library.
func (w *world) addDependency(closure []string) {
	const maxNew = 10
	user := w.pickUser(closure)
	inClosure := make(map[string]bool, len(closure))
	for _, name := range closure {
		inClosure[name] = true
	}
	var candidates []string
	for _, name := range w.names {
		if inClosure[name] {
			continue
		}
		needed := w.closureOf(name)
		newPackages := 0
		for _, dep := range needed {
			if !inClosure[dep] {
				newPackages++
			}
		}
		// A candidate that needs user would close a cycle.
		if newPackages <= maxNew && !slices.Contains(needed, user) {
			candidates = append(candidates, name)
		}
	}
	if len(candidates) == 0 {
		w.bump(user)
		return
	}
	p := *w.packages[user]
	p.deps = append(slices.Clone(p.deps), candidates[w.rng.IntN(len(candidates))])
	w.packages[user] = &p
}

// removeDependency makes the root or a random package of the closure drop
// one of its dependencies; what nothing else needs leaves the closure.
func (w *world) removeDependency(closure []string) {
	user := w.pickUser(closure)
	for len(w.packages[user].deps) == 0 {
		user = closure[w.rng.IntN(len(closure))]
	}
	p := *w.packages[user]
	drop := w.rng.IntN(len(p.deps))
	p.deps = slices.Delete(slices.Clone(p.deps), drop, drop+1)
	w.packages[user] = &p
}

// pickUser returns the package whose dependencies change: the root half of
// the time, else a random package of the closure.
func (w *world) pickUser(closure []string) string {
	if w.rng.IntN(2) == 0 {
		return w.root
	}
	return closure[w.rng.IntN(len(closure))]
}
