package frontend

import (
	"bytes"
	"context"
	"io/fs"
	"path"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	fstypes "github.com/tonistiigi/fsutil/types"
	"github.com/pkg/errors"
	"github.com/storepack/storepack/frontend/manifest"
	splb "github.com/storepack/storepack/llb"
	"github.com/storepack/storepack/store"
)

// storeContextName is the named build context that carries the store
// (`--build-context store=/nix/store`). Without it the main context does,
// rooted at the host's / (`docker build -f app.storepack /`).
const storeContextName = "store"

// inputs is what the build context gives one platform's image.
type inputs struct {
	roots   []store.Path // in manifest order; the first resolves relative LINK targets
	closure *store.Graph
}

// readInputs resolves the platform's roots and loads its closure graph from
// the files the manifest names in the main context.
func (b *build) readInputs(ctx context.Context, p ocispecs.Platform) (*inputs, error) {
	var closures []manifest.Closure
	for _, c := range b.m.Closures {
		if ok, err := forPlatform(c.Platform, p); err != nil {
			return nil, parser.WithLocation(err, c.Location)
		} else if ok {
			closures = append(closures, c)
		}
	}
	var graphs []manifest.Graph
	for _, g := range b.m.Graphs {
		if ok, err := forPlatform(g.Platform, p); err != nil {
			return nil, parser.WithLocation(err, g.Location)
		} else if ok {
			graphs = append(graphs, g)
		}
	}
	if len(closures) == 0 {
		return nil, errors.Errorf("no CLOSURE for platform %s", platforms.Format(p))
	}
	if len(graphs) == 0 {
		return nil, parser.WithLocation(errors.New("no GRAPH for this CLOSURE: export the closure's reference graph, e.g. `nix path-info --json --recursive ./result > graph.json`, and add `GRAPH graph.json`"), closures[0].Location)
	}

	// Read every context file the manifest names in one transfer.
	var files []string
	for _, g := range graphs {
		rel, err := contextPath(g.File)
		if err != nil {
			return nil, parser.WithLocation(err, g.Location)
		}
		files = append(files, rel)
	}
	for _, c := range closures {
		for _, r := range c.Roots {
			if !b.isStorePath(r) {
				rel, err := contextPath(r)
				if err != nil {
					return nil, parser.WithLocation(err, c.Location)
				}
				files = append(files, rel)
			}
		}
	}
	ctxRef, err := b.contextFiles(ctx, files)
	if err != nil {
		return nil, err
	}

	in := &inputs{}
	var rootLocs []manifest.Location // the CLOSURE of each root
	for _, c := range closures {
		for _, r := range c.Roots {
			root, err := b.resolveRoot(ctx, ctxRef, r)
			if err != nil {
				return nil, parser.WithLocation(err, c.Location)
			}
			in.roots = append(in.roots, root)
			rootLocs = append(rootLocs, c.Location)
		}
	}

	var infos []store.Info
	for _, g := range graphs {
		rel, _ := contextPath(g.File)
		data, err := ctxRef.ReadFile(ctx, client.ReadRequest{Filename: rel})
		if err != nil {
			return nil, parser.WithLocation(errors.Wrapf(err, "GRAPH %s: cannot read it from the build context", g.File), g.Location)
		}
		graph, err := store.Load(g.File, bytes.NewReader(data))
		if err != nil {
			return nil, parser.WithLocation(err, g.Location)
		}
		if graph.StoreDir() != b.m.StoreDir {
			return nil, parser.WithLocation(errors.Errorf("GRAPH %s: its paths are in %s, but the store directory is %s (set it with STORE)", g.File, graph.StoreDir(), b.m.StoreDir), g.Location)
		}
		for _, path := range graph.Paths() {
			info, _ := graph.Info(path)
			infos = append(infos, info)
		}
	}
	graph, err := store.NewGraph(infos)
	if err != nil {
		return nil, parser.WithLocation(err, graphs[0].Location)
	}
	for i, root := range in.roots {
		if _, ok := graph.Info(root); !ok {
			return nil, parser.WithLocation(errors.Errorf("root %s is not in the GRAPH files", root), rootLocs[i])
		}
	}
	if in.closure, err = graph.Closure(in.roots...); err != nil {
		return nil, err
	}
	return in, nil
}

// isStorePath tells a root given as a store path from a context path.
func (b *build) isStorePath(root string) bool {
	return strings.HasPrefix(root, b.m.StoreDir+"/")
}

// resolveRoot turns a root into its store path: a store path (or a path
// inside one) as is, a context symlink by its target.
func (b *build) resolveRoot(ctx context.Context, ctxRef client.Reference, root string) (store.Path, error) {
	target := root
	if !b.isStorePath(root) {
		rel, _ := contextPath(root)
		// StatFile follows symlinks; a listing of the parent does not.
		entries, err := ctxRef.ReadDir(ctx, client.ReadDirRequest{Path: path.Dir(rel), IncludePattern: path.Base(rel)})
		if err != nil && !isNotExist(err) {
			return store.Path{}, errors.Wrapf(err, "root %s", root)
		}
		var st *fstypes.Stat
		for _, e := range entries {
			if e.Path == path.Base(rel) {
				st = e
			}
		}
		if st == nil {
			return store.Path{}, errors.Errorf("root %s is not in the build context", root)
		}
		if fs.FileMode(st.Mode)&fs.ModeSymlink == 0 {
			return store.Path{}, errors.Errorf("root %s is not a symlink into the store (such as nix-build's ./result) nor a store path", root)
		}
		target = st.Linkname
		if !path.IsAbs(target) || !strings.HasPrefix(target, b.m.StoreDir+"/") {
			return store.Path{}, errors.Errorf("root %s points to %s, which is outside the store %s", root, target, b.m.StoreDir)
		}
	}
	p, _, err := store.SplitSubPath(path.Clean(target))
	if err != nil {
		return store.Path{}, errors.Wrapf(err, "root %s", root)
	}
	if p.Dir != b.m.StoreDir {
		return store.Path{}, errors.Errorf("root %s is outside the store %s", root, b.m.StoreDir)
	}
	return p, nil
}

// contextFiles transfers just the named files of the main context.
func (b *build) contextFiles(ctx context.Context, files []string) (client.Reference, error) {
	st, err := b.bc.MainContext(ctx,
		llb.IncludePatterns(files),
		llb.SharedKeyHint("storepack-manifest-inputs"),
		dockerui.WithInternalName("load GRAPH files and roots"),
	)
	if err != nil {
		return nil, err
	}
	return b.solve(ctx, *st)
}

// storeSource returns the state holding the closure's store paths: the
// named context "store" if the build has one, else the main context. Only
// the closure's paths are transferred. A path the context lacks is an
// error naming it.
func (b *build) storeSource(ctx context.Context, in *inputs) (splb.Source, error) {
	paths := in.closure.Paths()
	bases := make([]string, len(paths))
	for i, p := range paths {
		bases[i] = p.Base()
	}
	nc, err := b.bc.NamedContext(storeContextName, dockerui.ContextOpt{
		NoDockerignore: true,
		AsyncLocalOpts: func() []llb.LocalOption {
			return []llb.LocalOption{llb.IncludePatterns(bases)}
		},
	})
	if err != nil {
		return splb.Source{}, err
	}
	var src splb.Source
	where := "the build context at " + b.m.StoreDir
	if nc != nil {
		st, _, err := nc.Load(ctx)
		if err != nil {
			return splb.Source{}, err
		}
		src = splb.Source{State: *st, Dir: "/"}
		where = "the build context \"" + storeContextName + "\""
	} else {
		rel := strings.TrimPrefix(b.m.StoreDir, "/")
		patterns := make([]string, len(bases))
		for i, base := range bases {
			patterns[i] = rel + "/" + base
		}
		st, err := b.bc.MainContext(ctx, llb.IncludePatterns(patterns))
		if err != nil {
			return splb.Source{}, err
		}
		src = splb.Source{State: *st, Dir: b.m.StoreDir}
	}

	ref, err := b.solve(ctx, src.State)
	if err != nil {
		return splb.Source{}, err
	}
	entries, err := ref.ReadDir(ctx, client.ReadDirRequest{Path: src.Dir})
	if err != nil && !isNotExist(err) {
		return splb.Source{}, errors.Wrapf(err, "list the store in %s", where)
	}
	present := map[string]bool{}
	for _, e := range entries {
		present[e.Path] = true
	}
	for _, p := range paths {
		if !present[p.Base()] {
			msg := "store path %s is not in %s"
			if refs := in.closure.Referrers(p); len(refs) > 0 {
				return splb.Source{}, errors.Errorf(msg+" (it is referenced by %s)", p, where, refs[0])
			}
			return splb.Source{}, errors.Errorf(msg, p, where)
		}
	}
	return src, nil
}

func (b *build) solve(ctx context.Context, st llb.State) (client.Reference, error) {
	def, err := st.Marshal(ctx, llb.WithCaps(b.bc.BuildOpts().LLBCaps))
	if err != nil {
		return nil, err
	}
	res, err := b.c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	return res.SingleRef()
}

// isNotExist recognises a missing file in a gateway error, which crosses
// the gRPC boundary as text.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "no such file or directory")
}

// contextPath turns a manifest file path into a path relative to the
// context root, refusing paths that leave the context.
func contextPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", errors.Errorf("%s: paths may not leave the build context (..)", p)
		}
	}
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		return "", errors.Errorf("%s: names the context root, not a file", p)
	}
	return rel, nil
}

// forPlatform reports whether an instruction scoped with --platform=spec
// (empty: every platform) applies to the target p.
func forPlatform(spec string, p ocispecs.Platform) (bool, error) {
	if spec == "" {
		return true, nil
	}
	want, err := platforms.Parse(spec)
	if err != nil {
		return false, errors.Wrapf(err, "--platform=%s", spec)
	}
	return platforms.OnlyStrict(p).Match(platforms.Normalize(want)), nil
}
