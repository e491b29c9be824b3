package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/storepack/storepack/store"
	"github.com/tonistiigi/fsutil"
)

// syntheticOptions say how large a generated closure to lay out.
type syntheticOptions struct {
	seed  uint64
	paths int   // store paths, the root included
	bytes int64 // NAR bytes at least, mostly in sparse files
	cache string
}

// synthetic is a generated store: many small paths in a DAG with shared
// libraries, a few of them holding large sparse files, and one root that
// references every path nothing else references.
type synthetic struct {
	root        string // root/nix/store holds the paths; root/result, root/graph.json
	storeOnDisk string
	graph       *store.Graph
	narBytes    uint64
	manifest    string
}

const (
	// sharedLibraries are the paths most others reference, as glibc, zlib
	// and openssl are in a real closure.
	sharedLibraries = 500
	// sparsePaths hold the bytes: each one sparse file of an equal share.
	sparsePaths = 1024
	// sparseHeader is the real content at the start of each sparse file,
	// so that no two are alike.
	sparseHeader = 4096
)

// syntheticManifest is the manifest of every scale build: the closure of
// ./result in 99 store layers and the customisation layer.
const syntheticManifest = `# syntax=storepack
CLOSURE ./result
GRAPH graph.json
LAYERS --max=100 --strategy=storepack
`

// openSynthetic returns the generated store for opt, laying it out (and
// hashing every path with the store package, as nix path-info would give
// it) unless the cache holds it from an earlier run: its graph.json is
// written last, so a directory without one is an interrupted layout.
func openSynthetic(ctx context.Context, opt syntheticOptions, log io.Writer) (*synthetic, error) {
	dir := filepath.Join(opt.cache, fmt.Sprintf("scale-seed%d-%dpaths-%dMiB", opt.seed, opt.paths, opt.bytes>>20))
	s := &synthetic{root: dir, storeOnDisk: filepath.Join(dir, "nix", "store"), manifest: filepath.Join(dir, "scale.storepack")}
	if data, err := os.ReadFile(filepath.Join(dir, "graph.json")); err == nil {
		if s.graph, err = store.Load(filepath.Join(dir, "graph.json"), bytes.NewReader(data)); err != nil {
			return nil, err
		}
		s.sumBytes()
		fmt.Fprintf(log, "benchbuild: the generated closure from the cache, %s\n", dir)
		return s, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.storeOnDisk, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	fmt.Fprintf(log, "benchbuild: generating %d store paths, %d MiB, seed %d, in %s\n", opt.paths, opt.bytes>>20, opt.seed, dir)
	infos, rootPath, err := s.layOut(ctx, opt)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "benchbuild: laid out in %.1fs; hashing\n", time.Since(start).Seconds())
	fsys := os.DirFS(s.storeOnDisk)
	for i := range infos {
		if infos[i].NarHash, infos[i].NarSize, err = store.NarHash(ctx, fsys, infos[i].Path); err != nil {
			return nil, err
		}
	}
	if s.graph, err = store.NewGraph(infos); err != nil {
		return nil, fmt.Errorf("the generated graph: %w", err)
	}
	s.sumBytes()
	if err := os.Symlink(rootPath.String(), filepath.Join(dir, "result")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.manifest, []byte(syntheticManifest), 0o644); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := store.WritePathInfoJSON(&buf, s.graph); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "graph.json.tmp"), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(dir, "graph.json.tmp"), filepath.Join(dir, "graph.json")); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "benchbuild: generated and hashed in %.1fs\n", time.Since(start).Seconds())
	return s, nil
}

func (s *synthetic) sumBytes() {
	for _, p := range s.graph.Paths() {
		info, _ := s.graph.Info(p)
		s.narBytes += info.NarSize
	}
}

// layOut writes the paths, references first: path i references a few
// shared libraries (the first ones most) and a few earlier paths, so the
// graph is a DAG; the root references every path nothing else does. The
// references are written where Nix's scanner finds them, in
// nix-support/propagated-build-inputs.
func (s *synthetic) layOut(ctx context.Context, opt syntheticOptions) ([]store.Info, store.Path, error) {
	rng := rand.New(rand.NewPCG(opt.seed, 4))
	n := opt.paths - 1
	if n < sharedLibraries+sparsePaths {
		return nil, store.Path{}, fmt.Errorf("-scale-paths must be at least %d", sharedLibraries+sparsePaths+1)
	}
	sparse := map[int]bool{}
	for _, i := range rng.Perm(n)[:sparsePaths] {
		sparse[i] = true
	}
	sparseSize := opt.bytes / sparsePaths
	infos := make([]store.Info, 0, opt.paths)
	referenced := make([]bool, n)
	for i := range n {
		if i%1000 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, store.Path{}, err
			}
		}
		name := fmt.Sprintf("pkg%06d-1.%d", i, i%7)
		if i < sharedLibraries {
			name = fmt.Sprintf("lib%03d-2.%d", i, i%5)
		}
		info := store.Info{Path: storePath(opt.seed, name)}
		var refs []int
		if i > 0 {
			for range 1 + rng.IntN(3) {
				// Skewed to the first libraries: rng.IntN(rng.IntN(k)+1).
				refs = append(refs, rng.IntN(rng.IntN(min(i, sharedLibraries))+1))
			}
		}
		if i > sharedLibraries {
			for range rng.IntN(3) {
				refs = append(refs, sharedLibraries+rng.IntN(i-sharedLibraries))
			}
		}
		slices.Sort(refs)
		for _, r := range slices.Compact(refs) {
			info.References = append(info.References, infos[r].Path)
			referenced[r] = true
		}
		var size int64
		if sparse[i] {
			size = sparseSize
		}
		if err := s.writePath(info, size, rng); err != nil {
			return nil, store.Path{}, fmt.Errorf("lay out %s: %w", info.Path, err)
		}
		infos = append(infos, info)
	}
	root := store.Info{Path: storePath(opt.seed, "scale-app-1.0")}
	for i, r := range referenced {
		if !r {
			root.References = append(root.References, infos[i].Path)
		}
	}
	if err := s.writePath(root, 0, rng); err != nil {
		return nil, store.Path{}, err
	}
	return append(infos, root), root.Path, nil
}

// writePath writes one store path: a README, its references, and when
// size > 0 lib/libdata.so, sparse but for a seeded header.
func (s *synthetic) writePath(info store.Info, size int64, rng *rand.Rand) error {
	dir := filepath.Join(s.storeOnDisk, info.Path.Base())
	if err := writeStoreFile(filepath.Join(dir, "share", "doc", info.Path.Name, "README"), "generated by storepack's scale benchmark\n", 0o444); err != nil {
		return err
	}
	if len(info.References) > 0 {
		var refs []string
		for _, r := range info.References {
			refs = append(refs, r.String())
		}
		slices.Sort(refs)
		if err := writeStoreFile(filepath.Join(dir, "nix-support", "propagated-build-inputs"), strings.Join(refs, " ")+"\n", 0o444); err != nil {
			return err
		}
	}
	if size > 0 {
		name := filepath.Join(dir, "lib", "libdata.so")
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		header := make([]byte, min(sparseHeader, size))
		for i := range header {
			header[i] = byte(rng.Uint32())
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, werr := f.Write(header)
		terr := f.Truncate(size)
		if err := errors.Join(werr, terr, f.Close()); err != nil {
			return err
		}
		if err := os.Chmod(name, 0o555); err != nil {
			return err
		}
	}
	return fixModes(dir)
}

// syntheticFloor is the scale benchmark's floor, run as its own process:
// an lstat of every entry of the store and a read of the GRAPH, what any
// builder of the image must do at the least before writing a byte.
func syntheticFloor(root string) error {
	entries := 0
	err := filepath.WalkDir(filepath.Join(root, "nix", "store"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := d.Info(); err != nil {
			return err
		}
		entries++
		return nil
	})
	if err != nil {
		return err
	}
	g, err := readGraph(root)
	if err != nil {
		return err
	}
	fmt.Printf("%d entries, %d store paths\n", entries, g.Len())
	return nil
}

// clientWalk walks the generated store as a client's session does to send
// one transfer of n of the closure's paths (every len/n-th, so spread over
// the store as a layer's are), the paths as include patterns through
// fsutil's filter; indexed, with the paths in a set instead: what a filter
// that indexed literal patterns would cost. It prints the entries sent.
func clientWalk(root string, n int, indexed bool) error {
	g, err := readGraph(root)
	if err != nil {
		return err
	}
	paths := g.Paths()
	if n <= 0 || n > len(paths) {
		return fmt.Errorf("%d paths of a closure of %d", n, len(paths))
	}
	names := make([]string, 0, n)
	for i := 0; len(names) < n; i += len(paths) / n {
		names = append(names, paths[i].Base())
	}
	storeFS, err := fsutil.NewFS(filepath.Join(root, "nix", "store"))
	if err != nil {
		return err
	}
	sent := 0
	count := func(_ string, _ fs.DirEntry, err error) error {
		sent++
		return err
	}
	walker := storeFS
	if indexed {
		set := make(map[string]bool, n)
		for _, name := range names {
			set[name] = true
		}
		count = func(p string, d fs.DirEntry, err error) error {
			if top, _, _ := strings.Cut(p, "/"); !set[top] {
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			sent++
			return err
		}
	} else if walker, err = fsutil.NewFilterFS(storeFS, &fsutil.FilterOpt{IncludePatterns: names}); err != nil {
		return err
	}
	if err := walker.Walk(context.Background(), "/", count); err != nil {
		return err
	}
	fmt.Printf("%d entries sent for %d store paths\n", sent, n)
	return nil
}

// readGraph reads the generated store's graph.json.
func readGraph(root string) (*store.Graph, error) {
	f, err := os.Open(filepath.Join(root, "graph.json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return store.Load(f.Name(), f)
}
