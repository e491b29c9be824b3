// Package frontend is storepack's BuildKit gateway frontend: it reads a
// manifest, loads the closure graph from the build context, plans layers
// and returns the image as LLB for every target platform.
//
// The flow is one way: manifest → closure graph → layer plan → LLB and
// image config. Each step lives in its own package (frontend/manifest,
// store, layering, llb); this package only gathers the inputs from the
// build context and hands them on.
package frontend

import (
	"context"
	"strconv"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/layerllb"
	"github.com/storepack/storepack/store"
)

// Language names manifests in source maps, as "Dockerfile" does for
// Dockerfiles.
const Language = "storepack"

// HelperBinary is where Dockerfile.frontend puts the frontend binary.
const HelperBinary = "/bin/storepack-frontend"

const (
	// buildArgEpoch is the mtime of every entry and the created time of
	// the image, as in reproducible-builds.org's SOURCE_DATE_EPOCH.
	buildArgEpoch = "SOURCE_DATE_EPOCH"
	// buildArgMethod forces the Chain method on a builder that could
	// merge; used to compare the two methods on one builder.
	buildArgMethod = "STOREPACK_LAYER_METHOD"
)

// Build is the frontend's gateway entry point.
func Build(ctx context.Context, c client.Client) (_ *client.Result, err error) {
	bc, err := dockerui.NewClient(c)
	if err != nil {
		return nil, err
	}
	src, err := bc.ReadEntrypoint(ctx, Language)
	if err != nil {
		return nil, err
	}
	defer func() { err = withSource(err, src.SourceMap) }()

	m, err := manifest.Parse(src.Data, manifest.Options{BuildArgs: bc.BuildArgs})
	if err != nil {
		return nil, err
	}
	epoch, err := epochFromArgs(bc.BuildArgs)
	if err != nil {
		return nil, err
	}
	method, err := methodFor(bc)
	if err != nil {
		return nil, err
	}

	b := &build{c: c, bc: bc, src: src.Data, m: m, epoch: epoch, method: method}
	in, err := inputs.Read(ctx, m, b)
	if err != nil {
		return nil, err
	}
	rb, err := bc.Build(ctx, func(ctx context.Context, target *ocispecs.Platform, _ int) (*dockerui.BuildResult, error) {
		return b.platform(ctx, in, target)
	})
	if err != nil {
		return nil, err
	}
	return rb.Finalize()
}

// build holds what every platform's build shares.
type build struct {
	c      client.Client
	bc     *dockerui.Client
	src    []byte             // the manifest, parsed again per platform
	m      *manifest.Manifest // parsed without root variables
	epoch  time.Time
	method layerllb.Method
}

// platform builds the image for one target platform (nil: the builder's).
func (b *build) platform(ctx context.Context, in *inputs.Inputs, target *ocispecs.Platform) (*dockerui.BuildResult, error) {
	p := b.bc.BuildPlatforms[0]
	if target != nil {
		p = *target
	}
	p = platforms.Normalize(p)

	c, err := in.ForPlatform(ctx, p)
	if err != nil {
		return nil, err
	}
	// Parse again with this platform's root variables (${ROOT}, --name).
	m, err := manifest.Parse(b.src, manifest.Options{BuildArgs: b.bc.BuildArgs, Roots: c.Vars})
	if err != nil {
		return nil, err
	}
	custom := customisation(m, c.Roots[0])
	budget, err := m.StoreLayerBudget()
	if err != nil {
		return nil, err
	}
	opt := layering.Options{Strategy: m.Layers.Strategy, MaxLayers: budget}
	if m.Layers.Previous != "" {
		if opt.Previous, err = b.previousPlan(ctx, m.Layers.Previous, p); err != nil {
			return nil, parser.WithLocation(err, m.Layers.Location)
		}
	}
	plan, err := layering.NewPlan(c.Graph, opt)
	if err != nil {
		return nil, parser.WithLocation(err, m.Layers.Location)
	}

	src, _, where, err := b.storeSource(ctx, c.Graph.Paths(), c.Graph)
	if err != nil {
		return nil, err
	}
	if !c.Discovered { // discovery has walked every file already
		if err := b.checkStore(ctx, c.Graph, src, where); err != nil {
			return nil, parser.WithLocation(err, c.Location)
		}
	}
	layerOpt := layerllb.Options{StoreDir: m.StoreDir, Epoch: b.epoch, Method: b.method}
	st := layerllb.StoreLayers(llb.Scratch(), plan, src, layerOpt)
	if !custom.Empty() {
		st, err = layerllb.CustomisationLayer(st, custom, b.bc.BuildOpts().LLBCaps, b.helper(), layerOpt)
		if err != nil {
			return nil, err
		}
	}
	img, err := layerllb.Image(plan, layerllb.ImageOptions{
		Platform:      p,
		Config:        m.Image,
		Epoch:         b.epoch,
		Customisation: !custom.Empty(),
	})
	if err != nil {
		return nil, err
	}

	def, err := st.Marshal(ctx, llb.WithCaps(b.bc.BuildOpts().LLBCaps), llb.Platform(p))
	if err != nil {
		return nil, errors.Wrap(err, "marshal LLB")
	}
	res, err := b.c.Solve(ctx, client.SolveRequest{Definition: def.ToPB(), CacheImports: b.bc.CacheImports})
	if err != nil {
		return nil, err
	}
	ref, err := res.SingleRef()
	if err != nil {
		return nil, err
	}
	return &dockerui.BuildResult{Reference: ref, Image: img, Epoch: &b.epoch}, nil
}

// customisation gathers the LINK and DIR entries; a relative LINK target
// resolves inside the first root.
func customisation(m *manifest.Manifest, firstRoot store.Path) layerllb.Customisation {
	var c layerllb.Customisation
	for _, d := range m.Dirs {
		c.Dirs = append(c.Dirs, layerllb.Dir{Path: d.Path, Mode: d.Mode})
	}
	for _, l := range m.Links {
		target := l.Target
		if target[0] != '/' {
			target = firstRoot.String() + "/" + target
		}
		c.Links = append(c.Links, layerllb.Link{Path: l.Path, Target: target})
	}
	return c
}

// helper returns the frontend image, which writes the customisation stage
// on builders whose FileOps cannot, or nil when it is unknown.
func (b *build) helper() *layerllb.Helper {
	if cf, ok := b.c.(interface{ CurrentFrontend() (*llb.State, error) }); ok {
		if st, err := cf.CurrentFrontend(); err == nil && st != nil {
			return &layerllb.Helper{Image: *st, Binary: HelperBinary}
		}
	}
	if ref := b.bc.BuildOpts().Opts["source"]; ref != "" {
		return &layerllb.Helper{
			Image:  llb.Image(ref, llb.Platform(b.bc.BuildPlatforms[0]), llb.WithMetaResolver(b.c)),
			Binary: HelperBinary,
		}
	}
	return nil
}

// methodFor picks how layers stack from the builder's capabilities,
// unless the build argument forces the Chain method.
func methodFor(bc *dockerui.Client) (layerllb.Method, error) {
	method := layerllb.MethodFor(bc.BuildOpts().LLBCaps)
	switch v := bc.BuildArgs[buildArgMethod]; v {
	case "":
	case string(layerllb.Chain):
		method = layerllb.Chain
	case string(layerllb.Merge):
		if method != layerllb.Merge {
			return "", errors.Errorf("%s=merge: this builder has no MergeOp", buildArgMethod)
		}
	default:
		return "", errors.Errorf("%s=%q: want chain or merge", buildArgMethod, v)
	}
	return method, nil
}

func epochFromArgs(args map[string]string) (time.Time, error) {
	v, ok := args[buildArgEpoch]
	if !ok || v == "" {
		return time.Unix(1, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, errors.Errorf("%s=%q: want seconds since 1970 as a whole number", buildArgEpoch, v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// withSource names the manifest file and line of a located error in its
// message, and attaches the lines so that `docker build` prints them under
// the error.
func withSource(err error, sm *llb.SourceMap) error {
	var le *parser.LocationError
	if sm == nil || !errors.As(err, &le) {
		return err
	}
	locations := le.Locations
	err = manifest.WithFileLine(sm.Filename, err)
	for _, loc := range locations {
		s := &errdefs.Source{
			Info: &pb.SourceInfo{
				Data:       sm.Data,
				Filename:   sm.Filename,
				Language:   sm.Language,
				Definition: sm.Definition.ToPB(),
			},
		}
		for _, r := range loc {
			s.Ranges = append(s.Ranges, &pb.Range{
				Start: &pb.Position{Line: int32(r.Start.Line), Character: int32(r.Start.Character)},
				End:   &pb.Position{Line: int32(r.End.Line), Character: int32(r.End.Character)},
			})
		}
		err = errdefs.WithSource(err, s)
	}
	return err
}
