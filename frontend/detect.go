package frontend

import (
	"context"
	"io/fs"
	"path"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/storepack/storepack/store"
	fstypes "github.com/tonistiigi/fsutil/types"
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
// files in its roots, read from ref (which holds the store entries in dir).
// It returns nil when the roots hold no ELF file (scripts, data), and an
// error naming two files when the roots mix platforms.
func detectPlatform(ctx context.Context, ref client.Reference, dir string, roots []store.Path) (*ocispecs.Platform, string, error) {
	type entry struct {
		rel   string // below dir
		stat  *fstypes.Stat
		depth int
	}
	list := func(rel string, depth int) ([]entry, error) {
		stats, err := ref.ReadDir(ctx, client.ReadDirRequest{Path: path.Join(dir, rel)})
		if err != nil {
			return nil, errors.Wrapf(err, "list %s", path.Join(path.Dir(roots[0].String()), rel))
		}
		entries := make([]entry, len(stats))
		for i, st := range stats {
			entries[i] = entry{path.Join(rel, st.Path), st, depth}
		}
		return entries, nil
	}
	storeEntries, err := list("", 0)
	if err != nil {
		return nil, "", err
	}
	var queue []entry
	for _, r := range roots {
		for _, e := range storeEntries {
			if e.rel == r.Base() {
				queue = append(queue, e)
			}
		}
	}

	var found *ocispecs.Platform
	var foundIn string
	for probes := 0; len(queue) > 0 && probes < maxELFProbes; {
		e := queue[0]
		queue = queue[1:]
		mode := fs.FileMode(e.stat.Mode)
		if mode.IsDir() && e.depth < maxELFDepth {
			children, err := list(e.rel, e.depth+1)
			if err != nil {
				return nil, "", err
			}
			queue = append(queue, children...)
			continue
		}
		if !mode.IsRegular() || e.stat.Size < elfHeaderSize {
			continue
		}
		probes++
		file := path.Join(path.Dir(roots[0].String()), e.rel)
		header, err := ref.ReadFile(ctx, client.ReadRequest{
			Filename: path.Join(dir, e.rel),
			Range:    &client.FileRange{Length: elfHeaderSize},
		})
		if err != nil {
			return nil, "", errors.Wrapf(err, "read %s", file)
		}
		p, isELF, err := elfPlatform(header)
		if err != nil {
			return nil, "", errors.Wrap(err, file)
		}
		switch {
		case !isELF:
		case found == nil:
			found, foundIn = &p, file
		case !runsOn(p, *found) && !runsOn(*found, p):
			return nil, "", errors.Errorf("the roots mix platforms: %s is built for %s, %s for %s", foundIn, platforms.Format(*found), file, platforms.Format(p))
		}
	}
	return found, foundIn, nil
}
