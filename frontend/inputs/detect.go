package inputs

import (
	"context"
	"fmt"
	"path"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/storepack/storepack/store"
)

const (
	// maxELFProbes bounds the files whose header detectPlatform reads per
	// closure: enough to meet the programs of a package, few enough to
	// stay cheap on a large one.
	maxELFProbes = 64
	// maxELFDepth bounds how deep below a root it looks (bin/x, lib/y/z.so).
	maxELFDepth = 3
)

// detectPlatform tells the platform a closure is built for from the ELF
// files in its roots, read from storeFiles (rooted at the store directory).
// It returns nil when the roots hold no ELF file (scripts, data), and an
// error naming two files when the roots mix platforms.
func detectPlatform(ctx context.Context, storeFiles Files, roots []store.Path) (*ocispecs.Platform, string, error) {
	type item struct {
		rel   string // below the store directory
		entry Entry
		depth int
	}
	var queue []item
	for _, r := range roots {
		e, err := storeFiles.Lookup(ctx, r.Base())
		if err != nil {
			return nil, "", fmt.Errorf("read %s: %w", r, err)
		}
		if e != nil {
			queue = append(queue, item{r.Base(), *e, 0})
		}
	}
	storeDir := roots[0].Dir
	var found *ocispecs.Platform
	var foundIn string
	for probes := 0; len(queue) > 0 && probes < maxELFProbes; {
		it := queue[0]
		queue = queue[1:]
		file := path.Join(storeDir, it.rel)
		if it.entry.Mode.IsDir() && it.depth < maxELFDepth {
			children, err := storeFiles.ReadDir(ctx, it.rel)
			if err != nil {
				return nil, "", fmt.Errorf("list %s: %w", file, err)
			}
			for _, c := range children {
				queue = append(queue, item{path.Join(it.rel, c.Name), c, it.depth + 1})
			}
			continue
		}
		if !it.entry.Mode.IsRegular() || it.entry.Size < elfHeaderSize {
			continue
		}
		probes++
		header, err := storeFiles.ReadHeader(ctx, it.rel, elfHeaderSize)
		if err != nil {
			return nil, "", fmt.Errorf("read %s: %w", file, err)
		}
		p, isELF, err := elfPlatform(header)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", file, err)
		}
		switch {
		case !isELF:
		case found == nil:
			found, foundIn = &p, file
		case !runsOn(p, *found) && !runsOn(*found, p):
			return nil, "", fmt.Errorf("the roots mix platforms: %s is built for %s, %s for %s", foundIn, platforms.Format(*found), file, platforms.Format(p))
		}
	}
	return found, foundIn, nil
}
