package layering

import (
	"slices"

	"github.com/storepack/storepack/store"
)

// sketchSize is the number of hashes a sketch keeps. Estimates of larger
// sets are off by about 1/sqrt(sketchSize), 18%: enough to rank joins (on
// the reuse benchmark exact counts gain nothing, while 16 hashes lose
// clearly), and 100,000 sketches take 25 MB.
const sketchSize = 32

// A sketch stands for a set of store paths, such as a closure, and estimates
// how many paths it holds in constant space: it keeps the sketchSize
// smallest hashes of its paths (a "bottom-k" sketch), ascending. Up to
// sketchSize paths the count is exact; beyond, how far the k-th smallest
// hash is from zero tells how many hashes lie below it. The sketch of a
// union is the union of the sketches, cut to size, so closures of groups of
// paths are combined without walking the graph again.
type sketch []uint64

// union writes the sketch of the union of a and b into into, which must
// have room for sketchSize hashes and not share memory with a or b, and
// returns it.
func union(into, a, b sketch) sketch {
	into = into[:sketchSize]
	n, i, j := 0, 0, 0
	for n < sketchSize && i < len(a) && j < len(b) {
		if x, y := a[i], b[j]; x <= y {
			into[n] = x
			i++
			if x == y {
				j++
			}
		} else {
			into[n] = y
			j++
		}
		n++
	}
	// One of them is used up: the rest comes from the other, up to size.
	n += copy(into[n:], a[i:])
	n += copy(into[n:], b[j:])
	return into[:n]
}

// covers reports whether the union of s and t is s: s is full, and holds
// every hash of t below its largest. In a closure most references add
// nothing to a sketch that is full already (their closures overlap), and
// this check, unlike union, writes nothing.
func covers(s, t sketch) bool {
	if len(s) < sketchSize {
		return len(t) == 0
	}
	largest, i := s[len(s)-1], 0
	for _, h := range t {
		if h >= largest {
			return true
		}
		for s[i] < h { // stops at the largest at the latest
			i++
		}
		if s[i] != h {
			return false
		}
	}
	return true
}

// hashSpace is 2^64, the number of possible hashes.
const hashSpace = 1 << 64

// count estimates the number of paths in the set.
func (s sketch) count() float64 {
	if len(s) < sketchSize {
		return float64(len(s))
	}
	return (sketchSize - 1) / (float64(s[sketchSize-1]) / hashSpace)
}

// closureSketches returns the sketch of every path's closure (the path and
// everything it needs), computed references first in one pass over x.
//
// A path hashes by its name ("openssl-3.0.13"), not its hash part, which
// every rebuild changes: estimates, and the plans made from them, then stay
// the same from one release to the next wherever the names do. Paths that
// share a name (several "source" paths, say) hash with their hash part too,
// so that they still count as distinct.
func closureSketches(x *indexed) []sketch {
	shared := sharedNames(x.paths)
	arena := make([]uint64, x.len()*sketchSize)
	sketches := make([]sketch, x.len())
	own, scratch := make(sketch, 0, sketchSize), make(sketch, 0, sketchSize)
	for i, p := range x.paths {
		own = append(own[:0], pathHash(p, shared[pathHash(p, false)]))
		for _, ref := range x.refs[i] {
			if !covers(own, sketches[ref]) {
				scratch = union(scratch, own, sketches[ref])
				own, scratch = scratch, own
			}
		}
		sketches[i] = place(arena, i, own)
	}
	return sketches
}

// cloneSketches copies sketches as closureSketches made them.
func cloneSketches(sketches []sketch) []sketch {
	arena := make([]uint64, len(sketches)*sketchSize)
	clones := make([]sketch, len(sketches))
	for i, s := range sketches {
		clones[i] = place(arena, i, s)
	}
	return clones
}

// place copies s into the i-th slot of arena, where it has room to grow to
// sketchSize in place, and returns the copy.
func place(arena []uint64, i int, s sketch) sketch {
	return append(arena[i*sketchSize:i*sketchSize:(i+1)*sketchSize], s...)
}

// sharedNames returns the hashes (see pathHash) of the names that more
// than one path has: few, so a small set; sorting the hashes finds them
// faster than counting names in a map.
func sharedNames(paths []store.Path) map[uint64]bool {
	hashes := make([]uint64, len(paths))
	for i, p := range paths {
		hashes[i] = pathHash(p, false)
	}
	slices.Sort(hashes)
	shared := make(map[uint64]bool)
	for i := 1; i < len(hashes); i++ {
		if hashes[i] == hashes[i-1] {
			shared[hashes[i]] = true
		}
	}
	return shared
}

// pathHash hashes a path's name, and its hash part if asked to, with
// FNV-1a, which is stable across machines and Go versions; the final mix
// spreads its bits, since a bottom-k sketch relies on hashes being uniform.
func pathHash(p store.Path, withHash bool) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	z := uint64(offset)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			z = (z ^ uint64(s[i])) * prime
		}
	}
	add(p.Name)
	if withHash {
		add("/")
		add(p.Hash)
	}
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
