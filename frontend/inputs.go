package frontend

import (
	"bytes"
	"context"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/store"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// inputs is what the build context gives the manifest, read once for every
// target platform.
type inputs struct {
	closures []closureInput // in manifest order
	graphs   []graphInput
}

type closureInput struct {
	manifest.Closure
	platform *ocispecs.Platform // from --platform; nil: untagged
	roots    []store.Path
	built    *ocispecs.Platform // from the roots' ELF files; nil: none found
}

type graphInput struct {
	manifest.Graph
	platform *ocispecs.Platform
	graph    *store.Graph
}

// readInputs resolves every CLOSURE's roots, loads every GRAPH, and tells
// from their ELF files which platform each closure's roots are built for.
func (b *build) readInputs(ctx context.Context) (*inputs, error) {
	in := &inputs{}
	// Read every context file the manifest names in one transfer.
	var files []string
	for _, g := range b.m.Graphs {
		rel, err := contextPath(g.File)
		if err != nil {
			return nil, parser.WithLocation(err, g.Location)
		}
		files = append(files, rel)
	}
	for _, c := range b.m.Closures {
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

	var allRoots []store.Path
	for _, c := range b.m.Closures {
		ci := closureInput{Closure: c}
		if ci.platform, err = optionalPlatform(c.Platform); err != nil {
			return nil, parser.WithLocation(err, c.Location)
		}
		for _, r := range c.Roots {
			root, err := b.resolveRoot(ctx, ctxRef, r)
			if err != nil {
				return nil, parser.WithLocation(err, c.Location)
			}
			ci.roots = append(ci.roots, root)
		}
		allRoots = append(allRoots, ci.roots...)
		in.closures = append(in.closures, ci)
	}

	for _, g := range b.m.Graphs {
		gi := graphInput{Graph: g}
		if gi.platform, err = optionalPlatform(g.Platform); err != nil {
			return nil, parser.WithLocation(err, g.Location)
		}
		rel, _ := contextPath(g.File)
		data, err := ctxRef.ReadFile(ctx, client.ReadRequest{Filename: rel})
		if err != nil {
			return nil, parser.WithLocation(errors.Wrapf(err, "GRAPH %s: cannot read it from the build context", g.File), g.Location)
		}
		if gi.graph, err = store.Load(g.File, bytes.NewReader(data)); err != nil {
			return nil, parser.WithLocation(err, g.Location)
		}
		if dir := gi.graph.StoreDir(); dir != b.m.StoreDir {
			return nil, parser.WithLocation(errors.Errorf("GRAPH %s: its paths are in %s, but the store directory is %s (set it with STORE)", g.File, dir, b.m.StoreDir), g.Location)
		}
		in.graphs = append(in.graphs, gi)
	}

	// The roots alone tell the platform; the closures follow per platform.
	src, rootsRef, err := b.storeSource(ctx, allRoots, nil)
	var missing *missingPathError
	if errors.As(err, &missing) {
		for _, ci := range in.closures {
			if slices.Contains(ci.roots, missing.path) {
				return nil, parser.WithLocation(errors.Errorf("root %s is not in %s", missing.path, missing.where), ci.Location)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	for i := range in.closures {
		ci := &in.closures[i]
		built, file, err := detectPlatform(ctx, rootsRef, src.Dir, ci.roots)
		if err != nil {
			return nil, parser.WithLocation(err, ci.Location)
		}
		ci.built = built
		if built != nil && ci.platform != nil && !runsOn(*built, *ci.platform) {
			return nil, parser.WithLocation(errors.Errorf("CLOSURE --platform=%s: its binaries are built for %s (%s)", ci.Platform, platforms.Format(*built), file), ci.Location)
		}
	}
	return in, nil
}

// closure is one platform's closure and the values of its root variables.
type closure struct {
	roots    []store.Path
	vars     map[string]string
	graph    *store.Graph
	location manifest.Location // of the first CLOSURE
}

// forPlatform selects the closures and graphs for p and computes the closure.
func (in *inputs) forPlatform(p ocispecs.Platform) (*closure, error) {
	c := &closure{vars: map[string]string{}}
	var rootLocs []manifest.Location // the CLOSURE of each root
	var builtFor []string
	for _, ci := range in.closures {
		applies := ci.platform == nil && (ci.built == nil || runsOn(*ci.built, p)) ||
			ci.platform != nil && platforms.OnlyStrict(p).Match(*ci.platform)
		if !applies {
			if ci.built != nil {
				builtFor = append(builtFor, ci.Roots[0]+" is built for "+platforms.Format(*ci.built))
			}
			continue
		}
		if len(c.roots) == 0 {
			c.vars[manifest.RootVariable] = ci.roots[0].String()
			c.location = ci.Location
		}
		if ci.Name != "" {
			if _, dup := c.vars[ci.Name]; dup {
				return nil, parser.WithLocation(errors.Errorf("two CLOSUREs named %s apply to %s", ci.Name, platforms.Format(p)), ci.Location)
			}
			c.vars[ci.Name] = ci.roots[0].String()
		}
		for range ci.roots {
			rootLocs = append(rootLocs, ci.Location)
		}
		c.roots = append(c.roots, ci.roots...)
	}
	if len(c.roots) == 0 {
		msg := "no CLOSURE for platform " + platforms.Format(p)
		if len(builtFor) > 0 {
			msg += ": " + strings.Join(builtFor, "; ")
		}
		return nil, errors.New(msg)
	}

	var infos []store.Info
	var first *graphInput
	for i, g := range in.graphs {
		if g.platform != nil && !platforms.OnlyStrict(p).Match(*g.platform) {
			continue
		}
		if first == nil {
			first = &in.graphs[i]
		}
		for _, path := range g.graph.Paths() {
			info, _ := g.graph.Info(path)
			infos = append(infos, info)
		}
	}
	if first == nil {
		return nil, parser.WithLocation(errors.Errorf("no GRAPH for platform %s: export the closure's reference graph, e.g. `nix path-info --json --recursive ./result > graph.json`, and add `GRAPH graph.json`", platforms.Format(p)), c.location)
	}
	graph, err := store.NewGraph(infos)
	if err != nil {
		return nil, parser.WithLocation(err, first.Location)
	}
	for i, root := range c.roots {
		if _, ok := graph.Info(root); !ok {
			return nil, parser.WithLocation(errors.Errorf("root %s is not in the GRAPH files", root), rootLocs[i])
		}
	}
	if c.graph, err = graph.Closure(c.roots...); err != nil {
		return nil, err
	}
	return c, nil
}

func optionalPlatform(spec string) (*ocispecs.Platform, error) {
	if spec == "" {
		return nil, nil
	}
	p, err := parsePlatform(spec)
	return &p, err
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
