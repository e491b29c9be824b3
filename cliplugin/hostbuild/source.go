package hostbuild

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/storepack/storepack/cliplugin/layercache"
	"github.com/storepack/storepack/cliplugin/layerstore"
	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// StoreLocalName starts the names of the local sources that carry the
// store paths of a conversion on the host, one per layer: the CLI plugin's
// session serves them from the host's store directory. Each has a name of
// its own because BuildKit reports a transfer's progress by the source's
// name: concurrent transfers of one name hide each other's bytes.
const StoreLocalName = "store"

// HostSource reads the build context and the store from the host, for
// every command of the plugin that plans or builds. The layers copy from
// local sources, one per layer (StoreLocalName), each holding only its
// store paths, which the plugin's session serves.
type HostSource struct {
	ContextDir string // the build context
	// StoreDir is where the store's entries are on the host; "": where
	// the store paths say (/nix/store for /nix/store/...), below Root.
	StoreDir string
	// Root holds the store on the host (Root/nix/store/...), as in a Nix
	// store opened with --store local?root=Root; "": the host's root.
	Root string
	// Discoverer finds the closure of roots without a GRAPH; nil: a scan
	// of the store directory.
	Discoverer func(ctx context.Context, roots []store.Path) (*store.Graph, error)
	// Locals records the host directory of each local source the LLB
	// names, for the session that serves them; nil: none is served.
	Locals *Locals
	// Layers, if not nil, holds the layers written on the host for the
	// session's content store LayerStoreID, to give builders that take
	// them (manifest2llb.StoreOptions.WholeLayers).
	Layers *layerstore.Store
	// Cache, if not nil, holds the digests of layers written before, by
	// their content, so that an unchanged layer is not read again.
	Cache *layercache.Cache
	// gzip learns the content key of each layer that Cache holds, for its
	// gzip blob; nil: none.
	gzip *gzipForms
	// Progress shows the host's steps in the build's progress; nil: none.
	Progress *progress
}

var _ manifest2llb.Source = HostSource{}

// StoreDirOf returns where the entry of p is on the host.
func (h HostSource) StoreDirOf(p store.Path) string {
	if h.StoreDir != "" {
		return h.StoreDir
	}
	return filepath.Join(h.Root, p.Dir)
}

// Context implements inputs.Source.
func (h HostSource) Context(context.Context, []string) (inputs.Files, error) {
	return inputs.FSFiles{FS: os.DirFS(h.ContextDir)}, nil
}

// Store implements inputs.Source. Nothing is transferred: each layer
// transfers its own store paths.
func (h HostSource) Store(ctx context.Context, paths []store.Path, graph *store.Graph) (inputs.StoreFiles, error) {
	dir := h.StoreDirOf(paths[0])
	files := inputs.FSFiles{FS: os.DirFS(dir)}
	return inputs.StoreFiles{Files: files}, inputs.CheckPresent(ctx, files, paths, graph, dir)
}

// Discover implements inputs.Source.
func (h HostSource) Discover(ctx context.Context, _ ocispecs.Platform, roots []store.Path, _ inputs.Transfers) (inputs.Discovery, error) {
	var g *store.Graph
	var err error
	if h.Discoverer != nil {
		g, err = h.Discoverer(ctx, roots)
	} else {
		g, err = store.Discover(ctx, h.StoreDirOf(roots[0]), roots)
	}
	return inputs.Discovery{Graph: g}, err
}

// StoreState implements Source: each layer is a transfer of its own, which
// holds the layer's store paths as the image has them (see Local), so
// that the builder copies it in one action and syncs it against the same
// layer of the last build.
func (h HostSource) StoreState(ctx context.Context, c *inputs.PlatformClosure, plan layering.Plan, opt manifest2llb.StoreOptions) (manifest2llb.Store, error) {
	paths := c.Graph.Paths()
	dir, storeDir := h.StoreDirOf(paths[0]), c.Graph.StoreDir()
	if err := inputs.CheckPresent(ctx, inputs.FSFiles{FS: os.DirFS(dir)}, paths, c.Graph, dir); err != nil {
		return manifest2llb.Store{}, err
	}
	var result manifest2llb.Store
	// Layers written on the host refuse what Check would as they are
	// written, each path checked against the graph's NAR hash and size
	// (layertar): a walk of every path before is needed only where the
	// builder copies the files.
	hostWrites := opt.WholeLayers && h.Layers != nil
	if opt.NarHashes || opt.Check && !c.Discovered && !hostWrites {
		var err error
		if result.Scans, err = measure(ctx, dir, c, opt); err != nil {
			return manifest2llb.Store{}, err
		}
	}
	if hostWrites {
		var err error
		result.Layers, result.Blobs, err = h.wholeLayers(ctx, c, plan, dir, opt)
		return result, err
	}
	src := make(layerllb.Source, len(plan.Layers))
	for i, l := range plan.Layers {
		name := fmt.Sprintf("%s-layer-%d", StoreLocalName, i+1)
		if err := h.Locals.AddStore(name, dir, storeDir); err != nil {
			return manifest2llb.Store{}, err
		}
		include := make([]string, len(l.Paths))
		for j, p := range l.Paths {
			include[j] = path.Join(storeDir[1:], p.Base())
		}
		st := llb.Local(name,
			llb.IncludePatterns(include),
			llb.SharedKeyHint(TransferKey(c.Platform, storeDir, l)),
			llb.WithCustomName(fmt.Sprintf("transfer layer %d/%d (%d store paths)", i+1, len(plan.Layers), len(l.Paths))),
		)
		src[i] = []layerllb.Part{{State: st, Dir: storeDir, Paths: l.Paths, Exact: true}}
	}
	result.Layers = src
	return result, nil
}

// LayerStoreID names the content store of the plugin's session that holds
// the layers written on the host (HostSource.Layers).
const LayerStoreID = "storepack-layers"

// wholeLayers gives each layer of plan to the builder whole: an image of
// the one layer in the session's content store. A layer the previous image
// holds with the same content is its blob in the previous image's
// registry, which the builder reads only if it needs its bytes; any other
// is written on the host, when the builder reads it, and once before for
// its digest unless the cache knows it.
func (h HostSource) wholeLayers(ctx context.Context, c *inputs.PlatformClosure, plan layering.Plan, dir string, opt manifest2llb.StoreOptions) (src layerllb.Source, blobs []manifest2llb.LayerBlob, err error) {
	previous := map[digest.Digest]manifest2llb.PreviousLayer{}
	for _, l := range opt.Previous {
		previous[l.Key] = l
	}
	src = make(layerllb.Source, len(plan.Layers))
	blobs = make([]manifest2llb.LayerBlob, len(plan.Layers))
	var written, taken atomic.Int32
	done := h.Progress.step(ctx, fmt.Sprintf("[storepack] digests of %d store layers for %s", len(plan.Layers), platforms.Format(c.Platform)))
	defer func() {
		w, p := written.Load(), taken.Load()
		done(err, fmt.Sprintf("%d written on the host to learn them, %d from the host's cache of layer digests, %d from the previous image", w, int32(len(plan.Layers))-w-p, p))
	}()
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for i, l := range plan.Layers {
		eg.Go(func() error {
			layer := layertar.Layer{StoreDir: c.Graph.StoreDir(), HostDir: dir, Paths: l.Paths, Epoch: opt.Epoch, Graph: c.Graph}
			key, known := layerKey(c.Graph, layer)
			var (
				desc   ocispecs.Descriptor
				diffID digest.Digest
				err    error // this layer's: the function's own err is set once, by Wait
			)
			if prev, ok := previous[key]; ok && known {
				taken.Add(1)
				diffID = prev.DiffID
				if desc, err = h.Layers.AddBlob(prev.DiffID, prev.Blob, prev.Blobs, c.Platform); err != nil {
					return err
				}
				blobs[i] = manifest2llb.LayerBlob{Blob: prev.Blob, DiffID: prev.DiffID}
			} else {
				var size int64
				var wrote bool
				if diffID, size, wrote, err = h.digest(ctx, key, known, layer); err != nil {
					return err
				}
				if wrote {
					written.Add(1)
				}
				if desc, err = h.Layers.Add(layer, diffID, size, c.Platform); err != nil {
					return err
				}
				blobs[i] = manifest2llb.LayerBlob{Blob: layerstore.LayerDescriptor(diffID, size), DiffID: diffID}
			}
			st := llb.OCILayout("storepack/layer@"+desc.Digest.String(),
				llb.OCIStore("", LayerStoreID),
				llb.Platform(c.Platform),
				llb.WithCustomName(fmt.Sprintf("layer %d/%d, written on the host (%d store paths, %s)", i+1, len(plan.Layers), len(l.Paths), diffID)),
			)
			src[i] = []layerllb.Part{{State: st, Dir: c.Graph.StoreDir(), Paths: l.Paths, Whole: true}}
			return nil
		})
	}
	return src, blobs, eg.Wait()
}

// layerKey is layer's content key from g's NAR hashes and sizes; known is
// false when a path's are not known.
func layerKey(g *store.Graph, layer layertar.Layer) (key digest.Digest, known bool) {
	paths := make([]layerllb.PathContent, len(layer.Paths))
	for i, p := range layer.Paths {
		size, hash, _ := g.NAR(p)
		paths[i] = layerllb.PathContent{Path: p, NarHash: hash, NarSize: size}
	}
	return layerllb.ContentKey(layer.StoreDir, layer.Epoch, paths)
}

// digest returns the digest and size of layer's tar: from the cache when
// its content key is known (every path's NAR hash and size, from the
// store's database or a GRAPH) and cached, else written, and then cached.
func (h HostSource) digest(ctx context.Context, key digest.Digest, known bool, layer layertar.Layer) (diffID digest.Digest, size int64, wrote bool, err error) {
	cached := known && h.Cache != nil
	if cached {
		if e, ok := h.Cache.Get(key); ok {
			h.gzip.note(e)
			return e.DiffID, e.Size, false, nil
		}
	}
	diffID, size, err = layertar.Digest(ctx, layer)
	if err == nil && cached {
		// A cache that cannot be written costs the next build a read, no
		// more: the build goes on.
		e := layercache.Entry{Key: key, DiffID: diffID, Size: size}
		if h.Cache.Put(e) == nil {
			h.gzip.note(e)
		}
	}
	return diffID, size, true, err
}

// TransferKey names the builder's copy of a layer's store paths: the same
// layer of the next release, as the layer plan keys it, is synced into the
// same copy, so that only its changed paths are sent.
func TransferKey(p ocispecs.Platform, storeDir string, l layering.Layer) string {
	return fmt.Sprintf("storepack-layer %s %s %s", platforms.Format(p), storeDir, l.Key)
}

// measure walks the closure's paths in storeDir, reading every file when
// opt asks for NAR hashes (and listing the files when it asks for them):
// store.NarSize and store.NarHash refuse what a store path cannot hold,
// and a size that differs from the graph's tells a store that is not the
// one the graph describes.
func measure(ctx context.Context, storeDir string, c *inputs.PlatformClosure, opt manifest2llb.StoreOptions) (map[store.Path]store.HashScan, error) {
	root, err := os.OpenRoot(storeDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	paths := c.Graph.Paths()
	scans := make([]store.HashScan, len(paths))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range paths {
		eg.Go(func() (err error) {
			if err := ctx.Err(); err != nil {
				return err
			}
			switch {
			case opt.Files:
				scans[i], err = store.NarHashFiles(ctx, root.FS(), p)
			case opt.NarHashes:
				scans[i].NarHash, scans[i].NarSize, err = store.NarHash(ctx, root.FS(), p)
			default:
				scans[i].NarSize, err = store.NarSize(root.FS(), p)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", storeDir, err)
			}
			return c.CheckNarSize(p, scans[i].NarSize, storeDir)
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	found := make(map[store.Path]store.HashScan, len(paths))
	for i, p := range paths {
		found[p] = scans[i]
	}
	return found, nil
}

// ContextLocalName is the local source of the build context's files that
// the conversion copies (COPY).
const ContextLocalName = "context"

// ContextState implements Source.
func (h HostSource) ContextState(ctx context.Context, names []string) (llb.State, inputs.Files, error) {
	if err := h.Locals.Add(ContextLocalName, h.ContextDir); err != nil {
		return llb.State{}, nil, err
	}
	st := llb.Local(ContextLocalName, llb.IncludePatterns(names), llb.SharedKeyHint(manifest2llb.CopySources), llb.WithCustomName("transfer COPY sources"))
	return st, inputs.FSFiles{FS: os.DirFS(h.ContextDir)}, nil
}

// StageLocalPrefix starts the name of the local source of each
// customisation stage a HostStager makes; the rest is the digest of its
// entries, so that the same entries are the same source.
const StageLocalPrefix = "storepack-stage-"

// HostStager stages customisation entries on the host, for builders whose
// FileOps cannot make them: each stage is written below Dir as a local
// source that the CLI plugin's session serves, so no frontend image is
// needed in the builder.
type HostStager struct {
	Dir    string // "": stages are named but not written (planning)
	Locals *Locals
}

var _ layerllb.Stager = HostStager{}

// Stage implements layerllb.Stager.
func (s HostStager) Stage(c layerllb.Customisation) (llb.State, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return llb.State{}, err
	}
	name := StageLocalPrefix + digest.FromBytes(data).Encoded()
	if s.Dir != "" {
		dir := filepath.Join(s.Dir, name)
		if _, err := os.Stat(dir); os.IsNotExist(err) { // the same entries for another platform
			if err := c.WriteTo(dir); err != nil {
				return llb.State{}, fmt.Errorf("stage LINK and DIR entries: %w", err)
			}
		}
		if err := s.Locals.Add(name, dir); err != nil {
			return llb.State{}, err
		}
	}
	return llb.Local(name, llb.SharedKeyHint(name), llb.WithCustomName("transfer LINK and DIR entries")), nil
}

// Locals are the host directories of the local sources a conversion on the
// host names, by name. The zero value is empty; a nil *Locals records
// nothing.
type Locals struct {
	mu     sync.Mutex
	locals map[string]Local
}

// Local is how the session serves a local source.
type Local struct {
	Dir string // on the host
	// StoreDir, if set, says that Dir is a store directory to serve as this
	// directory of the image (e.g. /nix/store), below parents of mode 0755
	// owned by root: the layer's store paths as the image has them.
	StoreDir string
}

// Add records dir as the host directory of the local source name; a name
// given two directories is an error.
func (l *Locals) Add(name, dir string) error {
	return l.add(name, Local{Dir: dir})
}

// AddStore records dir as the host directory of the local source name,
// served as the image's storeDir.
func (l *Locals) AddStore(name, dir, storeDir string) error {
	return l.add(name, Local{Dir: dir, StoreDir: storeDir})
}

func (l *Locals) add(name string, local Local) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if have, ok := l.locals[name]; ok && have != local {
		return fmt.Errorf("the platforms' closures are in two store directories, %s and %s: build them separately", have.Dir, local.Dir)
	}
	if l.locals == nil {
		l.locals = map[string]Local{}
	}
	l.locals[name] = local
	return nil
}

// Lookup returns how the local source name is served.
func (l *Locals) Lookup(name string) (Local, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	local, ok := l.locals[name]
	return local, ok
}
