package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"runtime"
	"slices"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/pkg/errors"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/layerllb"
	"github.com/storepack/storepack/store"
	"golang.org/x/sync/errgroup"
)

// The arguments that make the frontend binary, run in the builder, walk
// store paths (see RunStoreScan): FindHashesCommand reads every file for
// hash candidates, as Discover needs; CheckStoreCommand only walks the
// entries and measures the NAR size, as checkStore needs.
const (
	FindHashesCommand = "find-hashes"
	CheckStoreCommand = "check-store"
)

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
	src, _, where, err := b.storeSource(ctx, roots, nil)
	if err != nil {
		return nil, err
	}
	scans := map[store.Path]store.HashScan{}
	for frontier, round := slices.Clone(roots), 1; len(frontier) > 0; round++ {
		found, err := b.scanStore(ctx, helper, FindHashesCommand, src, where, frontier, fmt.Sprintf("scan %d store paths for references (round %d)", len(frontier), round))
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
		src, files, where, err = b.storeEntries(ctx, patterns)
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

// checkStore walks the store paths of a closure from a GRAPH in the
// builder before the layers copy them as the build context holds them: it
// refuses what a store path cannot hold (devices, fifos, sockets, setuid
// and setgid bits), and compares each path's NAR size with the GRAPH's,
// which tells a store that is not the one the GRAPH describes.
func (b *build) checkStore(ctx context.Context, graph *store.Graph, src layerllb.Source, where string) error {
	helper := b.helper()
	if helper == nil {
		return nil // nothing can walk the paths in the builder; they are copied as they are
	}
	paths := graph.Paths()
	found, err := b.scanStore(ctx, helper, CheckStoreCommand, src, where, paths, fmt.Sprintf("check %d store paths", len(paths)))
	if err != nil {
		return err
	}
	for _, p := range paths {
		info, _ := graph.Info(p)
		if got := found[p.String()].NarSize; info.NarSize != 0 && got != info.NarSize {
			return errors.Errorf("store path %s in %s is not the one the GRAPH describes: its NAR is %d bytes, the GRAPH says %d", p, where, got, info.NarSize)
		}
	}
	return nil
}

// scanResult is what the frontend binary writes in the builder: the scan
// of each store path, or what made one unfit for an image.
type scanResult struct {
	Scans   map[string]store.HashScan `json:"scans,omitempty"`
	Problem string                    `json:"problem,omitempty"`
}

// scanStore runs the frontend binary in the builder with command on paths
// of src and returns what it found, by store path.
func (b *build) scanStore(ctx context.Context, helper *layerllb.Helper, command string, src layerllb.Source, where string, paths []store.Path, step string) (map[string]store.HashScan, error) {
	request, err := json.Marshal(paths)
	if err != nil {
		return nil, err
	}
	in := llb.Scratch().File(llb.Mkfile("/paths.json", 0o444, request))
	run := helper.Image.Run(
		llb.Args([]string{helper.Binary, command, path.Join("/store", src.Dir), "/in/paths.json", "/out/hashes.json"}),
		llb.Network(pb.NetMode_NONE),
		llb.WithCustomName(step),
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
	var result scanResult
	if err := json.Unmarshal(data, &result); err != nil {
		return nil, errors.Wrap(err, "the scan's result")
	}
	if result.Problem != "" {
		return nil, errors.Errorf("%s: %s", where, result.Problem)
	}
	return result.Scans, nil
}

// RunStoreScan is the builder side of Discover and checkStore: it walks
// the store paths listed in the JSON file request, whose entries are in
// storeDir, as command says (FindHashesCommand or CheckStoreCommand), and
// writes what it found to the JSON file out. A store path unfit for an
// image is reported there too, so that the frontend can say so plainly
// rather than as a failed process.
func RunStoreScan(ctx context.Context, command, storeDir, request, out string) error {
	var scan func(context.Context, fs.FS, store.Path) (store.HashScan, error)
	switch command {
	case FindHashesCommand:
		scan = store.FindHashes
	case CheckStoreCommand:
		scan = func(_ context.Context, fsys fs.FS, p store.Path) (store.HashScan, error) {
			size, err := store.NarSize(fsys, p)
			return store.HashScan{NarSize: size}, err
		}
	default:
		return errors.Errorf("unknown store scan %q", command)
	}
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
			found[i], err = scan(ctx, root.FS(), p)
			return err
		})
	}
	var result scanResult
	if err := g.Wait(); err != nil {
		result.Problem = err.Error()
	} else {
		result.Scans = make(map[string]store.HashScan, len(paths))
		for i, p := range paths {
			result.Scans[p.String()] = found[i]
		}
	}
	data, err = json.Marshal(result)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}
