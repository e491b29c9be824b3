package frontend

import (
	"context"
	"io/fs"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/layerllb"
	"github.com/storepack/storepack/store"
)

// storeContextName is the named build context that carries the store
// (`--build-context store=/nix/store`). Without it the main context does,
// rooted at the host's / (`docker build -f app.storepack /`).
const storeContextName = "store"

// Context implements inputs.Source: just the named files of the main
// context are transferred.
func (b *build) Context(ctx context.Context, names []string) (inputs.Files, error) {
	st, err := b.bc.MainContext(ctx,
		llb.IncludePatterns(names),
		llb.SharedKeyHint("storepack-manifest-inputs"),
		dockerui.WithInternalName("load GRAPH files and roots"),
	)
	if err != nil {
		return nil, err
	}
	ref, err := b.solve(ctx, *st)
	if err != nil {
		return nil, err
	}
	return refFiles{ref: ref}, nil
}

// Store implements inputs.Source.
func (b *build) Store(ctx context.Context, paths []store.Path, graph *store.Graph) (inputs.Files, error) {
	_, files, _, err := b.storeSource(ctx, paths, graph)
	return files, err
}

// storeSource returns a state holding the given store paths, and where
// they come from for error messages; a path the store lacks is an
// *inputs.MissingPathError.
func (b *build) storeSource(ctx context.Context, paths []store.Path, graph *store.Graph) (layerllb.Source, inputs.Files, string, error) {
	bases := make([]string, len(paths))
	for i, p := range paths {
		bases[i] = p.Base()
	}
	src, files, where, err := b.storeEntries(ctx, bases)
	if err != nil {
		return layerllb.Source{}, nil, "", err
	}
	if err := inputs.CheckPresent(ctx, files, paths, graph, where); err != nil {
		return layerllb.Source{}, nil, "", err
	}
	return src, files, where, nil
}

// storeEntries returns a state holding the store entries that match
// patterns (base names, wildcards allowed), from the named context "store"
// if the build has one, else from the main context. Only those entries are
// transferred. where names the store for error messages.
func (b *build) storeEntries(ctx context.Context, patterns []string) (src layerllb.Source, files inputs.Files, where string, err error) {
	// Nix's temporary entries beside a path are never store paths.
	excludes := []string{"*.lock", "*.chroot", "*.check"}
	nc, err := b.bc.NamedContext(storeContextName, dockerui.ContextOpt{
		NoDockerignore: true,
		AsyncLocalOpts: func() []llb.LocalOption {
			return []llb.LocalOption{llb.IncludePatterns(patterns), llb.ExcludePatterns(excludes)}
		},
	})
	if err != nil {
		return layerllb.Source{}, nil, "", err
	}
	if nc != nil {
		st, _, err := nc.Load(ctx)
		if err != nil {
			return layerllb.Source{}, nil, "", err
		}
		src = layerllb.Source{State: *st, Dir: "/"}
		where = "the build context \"" + storeContextName + "\""
	} else {
		rel := strings.TrimPrefix(b.m.StoreDir, "/")
		prefixed := func(in []string) []string {
			out := make([]string, len(in))
			for i, p := range in {
				out[i] = rel + "/" + p
			}
			return out
		}
		st, err := b.bc.MainContext(ctx, llb.IncludePatterns(prefixed(patterns)), llb.ExcludePatterns(prefixed(excludes)))
		if err != nil {
			return layerllb.Source{}, nil, "", err
		}
		src = layerllb.Source{State: *st, Dir: b.m.StoreDir}
		where = "the build context at " + b.m.StoreDir
	}
	ref, err := b.solve(ctx, src.State)
	if err != nil {
		return layerllb.Source{}, nil, "", err
	}
	return src, refFiles{ref: ref, dir: strings.TrimPrefix(src.Dir, "/")}, where, nil
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

// refFiles reads a solved state through the gateway, below dir.
type refFiles struct {
	ref client.Reference
	dir string
}

func (f refFiles) ReadFile(ctx context.Context, name string) ([]byte, error) {
	return f.ref.ReadFile(ctx, client.ReadRequest{Filename: path.Join(f.dir, name)})
}

func (f refFiles) ReadHeader(ctx context.Context, name string, n int) ([]byte, error) {
	return f.ref.ReadFile(ctx, client.ReadRequest{Filename: path.Join(f.dir, name), Range: &client.FileRange{Length: n}})
}

func (f refFiles) ReadDir(ctx context.Context, dir string) ([]inputs.Entry, error) {
	stats, err := f.ref.ReadDir(ctx, client.ReadDirRequest{Path: path.Join("/", f.dir, dir)})
	if err != nil {
		return nil, err
	}
	entries := make([]inputs.Entry, len(stats))
	for i, st := range stats {
		entries[i] = inputs.Entry{Name: st.Path, Mode: fs.FileMode(st.Mode), Size: st.Size, Linkname: st.Linkname}
	}
	return entries, nil
}
