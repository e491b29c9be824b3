package hostbuild

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layercache"
	"github.com/storepack/storepack/cliplugin/layerstore"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/version"
	"github.com/storepack/storepack/store"
)

// Request is what a command of the plugin plans or builds, as its flags
// and arguments say.
type Request struct {
	Manifest     []byte // the manifest source
	ManifestName string // its file, which errors name with the line; "": generated (RootsManifest)
	ContextDir   string // the build context on the host; "" for none
	// StoreRoot holds the store on the host (StoreRoot/nix/store/...), as
	// in a Nix store opened with --store local?root=DIR; "": the host's root.
	StoreRoot string
	BuildArgs map[string]string
	// Discover finds a closure on the host when the manifest has no GRAPH;
	// nil: a scan of the store directory.
	Discover func(ctx context.Context, roots []store.Path) (*store.Graph, error)
	// LayerCache holds the digests of layers written before; nil: none.
	LayerCache *layercache.Cache
	Settings
}

// Settings are what a user sets of the conversion besides the manifest and
// its build arguments. Each reaches manifest2llb.ConvertOpt one way
// (convertOpt), for the plan and the build alike.
type Settings struct {
	Platforms []ocispecs.Platform // none: the builder's
	Labels    map[string]string   // over the manifest's LABELs
	Strategy  string              // overrides LAYERS --strategy
	MaxLayers int                 // overrides LAYERS --max
	Previous  *string             // overrides LAYERS --previous ("" for none)
	// DefaultPrevious is the previous image unless Previous or LAYERS
	// name one; an image that does not exist is none.
	DefaultPrevious string
	// ReadPrevious reads a previous image: the plan it records and, from
	// a registry, the store layers a build can take as they are.
	ReadPrevious manifest2llb.PreviousReader
	// NoCache builds every step anew and writes every store layer again,
	// neither the builder's cache nor the host's layer cache (Request's)
	// being used.
	NoCache bool
}

// Input is a Request with its manifest parsed and what it names read from
// the host, once: the input key, the plan and the build all start from it.
type Input struct {
	Request
	conv   *manifest2llb.Input
	locals *Locals           // the local sources the conversion names, for the session
	layers *layerstore.Store // the layers written on the host, for the session
	gzip   *gzipForms        // their gzip blobs, as the host's cache knows them
	// progress shows the host's steps in the build's progress display.
	progress *progress
}

// Open parses req's manifest and reads its inputs (roots, GRAPH files, the
// platforms the roots are built for) from the host. Errors located in the
// manifest name its file and line.
func Open(ctx context.Context, req Request) (*Input, error) {
	in := &Input{Request: req, locals: &Locals{}, layers: layerstore.New(context.WithoutCancel(ctx)), progress: &progress{}}
	source := HostSource{ContextDir: req.ContextDir, Root: req.StoreRoot, Discoverer: req.Discover, Locals: in.locals, Layers: in.layers, Progress: in.progress}
	if !req.NoCache {
		source.Cache = req.LayerCache
		in.gzip = &gzipForms{cache: req.LayerCache}
		source.gzip = in.gzip
	}
	return in, in.read(ctx, source)
}

// read reads in's manifest and inputs through source.
func (in *Input) read(ctx context.Context, source manifest2llb.Source) error {
	conv, err := manifest2llb.ReadInput(ctx, in.Manifest, in.BuildArgs, source)
	if err != nil {
		return in.located(err)
	}
	in.conv = conv
	return nil
}

// located names the manifest file and line of a located error; a
// generated manifest has no file to name.
func (r Request) located(err error) error {
	if r.ManifestName == "" {
		return err
	}
	return manifest.WithFileLine(r.ManifestName, err)
}

// InputKeyLabel is the label in which an image records the key of the
// inputs it was built from, so that `docker storepack run` can tell an
// image it need not build again.
const InputKeyLabel = "dev.storepack.inputs"

// NeedsBuilder reports whether in's manifest has an instruction that only
// a builder runs (FROM, COPY, RUN): Build then needs a Builder whatever the
// outputs.
func (in *Input) NeedsBuilder() bool { return in.conv.NeedsBuilder() }

// Key identifies a build of in for platform p by what it reads:
// storepack's version, the manifest, the build arguments and settings, and
// what the manifest names in the build context (its roots, resolved, and
// its GRAPH files). Not the closure: store paths do not change once they
// exist, so the same roots have the same closure.
func (in *Input) Key(p ocispecs.Platform) digest.Digest {
	v, _ := version.Get()
	var b strings.Builder
	fmt.Fprintf(&b, "storepack %q\nplatform %q\nstrategy %q\nmax-layers %d\nstore-root %q\ninputs %s\n",
		v, platforms.Format(platforms.Normalize(p)), in.Strategy, in.MaxLayers, in.StoreRoot, in.conv.Key())
	for _, set := range []struct {
		name string
		kv   map[string]string
	}{{"build-arg", in.BuildArgs}, {"label", in.Labels}} {
		for _, k := range slices.Sorted(maps.Keys(set.kv)) {
			fmt.Fprintf(&b, "%s %q=%q\n", set.name, k, set.kv[k])
		}
	}
	fmt.Fprintf(&b, "manifest %d\n%s", len(in.Manifest), in.Manifest)
	return digest.FromString(b.String())
}

// convertOpt is the conversion's options from the settings: the one way
// each setting reaches it.
func (in *Input) convertOpt() manifest2llb.ConvertOpt {
	return manifest2llb.ConvertOpt{
		Labels:          in.Labels,
		TargetPlatforms: in.Platforms,
		Strategy:        in.Strategy,
		MaxLayers:       in.MaxLayers,
		Previous:        in.Previous,
		DefaultPrevious: in.DefaultPrevious,
		ReadPrevious:    in.ReadPrevious,
		NoCache:         in.NoCache,
	}
}

// Plan is the conversion of in for platform p that `build` runs, for its
// layer plan alone: what only the customisation layer's content needs
// (such as the store database's NAR hashes) is not read. resolve reads FROM
// images.
func (in *Input) Plan(ctx context.Context, p ocispecs.Platform, resolve manifest2llb.ImageResolver) (manifest2llb.Image, error) {
	return in.planOnly(ctx, p, resolve, false, false)
}

// PlanWithSBOM is Plan with the image's SBOM (Image.SBOM), the document a
// build of in with an SBOM attaches; files lists each store path's files
// in it, read from them.
func (in *Input) PlanWithSBOM(ctx context.Context, p ocispecs.Platform, resolve manifest2llb.ImageResolver, files bool) (manifest2llb.Image, error) {
	return in.planOnly(ctx, p, resolve, true, files)
}

func (in *Input) planOnly(ctx context.Context, p ocispecs.Platform, resolve manifest2llb.ImageResolver, sbom, sbomFiles bool) (manifest2llb.Image, error) {
	opt := in.convertOpt()
	opt.TargetPlatforms, opt.BuildPlatform = []ocispecs.Platform{p}, p
	opt.PlanOnly, opt.SBOM, opt.SBOMFiles = true, sbom, sbomFiles
	opt.Stager, opt.Differ = HostStager{}, SelfDiffer{}
	opt.ResolveImage = resolve
	res, err := manifest2llb.Convert(ctx, in.conv, opt)
	if err != nil {
		return manifest2llb.Image{}, in.located(err)
	}
	return res.Images[0], nil
}

// HostImage is the conversion of in for platform p as `build` writes it on
// the host, each store layer written to learn its digest (through the
// host's cache of layer digests only if the Request has one): its
// Image.Host is nil when the image needs a builder. resolve reads FROM
// images.
func (in *Input) HostImage(ctx context.Context, p ocispecs.Platform, resolve manifest2llb.ImageResolver) (manifest2llb.Image, error) {
	opt := in.convertOpt()
	opt.TargetPlatforms, opt.BuildPlatform = []ocispecs.Platform{p}, p
	opt.Stager = HostStager{}
	opt.ResolveImage = resolve
	res, err := manifest2llb.Convert(ctx, in.conv, opt)
	if err != nil {
		return manifest2llb.Image{}, in.located(err)
	}
	return res.Images[0], nil
}
