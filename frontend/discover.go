package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"runtime"
	"slices"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/pkg/errors"
	"github.com/storepack/storepack/frontend/inputs"
	splb "github.com/storepack/storepack/llb"
	"github.com/storepack/storepack/store"
	"golang.org/x/sync/errgroup"
)

// FindHashesCommand is the argument that makes the frontend binary, run in
// the builder, scan store paths for hash candidates (see RunFindHashes).
const FindHashesCommand = "find-hashes"

// Discover implements inputs.Source for a closure without a GRAPH: it grows
// the closure from the roots in rounds, scanning inside the builder rather
// than streaming files through the gateway. Each round transfers only the
// new paths (the include patterns accumulate, so nothing is sent twice),
// runs the frontend binary on them to find the hashes they mention, and
// keeps the hashes that name an entry of the store. No store path outside
// the closure is read.
func (b *build) Discover(ctx context.Context, roots []store.Path) (*store.Graph, error) {
	helper := b.helper()
	if helper == nil {
		return nil, errors.New("no GRAPH for this CLOSURE, and the frontend image is unknown, so the closure cannot be scanned in the builder: add a GRAPH file (`nix path-info --json --recursive ./result > graph.json`) or run the frontend through `# syntax=`")
	}
	known := map[string]store.Path{} // hash → a store path present in the store
	var patterns []string            // the store entries transferred so far
	for _, r := range roots {
		known[r.Hash] = r
		patterns = append(patterns, r.Base())
	}
	src, _, err := b.storeSource(ctx, roots, nil)
	if err != nil {
		return nil, err
	}
	scans := map[store.Path]store.HashScan{}
	for frontier, round := slices.Clone(roots), 1; len(frontier) > 0; round++ {
		found, err := b.findHashes(ctx, helper, src, frontier, round)
		if err != nil {
			return nil, err
		}
		pending := map[string]bool{}
		for _, p := range frontier {
			scans[p] = found[p.String()]
			for _, h := range found[p.String()].Hashes {
				if _, ok := known[h]; !ok {
					pending[h] = true
				}
			}
		}
		frontier = nil
		if len(pending) == 0 {
			break
		}
		// Transfer the entries the new hashes name, where the store has them.
		for _, h := range slices.Sorted(maps.Keys(pending)) {
			patterns = append(patterns, h+"-*")
		}
		var files inputs.Files
		src, files, _, err = b.storeEntries(ctx, patterns)
		if err != nil {
			return nil, err
		}
		entries, err := files.ReadDir(ctx, "")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			p, err := store.ParsePath(path.Join(b.m.StoreDir, e.Name))
			if err != nil || !pending[p.Hash] {
				continue
			}
			known[p.Hash] = p
			frontier = append(frontier, p)
		}
	}

	infos := make([]store.Info, 0, len(scans))
	for p, scan := range scans {
		info := store.Info{Path: p, NarSize: scan.NarSize}
		for _, h := range scan.Hashes {
			if ref, ok := known[h]; ok {
				info.References = append(info.References, ref)
			}
		}
		infos = append(infos, info)
	}
	return store.NewGraph(infos)
}

// findHashes runs the frontend binary in the builder on paths of src and
// returns what it found, by store path.
func (b *build) findHashes(ctx context.Context, helper *splb.Helper, src splb.Source, paths []store.Path, round int) (map[string]store.HashScan, error) {
	request, err := json.Marshal(paths)
	if err != nil {
		return nil, err
	}
	in := llb.Scratch().File(llb.Mkfile("/paths.json", 0o444, request))
	run := helper.Image.Run(
		llb.Args([]string{helper.Binary, FindHashesCommand, path.Join("/store", src.Dir), "/in/paths.json", "/out/hashes.json"}),
		llb.Network(pb.NetMode_NONE),
		llb.WithCustomName(fmt.Sprintf("scan %d store paths for references (round %d)", len(paths), round)),
	)
	run.AddMount("/store", src.State, llb.Readonly)
	run.AddMount("/in", in, llb.Readonly)
	ref, err := b.solve(ctx, run.AddMount("/out", llb.Scratch()))
	if err != nil {
		return nil, err
	}
	data, err := refFiles{ref: ref}.ReadFile(ctx, "hashes.json")
	if err != nil {
		return nil, err
	}
	var found map[string]store.HashScan
	if err := json.Unmarshal(data, &found); err != nil {
		return nil, errors.Wrap(err, "the scan's result")
	}
	return found, nil
}

// RunFindHashes is the builder side of Discover: it scans the store paths
// listed in the JSON file request, whose entries are in storeDir, and
// writes what it found to the JSON file out.
func RunFindHashes(ctx context.Context, storeDir, request, out string) error {
	data, err := os.ReadFile(request)
	if err != nil {
		return err
	}
	var paths []store.Path
	if err := json.Unmarshal(data, &paths); err != nil {
		return err
	}
	root, err := os.OpenRoot(storeDir)
	if err != nil {
		return err
	}
	defer root.Close()
	found := make([]store.HashScan, len(paths))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range paths {
		g.Go(func() (err error) {
			found[i], err = store.FindHashes(ctx, root.FS(), p)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	byPath := make(map[string]store.HashScan, len(paths))
	for i, p := range paths {
		byPath[p.String()] = found[i]
	}
	result, err := json.Marshal(byPath)
	if err != nil {
		return err
	}
	return os.WriteFile(out, result, 0o644)
}
