// Package manifest2llb is storepack's one conversion: a manifest becomes,
// for every target platform, the LLB of the image's layers, its image
// config and its layer plan. The gateway frontend (package frontend) and
// every command of the CLI plugin that plans or builds call Convert, each
// with its own Source: the gateway's files in the builder, or the host's.
//
// The flow is one way: manifest (parsed once) → inputs (roots and GRAPH
// files, read once) → per platform: closure graph → layer plan → LLB states
// and image config. Nothing here talks to a builder: Convert is tested
// in-process by marshalling its states.
package manifest2llb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// The build arguments the conversion reads besides the manifest's ARGs.
const (
	// BuildArgEpoch is the mtime of every entry and the created time of
	// the image, as in reproducible-builds.org's SOURCE_DATE_EPOCH.
	BuildArgEpoch = "SOURCE_DATE_EPOCH"
	// BuildArgMethod forces the Chain method on a builder that could
	// merge; used to compare the two methods on one builder.
	BuildArgMethod = "STOREPACK_LAYER_METHOD"
)

// Source reads the build context and the store where the conversion runs.
type Source interface {
	inputs.Source
	// StoreState returns where each layer of plan, a plan of a platform's
	// closure, copies its store paths from. Before that it refuses what an
	// image must not hold, unless the closure was discovered by reading
	// every file of it already.
	StoreState(ctx context.Context, c *inputs.PlatformClosure, plan layering.Plan, opt StoreOptions) (Store, error)
	// ContextState returns a state holding the named files of the build
	// context (COPY sources), and the same files to read.
	ContextState(ctx context.Context, names []string) (llb.State, inputs.Files, error)
}

// StoreOptions say what StoreState does besides giving the layers' sources.
type StoreOptions struct {
	// Check walks every store path of a closure from a GRAPH before it is
	// copied, refusing what an image must not hold (devices, fifos,
	// setuid bits) and a store that is not the one the GRAPH describes. A
	// discovered closure was read whole already.
	Check bool
	// NarHashes asks for every store path's NAR hash and size, read from
	// its files, for the store database (STORE --with-db) or an SBOM of a
	// graph without them.
	NarHashes bool
	// Files asks, with the NAR hashes and in the same read, for every
	// store path's regular files and their digests (an SBOM that lists
	// files).
	Files bool
	// WholeLayers says that the builder takes layers given whole
	// (layerllb.Part.Whole): it merges layers and reads OCI layouts.
	WholeLayers bool
	// Epoch is every entry's modification time.
	Epoch time.Time
	// Previous are the previous image's store layers, which the source
	// may give for layers of the same content.
	Previous []PreviousLayer
}

// Store is what StoreState returns.
type Store struct {
	Layers layerllb.Source
	// Scans hold each store path's NAR hash and size when
	// StoreOptions.NarHashes asked for them, and its files when
	// StoreOptions.Files did.
	Scans map[store.Path]store.HashScan
	// Blobs are the layers' blobs, one per layer of the plan, when the
	// source gives every layer whole as a blob of its own; else nil.
	Blobs []LayerBlob
}

// LayerBlob is a store layer as a source gives it whole: its blob and the
// digest of its tar.
type LayerBlob struct {
	Blob   ocispecs.Descriptor
	DiffID digest.Digest
}

// PreviousReader reads image ref for platform p as a previous image.
type PreviousReader func(ctx context.Context, ref string, p ocispecs.Platform) (*PreviousImage, error)

// PreviousImage is what a build takes of a previous image: the layer plan
// it records, and those of its store layers that a source can give as
// they are (by their content key).
type PreviousImage struct {
	Plan   *layering.Plan
	Layers []PreviousLayer
}

// PreviousLayer is a store layer of a previous image: its content key
// (layerllb.ContentKey), its diffID, and its blob as a registry holds it,
// read from Blobs only if the builder asks for it.
type PreviousLayer struct {
	Key    digest.Digest
	DiffID digest.Digest
	Blob   ocispecs.Descriptor
	Blobs  content.Provider
}

// ConvertOpt is everything Convert needs besides its Input.
type ConvertOpt struct {
	// Labels are added to the image config's, over the manifest's LABELs,
	// as `docker build --label` does.
	Labels map[string]string
	// TargetPlatforms are the platforms to build; none: BuildPlatform.
	TargetPlatforms []ocispecs.Platform
	BuildPlatform   ocispecs.Platform
	// LLBCaps are the builder's; they choose the layer method and how the
	// customisation layer is made. Nil: every cap of this BuildKit.
	LLBCaps *apicaps.CapSet
	// Stager writes the customisation layer's entries where FileOps
	// cannot; nil: FileOps only.
	Stager layerllb.Stager
	// Differ finds what RUN commands changed; nil makes RUN an error.
	Differ layerllb.Differ
	// SourceMap is the manifest's, so that the builder's errors in RUN
	// name its lines; nil: none.
	SourceMap *llb.SourceMap

	// Overrides of the manifest's LAYERS: Strategy and MaxLayers when not
	// zero, Previous when not nil ("" for none). Errors name Previous as
	// the --previous flag, which every command that overrides it has.
	Strategy  string
	MaxLayers int
	Previous  *string
	// DefaultPrevious is the previous image when neither Previous nor
	// LAYERS names one, such as the image a build's tag names now; when
	// ReadPrevious cannot read it (none exists, the registry is out of
	// reach), there is no previous plan: the reader says why.
	DefaultPrevious string
	// ReadPrevious reads a previous image's plan; nil when no image may
	// be read, which makes a previous image an error.
	ReadPrevious PreviousReader
	// ResolveImage reads FROM images; nil makes FROM an error.
	ResolveImage ImageResolver
	// ReadFile reads files of states in the builder: a FROM image's
	// accounts, which ACCOUNT adds to, and what RUN removed; nil for a
	// conversion that builds nothing (plan), which reads none.
	ReadFile layerllb.FileReader
	// NoCache solves every step anew, as `docker build --no-cache` does.
	NoCache bool
	// PlanOnly converts for the layer plan alone (plan): what only the
	// customisation layer's content needs is not read, such as the NAR
	// hashes of the store database, which read every file of the closure.
	PlanOnly bool
	// SBOM asks for what each image's SBOM states (Image.SBOM).
	SBOM bool
	// SBOMFiles asks the SBOM to list every store path's files, which
	// reads every file of the closure.
	SBOMFiles bool
}

// Result is one image per target platform, in the order of
// ConvertOpt.TargetPlatforms.
type Result struct {
	Images []Image
}

// Image is the conversion of one platform.
type Image struct {
	Platform ocispecs.Platform
	State    llb.State // the image's file system, every layer
	Config   *dockerspec.DockerOCIImage
	Plan     layering.Plan // the store layers, as the config records it
	Epoch    time.Time
	// Base is the FROM image under the store layers; nil for none.
	Base *BaseImage
	// SBOM is what the image's SBOM states when ConvertOpt.SBOM asked for
	// it, else nil; frontend/spdxsbom and frontend/cdxsbom write it.
	SBOM *sbommodel.Document
	// Sources are what the image was made from besides the manifest, for
	// its provenance.
	Sources Sources
	// Host is the image as its source can write it without a builder;
	// nil when it needs one (FROM, COPY, RUN, a layer that is not a blob
	// of the source's, an entry that only a stager writes).
	Host *HostImage
}

// HostImage is an image that needs no builder: the store layers' blobs
// and the customisation layer's entries (none: no such layer).
type HostImage struct {
	Layers        []LayerBlob
	Customisation []layerllb.Entry
}

// Sources are the store paths of an image's roots and the GRAPH files its
// closure was read from.
type Sources struct {
	Roots  []store.Path       `json:"roots"`
	Graphs []inputs.GraphFile `json:"graphs,omitempty"` // none: found by scanning
}

// Input is a manifest and what it names, read once for every platform:
// parsed, expanded with the build arguments, its roots resolved and its
// GRAPH files loaded through its Source, which the conversion goes on
// reading the store and the context through.
type Input struct {
	m         *manifest.Manifest
	buildArgs map[string]string
	storeDir  string
	sbom      manifest.SBOM
	source    Source
	inputs    *inputs.Inputs
}

// ReadInput parses the manifest source src and reads what it names through
// source. Errors located in the manifest are parser.LocationErrors, for the
// caller to map to its file.
func ReadInput(ctx context.Context, src []byte, buildArgs map[string]string, source Source) (*Input, error) {
	m, err := manifest.Parse(src)
	if err != nil {
		return nil, err
	}
	// The roots, the GRAPH files and the platforms the roots are built for
	// come from the manifest without root variables.
	spec, err := m.Expand(manifest.Options{BuildArgs: buildArgs})
	if err != nil {
		return nil, err
	}
	in, err := inputs.Read(ctx, spec, source)
	if err != nil {
		return nil, err
	}
	return &Input{m: m, buildArgs: buildArgs, storeDir: spec.StoreDir, sbom: spec.SBOM, source: source, inputs: in}, nil
}

// StoreDir is the store directory the manifest names (STORE).
func (in *Input) StoreDir() string { return in.storeDir }

// NeedsBuilder reports whether the manifest has an instruction that only a
// builder carries out (FROM, COPY, RUN): otherwise every image of a source
// that gives its layers as blobs is written without one (Image.Host).
func (in *Input) NeedsBuilder() bool { return in.m.NeedsBuilder() }

// Key identifies what the manifest names: its roots, resolved, and its
// GRAPH files' contents (inputs.Inputs.Key).
func (in *Input) Key() digest.Digest { return in.inputs.Key() }

// Convert converts in for every target platform of opt. Errors located in
// the manifest are parser.LocationErrors, for the caller to map to its file.
func Convert(ctx context.Context, in *Input, opt ConvertOpt) (*Result, error) {
	c, err := newConversion(in, opt)
	if err != nil {
		return nil, err
	}
	if opt.SBOM {
		if err := c.readMetadata(ctx); err != nil {
			return nil, err
		}
	}
	targets := opt.TargetPlatforms
	if len(targets) == 0 {
		targets = []ocispecs.Platform{opt.BuildPlatform}
	}
	res := &Result{Images: make([]Image, len(targets))}
	g, ctx := errgroup.WithContext(ctx)
	for i, p := range targets {
		g.Go(func() (err error) {
			res.Images[i], err = c.platform(ctx, platforms.Normalize(p))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if c.metadata != nil {
		docs := make([]*sbommodel.Document, len(res.Images))
		for i, img := range res.Images {
			docs[i] = img.SBOM
		}
		if err := c.metadata.CheckPaths(docs); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// readMetadata reads the SBOM metadata file the manifest names, if any.
func (c *conversion) readMetadata(ctx context.Context) error {
	s := c.in.sbom
	if s.Metadata == "" {
		return nil
	}
	files, err := c.in.source.Context(ctx, []string{s.Metadata})
	var data []byte
	if err == nil {
		data, err = files.ReadFile(ctx, s.Metadata)
	}
	if err != nil {
		return parser.WithLocation(fmt.Errorf("SBOM --metadata=%s: %w", s.Metadata, err), s.Location)
	}
	c.metadata, err = sbommodel.ParseMetadata(s.Metadata, data, c.in.storeDir)
	return err
}

// conversion is what every platform's conversion shares.
type conversion struct {
	in     *Input
	opt    ConvertOpt
	caps   apicaps.CapSet
	epoch  time.Time
	method layerllb.Method
	// metadata is the SBOM metadata file's, when an SBOM is asked for.
	metadata *sbommodel.Metadata
}

func newConversion(in *Input, opt ConvertOpt) (*conversion, error) {
	c := &conversion{in: in, opt: opt, caps: pb.Caps.CapSet(pb.Caps.All())}
	if opt.LLBCaps != nil {
		c.caps = *opt.LLBCaps
	}
	var err error
	if c.epoch, err = epochFromArgs(in.buildArgs); err != nil {
		return nil, err
	}
	if c.method, err = methodFromArgs(in.buildArgs, c.caps); err != nil {
		return nil, err
	}
	return c, nil
}

// platform converts the manifest for one target platform.
func (c *conversion) platform(ctx context.Context, p ocispecs.Platform) (Image, error) {
	closure, err := c.in.inputs.ForPlatform(ctx, p)
	if err != nil {
		return Image{}, err
	}
	// Expanded again with this platform's root variables (${ROOT}, --name).
	spec, err := c.in.m.Expand(manifest.Options{BuildArgs: c.in.buildArgs, Roots: closure.Vars})
	if err != nil {
		return Image{}, err
	}
	base, err := c.base(ctx, spec, p)
	if err != nil {
		return Image{}, err
	}
	custom := customisation(spec, closure.Roots[0])
	var etcFiles []layerllb.File
	if spec.Account != nil {
		if etcFiles, err = c.accountFiles(ctx, spec.Account, base, p); err != nil {
			return Image{}, err
		}
		custom.Files = append(custom.Files, etcFiles...)
	}
	plan, previous, err := c.plan(ctx, spec, closure, p, base)
	if err != nil {
		return Image{}, err
	}
	storeDB := spec.StoreDB && !c.opt.PlanOnly
	// An SBOM states every path's NAR hash: those the graph lacks (a
	// closure found by scanning, a DOT graph) are read from the files.
	sbomHashes := c.opt.SBOM && lacksNarHash(closure.Graph)
	sbomFiles := c.opt.SBOM && c.opt.SBOMFiles
	storeOpt := StoreOptions{
		Check:       !c.opt.PlanOnly,
		NarHashes:   storeDB || sbomHashes || sbomFiles,
		Files:       sbomFiles,
		WholeLayers: !c.opt.PlanOnly && c.method == layerllb.Merge && c.caps.Supports(pb.CapSourceOCILayout) == nil,
		Epoch:       c.epoch,
	}
	if previous != nil {
		storeOpt.Previous = previous.Layers
	}
	src, err := c.in.source.StoreState(ctx, closure, plan, storeOpt)
	if err != nil {
		return Image{}, parser.WithLocation(err, closure.Location)
	}
	if storeDB {
		if err := addStoreDB(&custom, spec.StoreDir, closure.Graph, src.Scans); err != nil {
			return Image{}, err
		}
	}
	layerOpt := layerllb.Options{StoreDir: spec.StoreDir, Epoch: c.epoch, Method: c.method, Platform: p, Read: c.opt.ReadFile}
	bottom, baseConfig := llb.Scratch(), (*dockerspec.DockerOCIImage)(nil)
	if base != nil {
		bottom, baseConfig = base.state(p), &base.config
	}
	st, err := layerllb.StoreLayers(bottom, plan, src.Layers, layerOpt)
	if err != nil {
		return Image{}, err
	}
	copies, err := c.copies(ctx, spec, func(ctx context.Context) (accounts, error) {
		return c.imageAccounts(ctx, etcFiles, base, p)
	})
	if err != nil {
		return Image{}, err
	}
	hasCustomisation := !custom.Empty() || len(copies) > 0 || len(spec.Runs) > 0
	imageConfig := spec.Image
	if len(c.opt.Labels) > 0 {
		imageConfig.Labels = maps.Clone(imageConfig.Labels)
		if imageConfig.Labels == nil {
			imageConfig.Labels = map[string]string{}
		}
		maps.Copy(imageConfig.Labels, c.opt.Labels)
	}
	imageOpt := layerllb.ImageOptions{
		Platform:      p,
		Config:        imageConfig,
		Epoch:         c.epoch,
		Customisation: hasCustomisation,
		Base:          baseConfig,
	}
	// Only the Merge method's layers are the bytes the keys stand for
	// (Docker 20.10's builder writes other tars).
	if c.method == layerllb.Merge {
		imageOpt.ContentKeys = layerllb.GraphContentKeys(closure.Graph, plan, spec.StoreDir, c.epoch)
	}
	config, err := layerllb.Image(plan, imageOpt)
	if err != nil {
		return Image{}, err
	}
	if hasCustomisation {
		runs := c.runs(spec, config.Config.Env)
		if st, err = layerllb.CustomisationLayer(ctx, st, custom, copies, runs, c.caps, c.opt.Stager, c.opt.Differ, layerOpt); err != nil {
			var runErr *layerllb.RunError
			if errors.Is(err, layerllb.ErrNoDiffer) || errors.As(err, &runErr) {
				return Image{}, parser.WithLocation(err, spec.Runs[0].Location)
			}
			return Image{}, locateCustomisation(err, spec)
		}
	}
	img := Image{Platform: p, State: st, Config: config, Plan: plan, Epoch: c.epoch, Sources: Sources{Roots: closure.Roots, Graphs: closure.Graphs}}
	if base == nil && len(copies) == 0 && len(spec.Runs) == 0 && src.Blobs != nil && custom.HostWritable() {
		img.Host = &HostImage{Layers: src.Blobs}
		if !custom.Empty() {
			img.Host.Customisation = custom.Entries()
		}
	}
	if base != nil {
		img.Base = &BaseImage{Ref: base.pinned, DiffIDs: base.config.RootFS.DiffIDs}
	}
	if c.opt.SBOM {
		doc := sbommodel.Image{Platform: p, Graph: closure.Graph, Roots: closure.Roots, Plan: plan, Customisation: hasCustomisation, Epoch: c.epoch, Metadata: c.metadata}
		if sbomHashes {
			doc.NarHashes = make(map[store.Path]digest.Digest, len(src.Scans))
			for p, scan := range src.Scans {
				doc.NarHashes[p] = scan.NarHash
			}
		}
		if sbomFiles {
			doc.Files = make(map[store.Path][]store.FileSum, len(src.Scans))
			for p, scan := range src.Scans {
				doc.Files[p] = scan.Files
			}
		}
		if base != nil {
			doc.Base = &sbommodel.Base{Ref: base.pinned, Layers: base.layers()}
		}
		if img.SBOM, err = sbommodel.New(doc); err != nil {
			return Image{}, fmt.Errorf("SBOM: %w", err)
		}
	}
	return img, nil
}

// lacksNarHash tells whether a path of g has no NAR hash.
func lacksNarHash(g *store.Graph) bool {
	for _, p := range g.Paths() {
		if _, hash, _ := g.NAR(p); hash == "" {
			return true
		}
	}
	return false
}

// plan cuts the platform's closure into layers within the budget, less the
// base image's layers, keeping the previous image's layers where that
// ships fewer bytes.
func (c *conversion) plan(ctx context.Context, spec *manifest.Spec, closure *inputs.PlatformClosure, p ocispecs.Platform, base *baseImage) (layering.Plan, *PreviousImage, error) {
	opt := layering.Options{Strategy: spec.Layers.Strategy}
	if c.opt.Strategy != "" {
		opt.Strategy = c.opt.Strategy
	}
	if c.opt.MaxLayers != 0 {
		spec.Layers.Max = c.opt.MaxLayers
	}
	budget, err := spec.StoreLayerBudget()
	if err != nil {
		if c.opt.MaxLayers != 0 {
			return layering.Plan{}, nil, fmt.Errorf("a layer budget of %d leaves no layer for the store paths after the customisation layer (%s)", c.opt.MaxLayers, manifest.CustomisationInstructions)
		}
		return layering.Plan{}, nil, err
	}
	if base != nil {
		if budget -= base.layers(); budget < 1 {
			return layering.Plan{}, nil, parser.WithLocation(fmt.Errorf("FROM %s: the base image has %d layers, which leaves no store layer within the budget of %d (LAYERS --max)", base.from.Image, base.layers(), spec.Layers.Max), base.from.Location)
		}
	}
	opt.MaxLayers = budget

	previous, fromManifest, optional := spec.Layers.Previous, true, false
	switch {
	case c.opt.Previous != nil:
		previous, fromManifest = *c.opt.Previous, false
	case previous == "":
		previous, fromManifest, optional = c.opt.DefaultPrevious, false, true
	}
	var read *PreviousImage
	if previous != "" {
		read, err = c.readPrevious(ctx, previous, p)
		if optional && err != nil {
			read, err = nil, nil
		}
		if err != nil {
			if fromManifest {
				return layering.Plan{}, nil, parser.WithLocation(fmt.Errorf("LAYERS --previous: %w", err), spec.Layers.Location)
			}
			return layering.Plan{}, nil, fmt.Errorf("--previous: %w", err)
		}
	}
	if read != nil {
		opt.Previous = read.Plan
	}
	plan, err := layering.NewPlan(closure.Graph, opt)
	if err != nil && c.opt.Strategy == "" {
		err = parser.WithLocation(err, spec.Layers.Location)
	}
	return plan, read, err
}

func (c *conversion) readPrevious(ctx context.Context, ref string, p ocispecs.Platform) (*PreviousImage, error) {
	if c.opt.ReadPrevious == nil {
		return nil, fmt.Errorf("%s: no previous image can be read here", ref)
	}
	return c.opt.ReadPrevious(ctx, ref, p)
}

// Ranges are a manifest location as LLB source maps and errors hold it.
func Ranges(loc manifest.Location) []*pb.Range {
	ranges := make([]*pb.Range, len(loc))
	for i, r := range loc {
		ranges[i] = &pb.Range{
			Start: &pb.Position{Line: int32(r.Start.Line), Character: int32(r.Start.Character)},
			End:   &pb.Position{Line: int32(r.End.Line), Character: int32(r.End.Character)},
		}
	}
	return ranges
}

// locateCustomisation points an error making the customisation layer at
// its first LINK or DIR.
func locateCustomisation(err error, spec *manifest.Spec) error {
	var locs []manifest.Location
	for _, l := range spec.Links {
		locs = append(locs, l.Location)
	}
	for _, d := range spec.Dirs {
		locs = append(locs, d.Location)
	}
	if spec.Account != nil {
		locs = append(locs, spec.Account.Location)
	}
	for _, r := range spec.Runs {
		locs = append(locs, r.Location)
	}
	for _, cp := range spec.Copies {
		locs = append(locs, cp.Location)
	}
	slices.SortFunc(locs, func(a, b manifest.Location) int { return a[0].Start.Line - b[0].Start.Line })
	return parser.WithLocation(err, locs[0])
}

// methodFromArgs picks how layers stack from the builder's capabilities,
// unless the build argument forces the Chain method.
func methodFromArgs(args map[string]string, caps apicaps.CapSet) (layerllb.Method, error) {
	method := layerllb.MethodFor(caps)
	switch v := args[BuildArgMethod]; v {
	case "":
	case string(layerllb.Chain):
		method = layerllb.Chain
	case string(layerllb.Merge):
		if method != layerllb.Merge {
			return "", fmt.Errorf("%s=merge: this builder has no MergeOp", BuildArgMethod)
		}
	default:
		return "", fmt.Errorf("%s=%q: want chain or merge", BuildArgMethod, v)
	}
	return method, nil
}

func epochFromArgs(args map[string]string) (time.Time, error) {
	v, ok := args[BuildArgEpoch]
	if !ok || v == "" {
		return time.Unix(1, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%s=%q: want seconds since 1970 as a whole number", BuildArgEpoch, v)
	}
	return time.Unix(n, 0).UTC(), nil
}
