package store

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Discover builds the closure graph of roots without any metadata, by
// scanning the store directory on disk, storeDirOnDisk, the way Nix scans a
// build's outputs: starting from the roots, each path's references are the
// store paths whose hash part it mentions, and each reference is scanned in
// turn. Sizes are measured (see NarSize).
//
// The roots' Dir is the store directory as Nix sees it (/nix/store), which
// may differ from where the files are (such as DIR/nix/store for a store
// opened with --store local?root=DIR). Only the paths present in
// storeDirOnDisk are candidates, so a path mentioning the hash of a path that
// is not there has no reference to it. Nix's temporary entries beside a path
// (<path>.lock, <path>.chroot, <path>.check) are not candidates.
//
// Nix looks only for the hashes of a build's inputs (with their closures)
// and outputs, while Discover looks for every path present. The graphs
// differ only when a path mentions the hash of a present path outside its
// build's inputs, a hash that reached the build without string context
// (discarded on purpose, or inside downloaded sources); Discover then
// reports one reference more, which costs image size, never correctness.
//
// A reference cycle between distinct paths is an error: Nix and Guix cannot
// build one, so the store on disk is not what it should be.
func Discover(ctx context.Context, storeDirOnDisk string, roots []Path) (*Graph, error) {
	if len(roots) == 0 {
		return nil, fmt.Errorf("discover in %s: no roots", storeDirOnDisk)
	}
	storeDir := roots[0].Dir
	for _, root := range roots {
		if err := root.check(); err != nil {
			return nil, err
		}
		if err := checkDir(root, storeDir); err != nil {
			return nil, fmt.Errorf("roots: %w", err)
		}
	}
	dir, err := os.OpenRoot(storeDirOnDisk)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	fsys := dir.FS()
	candidates, err := storeCandidates(fsys, storeDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", storeDirOnDisk, err)
	}
	for _, root := range roots {
		if present, ok := candidates.byHash[root.Hash]; !ok || present != root {
			return nil, fmt.Errorf("root %s is not in %s", root, storeDirOnDisk)
		}
	}

	s := newScanner(fsys, candidates)
	defer s.close()
	var infos []Info
	queued := make(map[Path]bool)
	var frontier []Path
	for _, root := range roots {
		if !queued[root] {
			queued[root] = true
			frontier = append(frontier, root)
		}
	}
	// Breadth first, one level at a time: every path of a level is scanned in
	// parallel, and the references found make the next level.
	for len(frontier) > 0 {
		level := make([]Info, len(frontier))
		group, groupCtx := errgroup.WithContext(ctx)
		// Walking directories waits on the file system more than on the CPU,
		// and the file contents are read by the scanner's own workers.
		group.SetLimit(2 * runtime.GOMAXPROCS(0))
		for i, p := range frontier {
			group.Go(func() (err error) {
				level[i], err = s.scan(groupCtx, p)
				return err
			})
		}
		if err := group.Wait(); err != nil {
			return nil, err
		}
		frontier = nil
		for _, info := range level {
			infos = append(infos, info)
			for _, ref := range info.References {
				if !queued[ref] {
					queued[ref] = true
					frontier = append(frontier, ref)
				}
			}
		}
	}
	g, err := NewGraph(infos)
	if err != nil {
		return nil, err
	}
	if err := checkAcyclic(g); err != nil {
		return nil, fmt.Errorf("%s: %w", storeDirOnDisk, err)
	}
	return g, nil
}

// nixTemporarySuffixes are the suffixes of the entries Nix puts beside a
// store path while building it: a lock, a chroot, the output of a --check
// build. They share the path's hash part.
var nixTemporarySuffixes = []string{".lock", ".chroot", ".check"}

// storeCandidates lists the store paths in the root of fsys, a store
// directory, as paths in storeDir. Entries that are not store paths (.links,
// Nix's temporary files) are skipped.
func storeCandidates(fsys fs.FS, storeDir string) (*Candidates, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	present := make(map[string]bool, len(entries))
	for _, entry := range entries {
		present[entry.Name()] = true
	}
	var paths []Path
	for _, entry := range entries {
		hash, name, err := splitBase(entry.Name())
		if err != nil || isNixTemporary(entry.Name(), present) {
			continue
		}
		paths = append(paths, Path{Dir: storeDir, Hash: hash, Name: name})
	}
	return NewCandidates(paths)
}

func isNixTemporary(name string, present map[string]bool) bool {
	for _, suffix := range nixTemporarySuffixes {
		if base, ok := strings.CutSuffix(name, suffix); ok && present[base] {
			return true
		}
	}
	return false
}

// MeasureSizes returns g with the NAR size of every path whose size is
// unknown (0, as in formats without sizes) measured from fsys, whose root is
// the store directory on disk. Paths are measured in parallel.
func MeasureSizes(ctx context.Context, fsys fs.FS, g *Graph) (*Graph, error) {
	nodes := slices.Clone(g.nodes)
	group, groupCtx := errgroup.WithContext(ctx)
	group.SetLimit(2 * runtime.GOMAXPROCS(0))
	for i, n := range g.nodes {
		if n.narSize != 0 {
			continue
		}
		group.Go(func() (err error) {
			if err := groupCtx.Err(); err != nil {
				return err
			}
			nodes[i].narSize, err = NarSize(fsys, n.path)
			return err
		})
	}
	if err := group.Wait(); err != nil {
		return nil, err
	}
	// Everything but the sizes is immutable and can be shared.
	measured := *g
	measured.nodes = nodes
	return &measured, nil
}
