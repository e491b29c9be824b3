package frontend

import (
	"context"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/pkg/errors"
	splb "github.com/storepack/storepack/llb"
	"github.com/storepack/storepack/store"
)

// storeContextName is the named build context that carries the store
// (`--build-context store=/nix/store`). Without it the main context does,
// rooted at the host's / (`docker build -f app.storepack /`).
const storeContextName = "store"

// storeSource returns a state holding the given store paths, from the named
// context "store" if the build has one, else from the main context; only
// those paths are transferred. A path the context lacks is an error naming
// it and, when graph is given, a path that references it.
func (b *build) storeSource(ctx context.Context, paths []store.Path, graph *store.Graph) (splb.Source, client.Reference, error) {
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
		return splb.Source{}, nil, err
	}
	var src splb.Source
	where := "the build context at " + b.m.StoreDir
	if nc != nil {
		st, _, err := nc.Load(ctx)
		if err != nil {
			return splb.Source{}, nil, err
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
			return splb.Source{}, nil, err
		}
		src = splb.Source{State: *st, Dir: b.m.StoreDir}
	}

	ref, err := b.solve(ctx, src.State)
	if err != nil {
		return splb.Source{}, nil, err
	}
	entries, err := ref.ReadDir(ctx, client.ReadDirRequest{Path: src.Dir})
	if err != nil && !isNotExist(err) {
		return splb.Source{}, nil, errors.Wrapf(err, "list the store in %s", where)
	}
	present := map[string]bool{}
	for _, e := range entries {
		present[e.Path] = true
	}
	for _, p := range paths {
		if present[p.Base()] {
			continue
		}
		missing := &missingPathError{path: p, where: where}
		if graph != nil {
			if refs := graph.Referrers(p); len(refs) > 0 {
				missing.referrer = &refs[0]
			}
		}
		return splb.Source{}, nil, missing
	}
	return src, ref, nil
}

// missingPathError is a store path the store context lacks.
type missingPathError struct {
	path     store.Path
	referrer *store.Path
	where    string
}

func (e *missingPathError) Error() string {
	msg := "store path " + e.path.String() + " is not in " + e.where
	if e.referrer != nil {
		msg += " (it is referenced by " + e.referrer.String() + ")"
	}
	return msg
}
