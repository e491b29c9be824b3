package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// storeContextName is the named build context that carries the store
// (`--build-context store=/nix/store`). Without it the main context does,
// rooted at the host's / (`docker build -f app.storepack /`).
const storeContextName = "store"

// HelperBinary is where Dockerfile.frontend puts the frontend binary.
const HelperBinary = "/bin/storepack-frontend"

// gatewaySource reads the build contexts through the gateway; what needs
// every file of a store path read runs in the builder (package inbuilder).
// What it transfers comes back in its results (inputs.Transfers): the
// layers that hold a root copy it from the roots' transfer, so that a
// changed application is sent once, and a discovered closure's layers copy
// from the discovery's transfers.
type gatewaySource struct {
	c  client.Client
	bc *dockerui.Client
}

var _ manifest2llb.Source = (*gatewaySource)(nil)

// Context implements inputs.Source: just the named files of the main
// context are transferred.
func (g *gatewaySource) Context(ctx context.Context, names []string) (inputs.Files, error) {
	_, files, err := g.contextFiles(ctx, names, "storepack-manifest-inputs", "load GRAPH files and roots")
	return files, err
}

// ContextState implements manifest2llb.Source.
func (g *gatewaySource) ContextState(ctx context.Context, names []string) (llb.State, inputs.Files, error) {
	return g.contextFiles(ctx, names, manifest2llb.CopySources, "load COPY sources")
}

// contextFiles transfers the named files of the main context into the
// builder's copy named transfer.
func (g *gatewaySource) contextFiles(ctx context.Context, names []string, transfer, step string) (llb.State, inputs.Files, error) {
	st, err := g.bc.MainContext(ctx,
		llb.IncludePatterns(names),
		llb.SharedKeyHint(transfer),
		dockerui.WithInternalName(step),
	)
	if err != nil {
		return llb.State{}, nil, err
	}
	ref, err := g.solve(ctx, *st)
	if err != nil {
		return llb.State{}, nil, err
	}
	return *st, refFiles{ref: ref}, nil
}

// Store implements inputs.Source.
func (g *gatewaySource) Store(ctx context.Context, paths []store.Path, graph *store.Graph) (inputs.StoreFiles, error) {
	part, files, where, err := g.storeSource(ctx, transferRoots, "transfer the roots", paths, graph, false)
	if err != nil {
		return inputs.StoreFiles{}, err
	}
	return inputs.StoreFiles{Files: files, Transfers: inputs.Transfers{Parts: []layerllb.Part{part}, Where: where}}, nil
}

// StoreState implements manifest2llb.Source. A closure from a GRAPH is
// transferred once, but for the roots, which are in the builder already
// (so that a changed application is sent once), and then walked in the
// builder (check-store): it refuses what a store path cannot hold
// (devices, fifos, sockets, setuid and setgid bits), and compares each
// path's NAR size with the GRAPH's, which tells a store that is not the
// one the GRAPH describes. A discovered closure is in the builder already,
// whole, from its discovery.
//
// The rest of the closure is transferred layer by layer (a layer of more
// than maxTransferPaths in parts, by hash), each transfer holding its
// layer's paths and nothing else, so that the layer copies the transfer
// whole: a copy of each store path would name every path once more in the
// image's definition, which BuildKit takes in one gRPC message of at most
// 16 MiB (with the image config, in the frontend's Return). The transfers
// run maxParallelTransfers at a time.
func (g *gatewaySource) StoreState(ctx context.Context, c *inputs.PlatformClosure, plan layering.Plan, opt manifest2llb.StoreOptions) (manifest2llb.Store, error) {
	held := c.Transfers
	if c.Discovered {
		src, err := layerllb.SplitSource(plan, held.Parts)
		if err != nil {
			return manifest2llb.Store{}, err
		}
		if !opt.NarHashes {
			return manifest2llb.Store{Layers: src}, nil
		}
		return g.measure(ctx, c, src, held.Parts, held.Where, opt)
	}
	// Split the closure between the parts that hold some of it (the roots)
	// and the transfers of the rest.
	var parts []layerllb.Part
	holders := make([]layerllb.Part, len(held.Parts))
	heldBy := func(p store.Path) int {
		return slices.IndexFunc(held.Parts, func(part layerllb.Part) bool { return slices.Contains(part.Paths, p) })
	}
	type transfer struct {
		name, step string
		paths      []store.Path
	}
	var transfers []transfer
	for i, layer := range plan.Layers {
		var rest []store.Path
		for _, p := range layer.Paths {
			if h := heldBy(p); h >= 0 {
				holders[h].Paths = append(holders[h].Paths, p)
			} else {
				rest = append(rest, p)
			}
		}
		for _, group := range transferGroups(rest, maxTransferPaths) {
			t := transfer{
				name:  transferClosure + " " + layer.Key,
				step:  fmt.Sprintf("transfer %d store paths of layer %d/%d", len(group.paths), i+1, len(plan.Layers)),
				paths: group.paths,
			}
			if group.prefix != "" {
				t.name += " " + group.prefix
				t.step += " (hashes " + group.prefix + "…)"
			}
			transfers = append(transfers, t)
		}
	}
	for i, part := range held.Parts {
		if len(holders[i].Paths) > 0 {
			part.Paths = holders[i].Paths
			parts = append(parts, part)
		}
	}
	where := held.Where
	sent := make([]layerllb.Part, len(transfers))
	wheres := make([]string, len(transfers))
	eg, egctx := errgroup.WithContext(ctx)
	eg.SetLimit(maxParallelTransfers)
	for i, t := range transfers {
		eg.Go(func() error {
			part, _, w, err := g.storeSource(egctx, t.name, t.step, t.paths, c.Graph, true)
			sent[i], wheres[i] = part, w
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return manifest2llb.Store{}, err
	}
	if len(wheres) > 0 {
		where = wheres[0]
	}
	parts = append(parts, sent...)
	src, err := layerllb.SplitSource(plan, parts)
	if err != nil {
		return manifest2llb.Store{}, err
	}
	return g.measure(ctx, c, src, parts, where, opt)
}

// measure walks the closure's paths, held by parts, in the builder with
// the frontend binary: check-store, or hash-store when opt asks for NAR
// hashes or files. Without the frontend image nothing is walked, unless hashes are
// asked for, which is then an error.
func (g *gatewaySource) measure(ctx context.Context, c *inputs.PlatformClosure, src layerllb.Source, parts []layerllb.Part, where string, opt manifest2llb.StoreOptions) (manifest2llb.Store, error) {
	result := manifest2llb.Store{Layers: src}
	if !opt.Check && !opt.NarHashes {
		return result, nil
	}
	helper := g.helper()
	if helper == nil {
		if opt.NarHashes {
			if opt.Files {
				return manifest2llb.Store{}, errors.New("the store paths' files (for an SBOM that lists them) cannot be read in the builder: the frontend image is unknown; run the frontend through `# syntax=`")
			}
			return manifest2llb.Store{}, errors.New("the store paths' NAR hashes (for STORE --with-db, or for an SBOM of a graph without them) cannot be read in the builder: the frontend image is unknown; run the frontend through `# syntax=`, or give a GRAPH with NAR hashes (nix path-info --json)")
		}
		return result, nil
	}
	paths := c.Graph.Paths()
	command, step := inbuilder.CheckStore, fmt.Sprintf("check %d store paths", len(paths))
	switch {
	case opt.Files:
		command, step = inbuilder.HashStore, fmt.Sprintf("hash %d store paths (NAR hashes and files)", len(paths))
	case opt.NarHashes:
		command, step = inbuilder.HashStore, fmt.Sprintf("hash %d store paths (NAR hashes)", len(paths))
	}
	found, err := g.scan(ctx, *helper, command, opt.Files, parts, where, step)
	if err != nil {
		return manifest2llb.Store{}, err
	}
	result.Scans = make(map[store.Path]store.HashScan, len(paths))
	for _, p := range paths {
		if err := c.CheckNarSize(p, found[p.String()].NarSize, where); err != nil {
			return manifest2llb.Store{}, err
		}
		result.Scans[p] = found[p.String()]
	}
	return result, nil
}

// Discover implements inputs.Source for a closure without a GRAPH: it grows
// the closure from the roots in rounds, scanning inside the builder rather
// than streaming files through the gateway. Each round transfers only the
// entries that the hashes the last round found name (so nothing is sent
// twice), runs the frontend binary on them to find the hashes they
// mention, and keeps the hashes that name an entry of the store. No store
// path outside the closure is read. Each round's transfer has a copy of
// its own in the builder, by platform and round, which the same round of
// the next build syncs: within a build, BuildKit does not sync into a copy
// that an earlier transfer's result still holds, so rounds sharing one
// would each send everything again. The layers copy from these transfers.
func (g *gatewaySource) Discover(ctx context.Context, platform ocispecs.Platform, roots []store.Path, held inputs.Transfers) (inputs.Discovery, error) {
	helper := g.helper()
	if helper == nil {
		return inputs.Discovery{}, errors.New("no GRAPH for this CLOSURE, and the frontend image is unknown, so the closure cannot be scanned in the builder: add a GRAPH file (`nix path-info --json --recursive ./result > graph.json`) or run the frontend through `# syntax=`")
	}
	storeDir := roots[0].Dir
	known := map[string]store.Path{} // hash → a store path present in the store
	for _, r := range roots {
		known[r.Hash] = r
	}
	var d inputs.Discovery
	// The roots are in the builder already, from Store.
	var src layerllb.Part
	where := held.Where
	if i := slices.IndexFunc(held.Parts, func(part layerllb.Part) bool { return holdsAll(part.Paths, roots) }); i >= 0 {
		src = layerllb.Part{State: held.Parts[i].State, Dir: held.Parts[i].Dir}
	} else {
		var err error
		if src, _, where, err = g.storeSource(ctx, scanTransfer(platform, 1), "transfer the roots to scan", roots, nil, false); err != nil {
			return inputs.Discovery{}, err
		}
	}
	d.Where = where
	scans := map[store.Path]store.HashScan{}
	for frontier, round := slices.Clone(roots), 1; len(frontier) > 0; round++ {
		src.Paths = frontier
		d.Parts = append(d.Parts, src)
		found, err := g.scan(ctx, *helper, inbuilder.FindHashes, false, []layerllb.Part{src}, where, fmt.Sprintf("scan %d store paths for references (round %d)", len(frontier), round))
		if err != nil {
			return inputs.Discovery{}, err
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
		var patterns []string
		for _, h := range slices.Sorted(maps.Keys(pending)) {
			patterns = append(patterns, h+"-*")
		}
		var files inputs.Files
		src, files, where, err = g.storeEntries(ctx, scanTransfer(platform, round+1), fmt.Sprintf("transfer the entries of %d hashes found to scan", len(patterns)), storeDir, patterns)
		if err != nil {
			return inputs.Discovery{}, err
		}
		entries, err := files.ReadDir(ctx, "")
		if err != nil {
			return inputs.Discovery{}, err
		}
		for _, e := range entries {
			p, err := store.ParsePath(path.Join(storeDir, e.Name))
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
	var err error
	d.Graph, err = store.NewGraph(infos)
	return d, err
}

// holdsAll reports whether have holds every path of want.
func holdsAll(have, want []store.Path) bool {
	for _, p := range want {
		if !slices.Contains(have, p) {
			return false
		}
	}
	return true
}

// scanTransfer names the builder's copy of a discovery round's transfer.
func scanTransfer(p ocispecs.Platform, round int) string {
	return fmt.Sprintf("%s %s %d", transferScan, platforms.Format(p), round)
}

// scan runs command of the frontend binary in the builder on the paths of
// parts (with their files: inbuilder.Helper.Scan) and returns what it
// found, by store path.
func (g *gatewaySource) scan(ctx context.Context, helper inbuilder.Helper, command inbuilder.Command, files bool, parts []layerllb.Part, where string, step string) (map[string]store.HashScan, error) {
	st, err := helper.Scan(command, parts, files, step)
	if err != nil {
		return nil, err
	}
	ref, err := g.solve(ctx, st)
	if err != nil {
		return nil, err
	}
	data, err := refFiles{ref: ref}.ReadFile(ctx, inbuilder.ResultFile)
	if err != nil {
		return nil, err
	}
	found, err := inbuilder.DecodeScanResult(data, where)
	if err != nil {
		return nil, err
	}
	// A result that leaves a path out would read as a path with no size
	// and no references.
	for _, part := range parts {
		for _, p := range part.Paths {
			if _, ok := found[p.String()]; !ok {
				return nil, fmt.Errorf("the scan of %s in the builder reported nothing of %s", where, p)
			}
		}
	}
	return found, nil
}

// maxParallelTransfers bounds the transfers of a closure under way at
// once: each is a walk of the store on the client, a stream of the session
// and a write in the builder.
const maxParallelTransfers = 4

// maxTransferPaths bounds the store paths of one transfer: the session
// sends a transfer's include patterns, a base name a path (storePatterns),
// in the headers of a gRPC request, which are capped at 1 MiB.
const maxTransferPaths = 10000

// transferGroup is the store paths of one transfer, those whose hash part
// starts with prefix ("": all of them).
type transferGroup struct {
	prefix string
	paths  []store.Path
}

// transferGroups keeps paths in one transfer up to max of them, and cuts
// more by the first character of their hash part (up to 32 transfers of
// about a 32nd each): a path is then in the same transfer from one release
// to the next, whose copy in the builder is synced rather than sent again.
func transferGroups(paths []store.Path, max int) []transferGroup {
	if len(paths) == 0 {
		return nil
	}
	if len(paths) <= max {
		return []transferGroup{{paths: paths}}
	}
	byPrefix := map[string][]store.Path{}
	for _, p := range paths {
		byPrefix[p.Hash[:1]] = append(byPrefix[p.Hash[:1]], p)
	}
	groups := make([]transferGroup, 0, len(byPrefix))
	for _, prefix := range slices.Sorted(maps.Keys(byPrefix)) {
		groups = append(groups, transferGroup{prefix: prefix, paths: byPrefix[prefix]})
	}
	return groups
}

// storeSource transfers the given store paths into the builder's copy
// named transfer, and returns the part holding them, and where they come
// from for error messages; a path the store lacks is an
// *inputs.MissingPathError. step names the transfer in progress output.
// only: the part holds paths and nothing else (layerllb.Part.Only), which is
// checked.
func (g *gatewaySource) storeSource(ctx context.Context, transfer, step string, paths []store.Path, graph *store.Graph, only bool) (layerllb.Part, inputs.Files, string, error) {
	part, files, where, err := g.storeEntries(ctx, transfer, step, paths[0].Dir, storePatterns(paths))
	if err != nil {
		return layerllb.Part{}, nil, "", err
	}
	check := inputs.CheckPresent
	if only {
		check = inputs.CheckOnly
	}
	if err := check(ctx, files, paths, graph, where); err != nil {
		return layerllb.Part{}, nil, "", err
	}
	part.Paths, part.Only = paths, only
	return part, files, where, nil
}

// storePatterns are the include patterns of a transfer of paths: their
// base names. A pattern without wildcards is what lets the client's walk
// (fsutil) compare names rather than run a regular expression, and skip
// every other entry of the store without reading it.
func storePatterns(paths []store.Path) []string {
	patterns := make([]string, len(paths))
	for i, p := range paths {
		patterns[i] = p.Base()
	}
	return patterns
}

// The transfers of store entries, each with its own copy in the builder
// (its shared key): the builder syncs a copy incrementally, sending only
// what changed since its last transfer, so transfers of different sets
// must not share one, or each would undo the other (a warm build would
// send the whole closure again after the roots alone). transferScan
// starts the names of the discovery rounds' (scanTransfer).
const (
	transferRoots   = "storepack-store-roots"
	transferClosure = "storepack-store-closure"
	transferScan    = "storepack-store-scan"
)

// storeEntries returns a state holding the entries of storeDir that match
// patterns (base names, wildcards allowed), from the named context "store"
// if the build has one, else from the main context. Only those entries are
// transferred, into the builder's copy named by transfer. where names the
// store for error messages.
func (g *gatewaySource) storeEntries(ctx context.Context, transfer, step, storeDir string, patterns []string) (src layerllb.Part, files inputs.Files, where string, err error) {
	// Nix's temporary entries beside a path are never store paths.
	excludes := []string{"*.lock", "*.chroot", "*.check"}
	nc, err := g.bc.NamedContext(storeContextName, dockerui.ContextOpt{
		NoDockerignore: true,
		AsyncLocalOpts: func() []llb.LocalOption {
			return []llb.LocalOption{llb.IncludePatterns(patterns), llb.ExcludePatterns(excludes), llb.SharedKeyHint(transfer), llb.WithCustomName(step)}
		},
	})
	if err != nil {
		return layerllb.Part{}, nil, "", err
	}
	if nc != nil {
		st, _, err := nc.Load(ctx)
		if err != nil {
			return layerllb.Part{}, nil, "", err
		}
		src = layerllb.Part{State: *st, Dir: "/"}
		where = "the build context \"" + storeContextName + "\""
	} else {
		rel := strings.TrimPrefix(storeDir, "/")
		prefixed := func(in []string) []string {
			out := make([]string, len(in))
			for i, p := range in {
				out[i] = rel + "/" + p
			}
			return out
		}
		st, err := g.bc.MainContext(ctx, llb.IncludePatterns(prefixed(patterns)), llb.ExcludePatterns(prefixed(excludes)), llb.SharedKeyHint(transfer), llb.WithCustomName(step))
		if err != nil {
			return layerllb.Part{}, nil, "", err
		}
		src = layerllb.Part{State: *st, Dir: storeDir}
		where = "the build context at " + storeDir
	}
	ref, err := g.solve(ctx, src.State)
	if err != nil {
		return layerllb.Part{}, nil, "", err
	}
	return src, refFiles{ref: ref, dir: strings.TrimPrefix(src.Dir, "/")}, where, nil
}

// previousPlan reads the layer plan recorded in the config of image ref
// for platform p, from the builder's image store or a registry; only the
// config is fetched.
func (g *gatewaySource) previousPlan(ctx context.Context, ref string, p ocispecs.Platform) (*manifest2llb.PreviousImage, error) {
	_, data, err := readImageConfig(ctx, g.c, g.bc, ref, p, "read the layer plan of "+ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, fmt.Errorf("%s: image config: %w", ref, err)
	}
	plan, err := layerllb.RecordedPlan(img.Config.Labels)
	if errors.Is(err, layerllb.ErrNoRecordedPlan) {
		return nil, fmt.Errorf("%s: the image (%s) %w", ref, platforms.Format(p), err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return &manifest2llb.PreviousImage{Plan: plan}, nil
}

// resolveImage reads FROM images through the gateway, as the Dockerfile
// frontend reads its FROM, and pins them to the digest read.
func resolveImage(c client.Client, bc *dockerui.Client) manifest2llb.ImageResolver {
	return func(ctx context.Context, ref string, p ocispecs.Platform) (string, []byte, error) {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return "", nil, err
		}
		named = reference.TagNameOnly(named)
		dgst, data, err := readImageConfig(ctx, c, bc, named.String(), p, "load metadata for "+named.String())
		if err != nil {
			return "", nil, err
		}
		if dgst == "" {
			return named.String(), data, nil
		}
		pinned, err := reference.WithDigest(named, dgst)
		if err != nil {
			return "", nil, err
		}
		return pinned.String(), data, nil
	}
}

// readImageConfig reads the config of image ref for platform p from the
// builder's image store or a registry, as the build's resolve mode (--pull)
// says; step names the read in progress output. The builder's error comes
// as text: a gRPC status inside an error replaces the message of every
// error that wraps it (the manifest's line, the instruction) with its own.
// The read is bounded by manifest2llb.RegistryTimeout: BuildKit waits
// without end for a registry that never answers.
func readImageConfig(ctx context.Context, c client.Client, bc *dockerui.Client, ref string, p ocispecs.Platform, step string) (digest.Digest, []byte, error) {
	ctx, cancel := manifest2llb.WithRegistryTimeout(ctx)
	defer cancel()
	_, dgst, data, err := c.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
		LogName: "[storepack] " + step,
		ImageOpt: &sourceresolver.ResolveImageOpt{
			Platform:    &p,
			ResolveMode: bc.ImageResolveMode.String(),
		},
	})
	if err != nil {
		if bounded := manifest2llb.RegistryError(ctx, ref, err); bounded != err {
			return "", nil, bounded
		}
		return "", nil, errors.New(err.Error())
	}
	return dgst, data, nil
}

// helper returns the frontend image, which runs the frontend binary in the
// builder, or nil when it is unknown.
func (g *gatewaySource) helper() *inbuilder.Helper {
	if cf, ok := g.c.(interface{ CurrentFrontend() (*llb.State, error) }); ok {
		if st, err := cf.CurrentFrontend(); err == nil && st != nil {
			return &inbuilder.Helper{Image: *st, Binary: HelperBinary}
		}
	}
	if ref := g.bc.BuildOpts().Opts["source"]; ref != "" {
		return &inbuilder.Helper{
			Image:  llb.Image(ref, llb.Platform(g.bc.BuildPlatforms[0]), llb.WithMetaResolver(g.c)),
			Binary: HelperBinary,
		}
	}
	return nil
}

func (g *gatewaySource) solve(ctx context.Context, st llb.State) (client.Reference, error) {
	return solve(ctx, g.c, g.bc, st)
}

// solve solves st with the builder's caps and the constraints co.
func solve(ctx context.Context, c client.Client, bc *dockerui.Client, st llb.State, co ...llb.ConstraintsOpt) (client.Reference, error) {
	def, err := st.Marshal(ctx, append(co, llb.WithCaps(bc.BuildOpts().LLBCaps))...)
	if err != nil {
		return nil, err
	}
	res, err := c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	return res.SingleRef()
}

// StateReader reads files of states a conversion makes, solved as BuildWith
// solves each platform's image, so that the image's solve reuses them.
func StateReader(c client.Client, bc *dockerui.Client) layerllb.FileReader {
	return func(ctx context.Context, st llb.State, p ocispecs.Platform, name string) ([]byte, error) {
		ref, err := solve(ctx, c, bc, st, llb.Platform(p))
		if err != nil {
			return nil, err
		}
		// The gateway's errors do not say that a file is missing, its
		// directory listing does.
		switch ok, err := exists(ctx, ref, path.Clean("/"+name)); {
		case err != nil:
			return nil, err
		case !ok:
			return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
		}
		return refFiles{ref: ref}.ReadFile(ctx, name)
	}
}

// exists reports whether ref holds the absolute path name.
func exists(ctx context.Context, ref client.Reference, name string) (bool, error) {
	dir := path.Dir(name)
	if dir == name {
		return true, nil
	}
	if ok, err := exists(ctx, ref, dir); !ok || err != nil {
		return ok, err
	}
	entries, err := ref.ReadDir(ctx, client.ReadDirRequest{Path: dir, IncludePattern: path.Base(name)})
	return len(entries) > 0, err
}

// refFiles reads a solved state through the gateway, below dir.
type refFiles struct {
	ref client.Reference
	dir string
}

var _ inputs.Files = refFiles{}

// ReadFile reads name whole, a range at a time (see Open).
func (f refFiles) ReadFile(ctx context.Context, name string) ([]byte, error) {
	r, _ := f.Open(ctx, name)
	return io.ReadAll(r)
}

// Open implements inputs.Files, reading a range at a time: the gateway
// sends at most 16 MiB of a file in one read (BuildKit's message size),
// less than the GRAPH of a closure of 40,000 paths.
func (f refFiles) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return &rangeReader{ctx: ctx, ref: f.ref, name: path.Join(f.dir, name)}, nil
}

// readChunk is how much of a file one gateway read asks for.
const readChunk = 8 << 20

// rangeReader reads a file of a solved state through the gateway,
// readChunk bytes a request.
type rangeReader struct {
	ctx    context.Context
	ref    client.Reference
	name   string
	offset int    // of the next request
	chunk  []byte // read and not yet returned
	last   bool   // the file ends with chunk
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if len(r.chunk) == 0 {
		if r.last {
			return 0, io.EOF
		}
		chunk, err := r.ref.ReadFile(r.ctx, client.ReadRequest{Filename: r.name, Range: &client.FileRange{Offset: r.offset, Length: readChunk}})
		if err != nil {
			return 0, err
		}
		r.offset += len(chunk)
		r.chunk, r.last = chunk, len(chunk) < readChunk
		if len(chunk) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

func (r *rangeReader) Close() error { return nil }

func (f refFiles) ReadHeader(ctx context.Context, name string, n int) ([]byte, error) {
	return f.ref.ReadFile(ctx, client.ReadRequest{Filename: path.Join(f.dir, name), Range: &client.FileRange{Length: n}})
}

func (f refFiles) ReadDir(ctx context.Context, dir string) ([]inputs.Entry, error) {
	return f.readDir(ctx, dir, "")
}

// readDir lists dir, only the names matching pattern if it is not "".
func (f refFiles) readDir(ctx context.Context, dir, pattern string) ([]inputs.Entry, error) {
	stats, err := f.ref.ReadDir(ctx, client.ReadDirRequest{Path: path.Join("/", f.dir, dir), IncludePattern: pattern})
	if err != nil {
		return nil, err
	}
	entries := make([]inputs.Entry, len(stats))
	for i, st := range stats {
		entries[i] = inputs.Entry{Name: st.Path, Mode: fs.FileMode(st.Mode), Size: st.Size, Linkname: st.Linkname}
	}
	return entries, nil
}

// ReadNames implements inputs.Files: the gateway's listing has every
// entry's stat anyway, in one call.
func (f refFiles) ReadNames(ctx context.Context, dir string) ([]string, error) {
	entries, err := f.ReadDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	return names, nil
}

// Lookup implements inputs.Files with a listing of name's directory that
// includes name alone (the gateway's StatFile follows a symlink). A name
// that a pattern would read as a wildcard lists the whole directory.
func (f refFiles) Lookup(ctx context.Context, name string) (*inputs.Entry, error) {
	dir, base := path.Split(name)
	pattern := base
	if strings.ContainsAny(base, `*?[\`) {
		pattern = ""
	}
	entries, err := f.readDir(ctx, dir, pattern)
	if err != nil {
		if inputs.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	for _, e := range entries {
		if e.Name == base {
			return &e, nil
		}
	}
	return nil, nil
}
