package layerllb

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

// LayerFormat is the version of a store layer's bytes: what BuildKit's
// differ writes for the layer's store paths on the Merge method, which the
// plugin's writer writes too. It changes whenever those bytes change for
// the same paths and settings, so that layers known by their content are
// made anew.
const LayerFormat = 1

// ContentLabel is the image label that records each store layer's content
// key (ContentKey), in layer order, "" where unknown: a later build takes
// the layers whose key it knows from this image rather than from the
// store.
const ContentLabel = "dev.storepack.layers"

// PathContent is a store path by its NAR.
type PathContent struct {
	Path    store.Path
	NarHash digest.Digest
	NarSize uint64
}

// ContentKey identifies what a store layer's bytes depend on: the layer
// format, the store directory, the fixed time and every path with its NAR
// hash and size; ok is false when a path's NAR hash or size is unknown,
// which leaves the layer's content unknown too.
func ContentKey(storeDir string, epoch time.Time, paths []PathContent) (key digest.Digest, ok bool) {
	paths = slices.Clone(paths)
	slices.SortFunc(paths, func(a, b PathContent) int { return a.Path.Compare(b.Path) }) // as their strings sort
	// The text is hashed as it is written: for a layer of 100,000 paths it
	// is 12 MB.
	d := digest.Canonical.Digester()
	w := bufio.NewWriter(d.Hash())
	fmt.Fprintf(w, "storepack layer %d\nstore %q\nepoch %d\n", LayerFormat, storeDir, epoch.Unix())
	for _, p := range paths {
		if p.NarHash == "" || p.NarSize == 0 {
			return "", false
		}
		fmt.Fprintf(w, "path %q %s %d\n", p.Path.String(), p.NarHash, p.NarSize)
	}
	w.Flush() // a hash's Write never fails
	return d.Digest(), true
}

// GraphContentKeys are the content keys of plan's layers from g's NAR
// hashes and sizes; nil when none is known.
func GraphContentKeys(g *store.Graph, plan layering.Plan, storeDir string, epoch time.Time) []digest.Digest {
	keys := make([]digest.Digest, len(plan.Layers))
	known := false
	for i, l := range plan.Layers {
		paths := make([]PathContent, len(l.Paths))
		for j, p := range l.Paths {
			size, hash, _ := g.NAR(p)
			paths[j] = PathContent{Path: p, NarHash: hash, NarSize: size}
		}
		if key, ok := ContentKey(storeDir, epoch, paths); ok {
			keys[i], known = key, true
		}
	}
	if !known {
		return nil
	}
	return keys
}

// RecordedContent decodes the content keys an image's labels record; nil
// when they record none.
func RecordedContent(labels map[string]string) ([]digest.Digest, error) {
	label, ok := labels[ContentLabel]
	if !ok {
		return nil, nil
	}
	var keys []digest.Digest
	if err := json.Unmarshal([]byte(label), &keys); err != nil {
		return nil, fmt.Errorf("label %s: %w", ContentLabel, err)
	}
	for i, k := range keys {
		if k != "" && k.Validate() != nil {
			return nil, fmt.Errorf("label %s: layer %d: %q is not a digest", ContentLabel, i+1, k)
		}
	}
	return keys, nil
}
