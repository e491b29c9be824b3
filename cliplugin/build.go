package cliplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/cliplugin/imagelookup"
	"github.com/storepack/storepack/frontend/manifest2llb"
)

// defaultManifest is the manifest a build context holds unless -f says.
const defaultManifest = "Storepackfile"

type buildOptions struct {
	file          string
	tags          []string
	platforms     []string
	labels        []string
	load, push    bool
	outputs       []string
	metadataFile  string
	quiet         bool
	frontendImage string
	convert       convertOptions
	previous      previousOption
	attest        attestOptions
	roots         rootOptions
	builder       builderOptions
	runtime       runtimeOption
	args          []string
}

func newBuildCommand(dockerCli command.Cli) *cobra.Command {
	var opts buildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] [CONTEXT | ROOT...]",
		Short: "Build an image from a manifest or from store paths",
		Long: `Build an image from a manifest or from store paths.

With a manifest (-f FILE, default ` + defaultManifest + ` in CONTEXT, "-f -" for standard
input), the image is what the manifest says (see the README's manifest
reference); CONTEXT (default: the current directory) holds the files it names.

` + hostbuild.RootsHelp + `

The closure graph is computed on this host (the store's database, else a scan;
--from says otherwise for ROOTs) and only the closure's store paths are sent to
the builder. The conversion runs in this process, so the builder needs no
storepack frontend image.

The builder is, in this order: --addr, --builder, BUILDKIT_HOST, BUILDX_BUILDER,
the builder "docker buildx use" selected, else the current docker context's
engine (its embedded BuildKit). The progress output names it.

With the engine as builder and one platform, the image is loaded into the
engine (--load) unless -o says otherwise. When -t names an image that exists
(in the engine, else in its registry), its recorded layer plan is the previous
plan, so that the new image keeps its layers where that ships less; --previous
IMAGE names another image, --previous "" none.

--sbom attaches to each platform's image an SBOM attestation, as
docker buildx build --sbom=true does: the SPDX document of its store paths,
their references and layers, stated from the closure graph, so no scanner
runs. The builder must keep attestations (not Docker 20.10's), and the
output hold them (--push, -o type=oci|image). --sbom-files lists each store
path's files in it too, as docker buildx build --sbom=files=true does.`,
		Example: `  docker storepack build -t hello ./result
  docker storepack build -f app.storepack -t registry.example/app:2 --sbom --push .
  docker storepack build --platform linux/amd64,linux/arm/v7 -o type=oci,dest=app.tar .`,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.args = args
			opts.previous.set = cmd.Flags().Changed("previous")
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBuild(ctx, dockerCli, cmd.Flags(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.file, "file", "f", "", `Manifest file ("-" for standard input; default: CONTEXT/`+defaultManifest+`)`)
	flags.StringArrayVarP(&opts.tags, "tag", "t", nil, `Image name and optionally a tag ("name:tag"); repeatable`)
	flags.StringSliceVar(&opts.platforms, "platform", nil, platformHelp)
	flags.StringArrayVar(&opts.labels, "label", nil, labelHelp)
	flags.BoolVar(&opts.load, "load", false, "Load the image into the docker engine, or Podman (--runtime); the default with the engine's builder and one platform, and with Podman")
	flags.BoolVar(&opts.push, "push", false, "Push the image to its registry (needs -t)")
	flags.StringArrayVarP(&opts.outputs, "output", "o", nil, `Output destination ("type=oci|docker|tar|local|image|registry[,dest=PATH]"); repeatable`)
	flags.StringVar(&opts.metadataFile, "metadata-file", "", "Write the build result metadata (digests) to a file")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Print only the image ID")
	flags.StringVar(&opts.frontendImage, "frontend-image", "", "Build through this storepack frontend image in the builder, as docker buildx build does, rather than in this process (for comparisons)")
	opts.convert.addFlags(flags)
	opts.previous.addFlag(flags)
	opts.attest.addFlags(flags)
	opts.roots.addFlags(flags)
	opts.builder.addFlags(flags)
	opts.runtime.addFlag(flags)
	return cmd
}

// labelHelp is the help of the flag that labels the image built (--label,
// or --build-label where docker run's --label labels the container).
const labelHelp = "Set metadata for the image built (KEY=VALUE)"

func runBuild(ctx context.Context, dockerCli command.Cli, flags *pflag.FlagSet, opts buildOptions) error {
	if err := opts.convert.check(); err != nil {
		return err
	}
	for _, tag := range opts.tags {
		if _, err := reference.ParseNormalizedNamed(tag); err != nil {
			return fmt.Errorf("-t %s: not a valid image reference: %w", tag, err)
		}
	}
	progress, err := opts.builder.progressMode(opts.quiet)
	if err != nil {
		return err
	}
	in, err := buildInput(flags, opts)
	if err != nil {
		return err
	}
	var note io.Writer
	if !opts.quiet {
		note = dockerCli.Err()
	}
	req, err := opts.convert.request(dockerCli, in, opts.roots, note)
	if err != nil {
		return err
	}
	if req.Platforms, err = parsePlatforms(opts.platforms); err != nil {
		return err
	}
	for _, kv := range opts.labels {
		k, v, _ := strings.Cut(kv, "=")
		req.Labels[k] = v
	}
	tag := ""
	if len(opts.tags) > 0 {
		tag = opts.tags[0]
	}
	opts.previous.apply(dockerCli, &req.Settings, tag)
	req.NoCache = opts.builder.noCache
	req.LayerCache = opts.builder.layerCache(dockerCli.Err())
	// Every input is read before any builder is contacted.
	input, err := hostbuild.Open(ctx, req)
	if err != nil {
		return err
	}
	// A load into Podman (--runtime podman, or no docker engine) takes
	// Podman's builder (none for an image written on the host) and load.
	var podmanLoad runEngine
	if opts.load || len(opts.outputs) == 0 && !opts.push {
		pod, err := opts.runtime.podman(ctx, dockerCli)
		if err != nil {
			return err
		}
		if pod != nil {
			podmanLoad = podmanEngine{pod}
		}
	}
	var b *hostbuild.Builder
	if podmanLoad != nil {
		b, err = podmanLoad.builder(ctx, dockerCli, input, opts.builder)
	} else {
		b, err = hostbuild.SelectBuilder(ctx, dockerCli, opts.builder.choice())
	}
	if err != nil {
		return err
	}
	if b != nil {
		defer b.Close()
	}
	if opts.frontendImage != "" && (b == nil || b.Kind == hostbuild.Engine) {
		return errors.New("--frontend-image: that path needs a BuildKit builder that takes named contexts (--builder, --addr), not the engine's")
	}
	out := hostbuild.Output{Auth: dockerCli.ConfigFile(), Out: dockerCli.Err(), Progress: progress, FrontendImage: opts.frontendImage}
	if b != nil && b.Kind == hostbuild.Engine {
		// Written on the host, the image is for the engine's platform,
		// which may be a remote engine's, as its builder's is.
		out.Platform = func(ctx context.Context) (ocispecs.Platform, error) {
			return enginePlatform(ctx, dockerCli.Client(), "")
		}
	}
	opts.attest.apply(&out)
	if out.Exports, err = buildExports(ctx, dockerCli, b, podmanLoad, opts, len(req.Platforms)); err != nil {
		return err
	}
	if err := checkPushes(ctx, dockerCli, out.Exports, registryAnswers); err != nil {
		return err
	}
	out.CheckPushes = func(ctx context.Context) error {
		return checkPushes(ctx, dockerCli, out.Exports, registryAnswers, registryTakesUploads)
	}
	res, err := hostbuild.Build(ctx, b, input, out)
	if err != nil {
		return err
	}
	if opts.metadataFile != "" {
		data, err := json.MarshalIndent(res.Metadata, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(opts.metadataFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if opts.quiet && res.ImageID != "" {
		fmt.Fprintln(dockerCli.Out(), res.ImageID)
	}
	return nil
}

// buildInput tells what build's arguments name: ROOTs, or a build context
// with its manifest (-f).
func buildInput(flags *pflag.FlagSet, opts buildOptions) (input, error) {
	if opts.file == "" && len(opts.args) > 0 && !isContextDir(opts.args) {
		return rootsInput(opts.args, opts.roots)
	}
	if len(opts.args) > 1 {
		return input{}, fmt.Errorf("a manifest build takes one CONTEXT, not %d arguments", len(opts.args))
	}
	in := input{contextDir: ".", manifestFile: opts.file}
	if len(opts.args) == 1 {
		in.contextDir = opts.args[0]
	}
	if in.manifestFile == "" {
		in.manifestFile = filepath.Join(in.contextDir, defaultManifest)
	}
	return in, rootFlagsOnManifest(flags, in.manifestFile)
}

// buildExports are exportsFor's, with the load into Podman when
// podmanLoad is set.
func buildExports(ctx context.Context, dockerCli command.Cli, b *hostbuild.Builder, podmanLoad runEngine, opts buildOptions, nPlatforms int) ([]hostbuild.Export, error) {
	if podmanLoad == nil {
		return exportsFor(ctx, dockerCli, b, opts, nPlatforms)
	}
	if nPlatforms > 1 {
		return nil, fmt.Errorf("--load of %d platforms: Podman holds one platform per image; use --push, or -o type=oci,dest=FILE and storepack load --platform P FILE", nPlatforms)
	}
	opts.load = false
	exports, err := exportsFor(ctx, dockerCli, b, opts, nPlatforms)
	if err != nil {
		return nil, err
	}
	load, err := podmanLoad.exports(ctx, dockerCli, b, strings.Join(opts.tags, ","), opts.quiet)
	return append(exports, load...), err
}

// exportsFor turns --load, --push and -o into exports the builder (nil:
// none, the image is written on the host) can do, or one line that says
// what to do instead.
func exportsFor(ctx context.Context, dockerCli command.Cli, b *hostbuild.Builder, opts buildOptions, nPlatforms int) ([]hostbuild.Export, error) {
	var exports []hostbuild.Export
	names := strings.Join(opts.tags, ",")
	for _, spec := range opts.outputs {
		e, err := hostbuild.ParseExport(spec)
		if err != nil {
			return nil, err
		}
		switch {
		case e.Type == "image" && e.Attrs["name"] == "" && names == "":
			return nil, fmt.Errorf("--output=%s: the image needs a name: give -t or name=", spec)
		case e.Type == "image" || e.Type == "oci" || e.Type == "docker":
			// The tags name the archive's image too, as with buildx.
			if e.Attrs["name"] == "" && names != "" {
				e.Attrs["name"] = names
			}
		}
		exports = append(exports, e)
	}
	engine := b != nil && b.Kind == hostbuild.Engine
	api := dockerCli.Client()
	loadAsked := opts.load || len(exports) == 0 && !opts.push
	// The engine's own builder stores every platform in one image on the
	// containerd image store; the classic store holds one platform per
	// image. A load from another builder is written for the store too.
	containerd := false
	if engine && loadAsked || opts.load {
		var err error
		if containerd, err = engineContainerdStore(ctx, api); err != nil {
			return nil, err
		}
	}
	multiPlatform := engine && containerd
	load := opts.load || loadAsked && engine && (nPlatforms <= 1 || multiPlatform)
	if load {
		if nPlatforms > 1 && !multiPlatform {
			return nil, fmt.Errorf("--load of %d platforms: the engine's image store holds one platform per image; use --push, or -o type=oci,dest=FILE and docker storepack load --platform P FILE", nPlatforms)
		}
		if engine {
			exports = append(exports, engineBuilderExport(names))
		} else {
			// Docker 20.10 refuses a docker archive with attestations
			// ("blobs/json: no such file or directory").
			if opts.attest.sbomAsked() {
				return nil, errors.New("--sbom with --load: the engine does not load an image with attestations from this builder; use --push, or -o type=oci,dest=FILE")
			}
			exports = append(exports, loadExport(api, names, containerd))
		}
	}
	if opts.push {
		if names == "" {
			return nil, errors.New("--push needs an image name: give -t")
		}
		if engine {
			return nil, fmt.Errorf("--push: the builder %q (the engine's) cannot push; build with --load and run docker push, or build with a BuildKit builder (--builder, --addr)", b.Name)
		}
		src := dockerSources(dockerCli)
		exports = append(exports, hostbuild.Export{Type: "image", Attrs: map[string]string{"name": names, "push": "true"},
			Push: func(ctx context.Context, ref string, root ocispecs.Descriptor, blobs content.Provider) error {
				return imagelookup.Push(ctx, ref, root, blobs, src)
			},
			PushIndex: func(ctx context.Context, ref string, manifests []ocispecs.Descriptor) (ocispecs.Descriptor, error) {
				return imagelookup.PushIndex(ctx, ref, manifests, src)
			},
		})
	}
	if len(exports) == 0 && !opts.quiet {
		fmt.Fprintln(dockerCli.Err(), "No output specified: the result stays in the builder's cache (use --load, --push or -o)")
	}
	return exports, nil
}

// checkPushes asks the registry of every image an export pushes each of
// checks, one after the other, each within manifest2llb.RegistryTimeout:
// before any work whether it answers, and while the builder pushes whether
// it answers and takes an upload. The builder's push waits without end
// for a registry that takes the connection and never answers (or answers
// reads and never an upload), and fails only after its retries on one
// that refuses or fails.
func checkPushes(ctx context.Context, dockerCli command.Cli, exports []hostbuild.Export, checks ...registryCheck) error {
	src := dockerSources(dockerCli)
	for _, e := range exports {
		if push, _ := strconv.ParseBool(e.Attrs["push"]); !push {
			continue
		}
		for _, name := range strings.Split(e.Attrs["name"], ",") {
			for _, c := range checks {
				if err := c.run(ctx, name, src); err != nil {
					return fmt.Errorf("push %s: %w", name, err)
				}
			}
		}
	}
	return nil
}

// registryCheck is one question to the registry of an image: ask, and
// timedOut, which words its error when the bound cut it short.
type registryCheck struct {
	ask      func(ctx context.Context, ref string, src imagelookup.Sources) error
	timedOut func(ctx context.Context, ref string, err error) error
}

var (
	registryAnswers      = registryCheck{imagelookup.CheckRegistry, manifest2llb.RegistryError}
	registryTakesUploads = registryCheck{imagelookup.CheckUploads, manifest2llb.UploadError}
)

func (c registryCheck) run(ctx context.Context, ref string, src imagelookup.Sources) error {
	bounded, cancel := manifest2llb.WithRegistryTimeout(ctx)
	defer cancel()
	return c.timedOut(bounded, ref, c.ask(bounded, ref, src))
}
