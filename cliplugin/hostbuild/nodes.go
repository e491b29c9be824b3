package hostbuild

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// nodeWork is the platforms one node of a builder builds.
type nodeWork struct {
	node      *Node
	platforms []ocispecs.Platform
}

// assign sends each of ps to the node of b that builds it, as buildx
// does: the node declared for exactly that platform; when some platform
// has none, every platform goes to the first node among what the nodes are
// declared for and what their workers say they run (arm/v6 on an
// arm/v7 node), else to the first node. Nodes given nothing are left out
// (and not dialled unless their workers had to be asked); no platforms (the
// builder's own) go to the first node.
func (b *Builder) assign(ctx context.Context, ps []ocispecs.Platform) ([]nodeWork, error) {
	if len(b.Nodes) == 1 {
		return []nodeWork{{node: b.Nodes[0], platforms: ps}}, nil
	}
	declared := make([][]ocispecs.Platform, len(b.Nodes))
	for i, n := range b.Nodes {
		declared[i] = n.Platforms
	}
	idx, perfect := nodeFor(declared, ps, platforms.OnlyStrict)
	if !perfect {
		if err := connect(ctx, b.Nodes...); err != nil {
			return nil, err
		}
		workers := make([][]ocispecs.Platform, len(b.Nodes))
		eg, egCtx := errgroup.WithContext(ctx)
		for i, n := range b.Nodes {
			eg.Go(func() error {
				ws, err := n.Client.ListWorkers(egCtx)
				if err != nil {
					return err
				}
				workers[i] = append(workers[i], n.Platforms...)
				for _, w := range ws {
					workers[i] = append(workers[i], w.Platforms...)
				}
				return nil
			})
		}
		if err := eg.Wait(); err != nil {
			return nil, err
		}
		idx, _ = nodeFor(workers, ps, platforms.Only)
	}
	var work []nodeWork
	at := map[int]int{} // node index -> its place in work
	for i, p := range ps {
		w, ok := at[idx[i]]
		if !ok {
			w = len(work)
			at[idx[i]] = w
			work = append(work, nodeWork{node: b.Nodes[idx[i]]})
		}
		work[w].platforms = append(work[w].platforms, p)
	}
	if len(work) == 0 {
		work = []nodeWork{{node: b.Nodes[0]}}
	}
	return work, nil
}

// nodeFor is, for each of ps, the index of the first node among nodes
// (the platforms each runs) with a platform whose matcher matches it, 0
// where none does; perfect says that each had one.
func nodeFor(nodes [][]ocispecs.Platform, ps []ocispecs.Platform, matcher func(ocispecs.Platform) platforms.MatchComparer) (idx []int, perfect bool) {
	perfect = true
	for _, p := range ps {
		best := slices.IndexFunc(nodes, func(runs []ocispecs.Platform) bool {
			return slices.ContainsFunc(runs, func(q ocispecs.Platform) bool { return matcher(q).Match(p) })
		})
		if best == -1 {
			best, perfect = 0, false
		}
		idx = append(idx, best)
	}
	return idx, perfect
}

// on is b reached through its node n alone.
func (b *Builder) on(n *Node) *Builder {
	name := b.Name
	if len(b.Nodes) > 1 {
		name += "/" + n.Name
	}
	return &Builder{Name: name, Driver: b.Driver, Kind: b.Kind, Client: n.Client, Nodes: []*Node{n}}
}

// buildOn builds in on b: on the one node that builds all its platforms,
// else on each node its own.
func (in *Input) buildOn(ctx context.Context, b *Builder, out Output, statusCh chan *bkclient.SolveStatus) (*Result, error) {
	work, err := b.assign(ctx, in.Platforms)
	if err != nil {
		close(statusCh)
		return nil, fmt.Errorf("builder %q: the platforms its nodes run: %w", b.Name, err)
	}
	if len(work) == 1 {
		if err := connect(ctx, work[0].node); err != nil {
			close(statusCh)
			return nil, err
		}
		return in.buildWith(ctx, b.on(work[0].node), out, statusCh)
	}
	res, err := in.buildOnNodes(ctx, b, work, out, statusCh)
	close(statusCh)
	return res, err
}

// buildOnNodes builds each node's platforms on it, all at once, as buildx
// builds on a builder of several nodes: each node pushes its images by
// digest to the repositories out pushes to, and one index of them all is
// then pushed under each name. Only a push can join them.
func (in *Input) buildOnNodes(ctx context.Context, b *Builder, work []nodeWork, out Output, statusCh chan<- *bkclient.SolveStatus) (*Result, error) {
	if len(out.Exports) != 1 || out.Exports[0].Type != "image" || out.Exports[0].Attrs["push"] != "true" || out.Exports[0].PushIndex == nil {
		return nil, fmt.Errorf("the builder %q builds these platforms on %d nodes (%s): only --push joins their images, into one index in the registry; to load or export them, build each node's platforms on their own (--platform)", b.Name, len(work), describe(work))
	}
	var nodes []*Node
	for _, w := range work {
		nodes = append(nodes, w.node)
	}
	if err := connect(ctx, nodes...); err != nil {
		return nil, err
	}
	push := out.Exports[0]
	names := strings.Split(push.Attrs["name"], ",")
	repos := make([]string, len(names))
	for i, n := range names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return nil, fmt.Errorf("--push %s: %w", n, err)
		}
		repos[i] = reference.TrimNamed(named).String()
	}
	byDigest := Export{Type: "image", Attrs: maps.Clone(push.Attrs)}
	byDigest.Attrs["name"], byDigest.Attrs["push-by-digest"] = strings.Join(repos, ","), "true"
	pushed := make([]ocispecs.Descriptor, len(work))
	var forwards sync.WaitGroup
	eg, egCtx := errgroup.WithContext(ctx)
	for i, w := range work {
		ch := make(chan *bkclient.SolveStatus)
		forwards.Go(func() {
			for s := range ch {
				statusCh <- s
			}
		})
		nodeIn, nodeOut := *in, out
		nodeIn.Platforms, nodeOut.Exports = w.platforms, []Export{byDigest}
		eg.Go(func() error {
			res, err := nodeIn.buildWith(egCtx, b.on(w.node), nodeOut, ch)
			if err != nil {
				return err
			}
			if pushed[i], err = pushedImage(res, w.platforms); err != nil {
				return fmt.Errorf("node %s: %w", w.node.Name, err)
			}
			return nil
		})
	}
	err := eg.Wait()
	forwards.Wait()
	if err != nil {
		return nil, err
	}
	done := (&progress{ch: statusCh}).step(ctx, fmt.Sprintf("[storepack] one index of the %d nodes' images: %s", len(work), push.Attrs["name"]))
	res := &Result{Metadata: map[string]any{"image.name": push.Attrs["name"]}}
	for _, name := range names {
		idx, err := push.PushIndex(ctx, name, pushed)
		done(err, "")
		if err != nil {
			return nil, err
		}
		res.Metadata[exptypes.ExporterImageDigestKey] = idx.Digest.String()
	}
	return res, nil
}

// pushedImage is the image a node pushed by digest, as its exporter
// describes it; a manifest gets the platform it was built for.
func pushedImage(res *Result, built []ocispecs.Platform) (ocispecs.Descriptor, error) {
	var desc ocispecs.Descriptor
	encoded, _ := res.Metadata[exptypes.ExporterImageDescriptorKey].(string)
	data, err := base64.StdEncoding.DecodeString(encoded)
	if err == nil {
		err = json.Unmarshal(data, &desc)
	}
	if err != nil || desc.Digest == "" {
		return desc, fmt.Errorf("the builder did not describe the image it pushed (%s %q): %v", exptypes.ExporterImageDescriptorKey, encoded, err)
	}
	if images.IsManifestType(desc.MediaType) && len(built) == 1 {
		p := platforms.Normalize(built[0])
		desc.Platform = &p
	}
	return desc, nil
}

// describe says which node builds which platforms.
func describe(work []nodeWork) string {
	var parts []string
	for _, w := range work {
		parts = append(parts, fmt.Sprintf("%s on %s", strings.Join(formatAll(w.platforms), ","), w.node.Name))
	}
	return strings.Join(parts, "; ")
}

func formatAll(ps []ocispecs.Platform) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = platforms.Format(p)
	}
	return names
}
