package corpus

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/storepack/storepack/store"
)

// Synthetic returns a closure of n paths for timing the strategies,
// calibrated on the fixture: each path takes its number of dependencies and
// its size from a random package of the fixture. Half of the dependencies
// are picked in proportion to how used a path already is, the rest
// uniformly among the older paths, which grows hubs like libc and a long
// tail of leaves, as real distributions have. The last path is the root:
// it references every path nothing else does, as the profile or buildEnv
// at the top of an image references its packages. The same n and seed
// always give the same graph.
func Synthetic(n int, seed uint64) (*store.Graph, error) {
	if n < 1 {
		return nil, errors.New("a synthetic closure needs at least one path")
	}
	packages, names, err := universe()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	hash := func(label string) string {
		sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d/%s", seed, n, label))
		return nix32(sum[:])
	}
	paths := make([]store.Path, n)
	infos := make([]store.Info, n)
	var targets []int // one entry per reference made so far: picking from it favours hubs
	referenced := make([]bool, n)
	for i := range n - 1 {
		model := packages[names[rng.IntN(len(names))]]
		paths[i] = store.Path{Dir: storeDir, Hash: hash(fmt.Sprint(i)), Name: storeName(fmt.Sprintf("%s-i%d", model.name, i), model.version)}
		infos[i] = store.Info{Path: paths[i], NarSize: model.size}
		for range min(len(model.deps), i) {
			var dep int
			if len(targets) > 0 && rng.IntN(2) == 0 {
				dep = targets[rng.IntN(len(targets))]
			} else {
				dep = rng.IntN(i)
			}
			infos[i].References = append(infos[i].References, paths[dep])
			targets = append(targets, dep)
			referenced[dep] = true
		}
	}
	root := store.Info{Path: store.Path{Dir: storeDir, Hash: hash("root"), Name: "profile"}}
	for i, p := range paths[:n-1] {
		if !referenced[i] {
			root.References = append(root.References, p)
		}
	}
	infos[n-1] = root
	return store.NewGraph(infos)
}
