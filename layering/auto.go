package layering

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// auto is nixpkgs' current default layering (auto-layer, 2024), rebuilt from
// its description: large paths become "primaries", and every path is keyed
// by the set of primaries that use it; paths with the same key share a
// layer.
//
// At first the image itself is the only primary and every path has the key
// {image}. Then, largest path first (ties by name with the hash moved to the
// end), a path P that is not yet a primary becomes one:
//
//   - P's users are the primaries whose closure contains P (the image always);
//   - every path in P's closure that is not in the closure of a primary P
//     depends on (those are that primary's business already) gets the key
//     (key − P's users) ∪ {P}: whoever used it through P now uses P instead.
//
// The step that would make more distinct keys than MaxLayers is undone and
// ends the loop. Layers are ordered by closure size: the NAR size of
// everything their paths need, smallest (the base libraries) first.
//
// Keys are a strategy-internal notion; layer keys are the name of each
// layer's largest path, like every other strategy's.
func auto(v *view, opt Options) ([]Layer, error) {
	x, err := index(v)
	if err != nil {
		return nil, err
	}
	n := x.len()
	if n == 0 {
		return nil, nil
	}
	candidates := make([]int32, n)
	for i := range candidates {
		candidates[i] = int32(i)
	}
	slices.SortFunc(candidates, func(a, b int32) int {
		return cmp.Or(cmp.Compare(x.sizes[b], x.sizes[a]), x.compareNames(a, b))
	})

	const image = 0 // the ordinal of the image, the primary that uses every path
	var (
		closures  = [][]uint64{nil} // per primary ordinal: its closure as a bit set; the image's is implicit
		isPrimary = make([]bool, n)
		keys      = newKeySets()
		keyOf     = make([]int32, n)                              // every path's key, as an index into keys: 0 is {image}
		uses      = map[int32]int{keys.intern([]int32{image}): n} // paths per key in use; interns {image} as 0
		seen      = make([]bool, n)
		covered   = make([]bool, n)
		closure   []int32
		coverage  []int32
		changed   []keyChange
	)
	for _, p := range candidates {
		closure = x.closureOf(p, seen, closure[:0])
		users := []int32{image}
		for ordinal := 1; ordinal < len(closures); ordinal++ {
			if hasBit(closures[ordinal], p) {
				users = append(users, int32(ordinal))
			}
		}
		coverage = coverage[:0]
		for _, q := range closure {
			if q != p && isPrimary[q] && !covered[q] {
				coverage = x.closureOf(q, covered, coverage)
			}
		}

		ordinal := int32(len(closures))
		rekeyed := make(map[int32]int32)
		changed = changed[:0]
		for _, q := range closure {
			if covered[q] {
				continue
			}
			old := keyOf[q]
			key, ok := rekeyed[old]
			if !ok {
				set := slices.DeleteFunc(slices.Clone(keys.sets[old]), func(u int32) bool { return slices.Contains(users, u) })
				key = keys.intern(append(set, ordinal)) // ordinal is the largest yet, so set stays sorted
				rekeyed[old] = key
			}
			changed = append(changed, keyChange{path: q, old: old})
			keyOf[q] = key
			moveUse(uses, old, key)
		}
		for _, q := range closure {
			seen[q] = false
		}
		for _, q := range coverage {
			covered[q] = false
		}
		if len(uses) > opt.MaxLayers {
			for _, c := range changed {
				moveUse(uses, keyOf[c.path], c.old)
				keyOf[c.path] = c.old
			}
			break
		}
		isPrimary[p] = true
		bits := make([]uint64, (n+63)/64)
		for _, q := range closure {
			bits[q/64] |= 1 << (q % 64)
		}
		closures = append(closures, bits)
	}

	byKey := make(map[int32][]int32, len(uses))
	for i, key := range keyOf {
		byKey[key] = append(byKey[key], int32(i))
	}
	groups := make([][]int32, 0, len(byKey))
	for _, group := range byKey {
		groups = append(groups, group)
	}
	return x.layersOf(x.byClosureSize(groups)), nil
}

// keyChange records a path's key before a step, to undo the step.
type keyChange struct{ path, old int32 }

// moveUse moves one path's use from key old to key new, forgetting keys
// that no path uses any more, so that len(uses) is the number of layers.
func moveUse(uses map[int32]int, old, new int32) {
	if old == new {
		return
	}
	if uses[old]--; uses[old] == 0 {
		delete(uses, old)
	}
	uses[new]++
}

func hasBit(bits []uint64, i int32) bool { return bits[i/64]&(1<<(i%64)) != 0 }

// keySets interns sorted sets of primary ordinals, so that a key is a small
// integer that compares in constant time.
type keySets struct {
	sets  [][]int32
	index map[string]int32
}

func newKeySets() *keySets { return &keySets{index: make(map[string]int32)} }

func (k *keySets) intern(set []int32) int32 {
	encoded := make([]byte, 4*len(set))
	for i, v := range set {
		binary.LittleEndian.PutUint32(encoded[4*i:], uint32(v))
	}
	if id, ok := k.index[string(encoded)]; ok {
		return id
	}
	id := int32(len(k.sets))
	k.sets = append(k.sets, set)
	k.index[string(encoded)] = id
	return id
}
