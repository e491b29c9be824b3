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
	"slices"
	"strings"
	"syscall"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/command"
	"github.com/moby/buildkit/util/progress/progressui"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/storepack/storepack/cliplugin/engineload"
	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/hoststore"
)

// defaultManifest is the manifest a build context holds unless -f says.
const defaultManifest = "Storepackfile"

const storeRootHelp = `Directory that holds the store, as DIR/nix/store (a Nix store opened with --store local?root=DIR; default: /)`

type buildOptions struct {
	file          string
	tags          []string
	platforms     []string
	buildArgs     []string
	labels        []string
	load, push    bool
	outputs       []string
	progress      string
	strategy      string
	maxLayers     int
	previous      string
	metadataFile  string
	quiet         bool
	builder       string
	addr          string
	storeRoot     string
	frontendImage string
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

The closure graph is computed on this host (the store's database, else a scan)
and only the closure's store paths are sent to the builder. The conversion runs
in this process, so the builder needs no storepack frontend image.

The builder is, in this order: --addr, --builder, BUILDKIT_HOST, BUILDX_BUILDER,
the builder "docker buildx use" selected, else the current docker context's
engine (its embedded BuildKit). The progress output names it.

With the engine as builder and one platform, the image is loaded into the
engine (--load) unless -o says otherwise. When -t names an image that exists
(in the engine, else in its registry), its recorded layer plan is the previous
plan, so that the new image keeps its layers where that ships less; --previous
IMAGE names another image, --previous "" none.`,
		Example: `  docker storepack build -t hello ./result
  docker storepack build -f app.storepack -t registry.example/app:2 --push .
  docker storepack build --platform linux/amd64,linux/arm/v7 -o type=oci,dest=app.tar .`,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.args = args
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBuild(ctx, dockerCli, opts, cmd.Flags().Changed("previous"))
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.file, "file", "f", "", `Manifest file ("-" for standard input; default: CONTEXT/`+defaultManifest+`)`)
	flags.StringArrayVarP(&opts.tags, "tag", "t", nil, `Image name and optionally a tag ("name:tag"); repeatable`)
	flags.StringSliceVar(&opts.platforms, "platform", nil, "Target platforms, comma-separated (os/arch[/variant] or a Nix system such as aarch64-linux; default: the builder's)")
	flags.StringArrayVar(&opts.buildArgs, "build-arg", nil, "Build-time variables (KEY=VALUE)")
	flags.StringArrayVar(&opts.labels, "label", nil, "Set metadata for an image (KEY=VALUE)")
	flags.BoolVar(&opts.load, "load", false, "Load the image into the docker engine (the default with the engine's builder and one platform)")
	flags.BoolVar(&opts.push, "push", false, "Push the image to its registry (needs -t)")
	flags.StringArrayVarP(&opts.outputs, "output", "o", nil, `Output destination ("type=oci|docker|tar|local|image|registry[,dest=PATH]"); repeatable`)
	flags.StringVar(&opts.progress, "progress", "auto", `Progress output: "auto", "tty", "plain", "rawjson" or "quiet"`)
	flags.StringVar(&opts.strategy, "strategy", "", fmt.Sprintf("Layering strategy: %s (default: the manifest's, else %s)", strings.Join(layering.Strategies(), ", "), layering.DefaultStrategy))
	flags.IntVar(&opts.maxLayers, "max-layers", 0, "Layer budget, counting every layer of the image (default: the manifest's, else 100)")
	flags.StringVar(&opts.previous, "previous", "", `Image whose recorded layer plan to keep where that ships less (default: the image -t names; "" for none)`)
	flags.StringVar(&opts.metadataFile, "metadata-file", "", "Write the build result metadata (digests) to a file")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Print only the image ID")
	flags.StringVar(&opts.builder, "builder", "", "buildx builder to use (default: BUILDX_BUILDER, else buildx's selected builder)")
	flags.StringVar(&opts.addr, "addr", "", "BuildKit daemon address (default: BUILDKIT_HOST)")
	flags.StringVar(&opts.storeRoot, "store-root", "", storeRootHelp)
	flags.StringVar(&opts.frontendImage, "frontend-image", "", "Build through this storepack frontend image in the builder, as docker buildx build does, rather than in this process (for comparisons)")
	return cmd
}

func runBuild(ctx context.Context, dockerCli command.Cli, opts buildOptions, previousGiven bool) error {
	bo, err := buildOptionsFor(dockerCli, opts, previousGiven)
	if err != nil {
		return err
	}
	b, err := hostbuild.SelectBuilder(ctx, dockerCli, hostbuild.Choice{Addr: opts.addr, Builder: opts.builder})
	if err != nil {
		return err
	}
	defer b.Close()
	if opts.frontendImage != "" && b.Kind == hostbuild.Engine {
		return fmt.Errorf("--frontend-image: the builder %q (the engine's) refuses named contexts, which that path needs for the store; build without --frontend-image, or with a BuildKit builder (--builder, --addr)", b.Name)
	}
	bo.FrontendImage = opts.frontendImage
	if bo.Exports, err = exportsFor(dockerCli, b, opts, len(bo.Platforms)); err != nil {
		return err
	}
	res, err := hostbuild.Build(ctx, b, *bo)
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

// buildOptionsFor checks the flags and reads the inputs, before any
// builder is contacted.
func buildOptionsFor(dockerCli command.Cli, opts buildOptions, previousGiven bool) (*hostbuild.Options, error) {
	bo := &hostbuild.Options{Auth: dockerCli.ConfigFile(), Out: dockerCli.Err(), BuildArgs: map[string]string{}, Labels: map[string]string{}}
	for _, tag := range opts.tags {
		if _, err := reference.ParseNormalizedNamed(tag); err != nil {
			return nil, fmt.Errorf("-t %s: not a valid image reference: %w", tag, err)
		}
	}
	if opts.strategy != "" && !slices.Contains(layering.Strategies(), opts.strategy) {
		return nil, fmt.Errorf("--strategy=%s: unknown layering strategy (known: %s)", opts.strategy, strings.Join(layering.Strategies(), ", "))
	}
	if opts.maxLayers < 0 {
		return nil, fmt.Errorf("--max-layers=%d: want a whole number of at least 1", opts.maxLayers)
	}
	bo.Strategy, bo.MaxLayers = opts.strategy, opts.maxLayers
	mode, err := progressMode(opts.progress, opts.quiet)
	if err != nil {
		return nil, err
	}
	bo.Progress = mode
	for _, spec := range opts.platforms {
		p, err := inputs.ParsePlatform(spec)
		if err != nil {
			return nil, err
		}
		bo.Platforms = append(bo.Platforms, p)
	}
	for _, kv := range opts.buildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			v, ok = os.LookupEnv(k) // as docker build does for a bare KEY
		}
		if ok {
			bo.BuildArgs[k] = v
		}
	}

	for _, kv := range opts.labels {
		k, v, _ := strings.Cut(kv, "=")
		bo.Labels[k] = v
	}

	sources := dockerSources(dockerCli)
	strict := func(ctx context.Context, ref string, p ocispecs.Platform) (*layering.Plan, error) {
		return readPreviousPlan(ctx, ref, p, sources)
	}
	bo.ReadPrevious = strict
	switch {
	case previousGiven:
		bo.Previous = &opts.previous
	case len(opts.tags) > 0:
		bo.DefaultPrevious = opts.tags[0]
	}
	bo.StoreRoot = opts.storeRoot
	if opts.storeRoot != "" {
		// Not the host's store: its database does not describe it, so
		// the conversion scans it.
		return bo, readBuildInputs(dockerCli, opts, bo)
	}
	bo.Discover = func(ctx context.Context, roots []store.Path) (*store.Graph, error) {
		rs := make([]hoststore.Root, len(roots))
		for i, r := range roots {
			rs[i] = hoststore.Root{Arg: r.String(), Path: r}
		}
		return hoststore.LoadClosure(ctx, rs, roots[0].Dir, hoststore.FromAuto, hoststore.Options{Warn: dockerCli.Err()})
	}
	return bo, readBuildInputs(dockerCli, opts, bo)
}

// readBuildInputs reads the manifest, or makes one of bare roots.
func readBuildInputs(dockerCli command.Cli, opts buildOptions, bo *hostbuild.Options) error {
	if opts.file == "" && len(opts.args) > 0 && !isContextDir(opts.args) {
		roots, _, err := hoststore.ResolveRoots(opts.args, "")
		if err != nil {
			return err
		}
		paths := make([]store.Path, len(roots))
		for i, r := range roots {
			paths[i] = r.Path
		}
		src, note, err := hostbuild.RootsManifest(paths, opts.storeRoot)
		if err != nil {
			return err
		}
		if note != "" && !opts.quiet {
			fmt.Fprintln(dockerCli.Err(), note)
		}
		bo.Manifest = src
		return nil
	}
	if len(opts.args) > 1 {
		return fmt.Errorf("a manifest build takes one CONTEXT, not %d arguments", len(opts.args))
	}
	bo.ContextDir = "."
	if len(opts.args) == 1 {
		bo.ContextDir = opts.args[0]
	}
	if fi, err := os.Stat(bo.ContextDir); err != nil {
		return fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("build context %s is not a directory", bo.ContextDir)
	}
	file := opts.file
	if file == "" {
		file = filepath.Join(bo.ContextDir, defaultManifest)
	}
	var err error
	if file == "-" {
		bo.Manifest, err = io.ReadAll(dockerCli.In())
		bo.ManifestName = "<stdin>"
	} else {
		bo.Manifest, err = os.ReadFile(file)
		bo.ManifestName = file
	}
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no manifest %s: give one with -f, or store paths to build without one", file)
	}
	return err
}

// isContextDir tells a build context from ROOTs: one argument that is a
// directory and not in a store, nor a symlink into one.
func isContextDir(args []string) bool {
	if len(args) != 1 {
		return false
	}
	if _, err := hoststore.ResolveRoot(args[0], ""); err == nil {
		return false
	}
	fi, err := os.Stat(args[0])
	return err == nil && fi.IsDir()
}

// progressMode reads --progress; -q makes it quiet.
func progressMode(mode string, quiet bool) (progressui.DisplayMode, error) {
	if quiet {
		return progressui.QuietMode, nil
	}
	switch m := progressui.DisplayMode(mode); m {
	case progressui.AutoMode, progressui.TtyMode, progressui.PlainMode, progressui.RawJSONMode, progressui.QuietMode:
		return m, nil
	}
	return "", fmt.Errorf("--progress=%s: want auto, tty, plain, rawjson or quiet", mode)
}

// exportsFor turns --load, --push and -o into exports the builder can do,
// or one line that says what to do instead.
func exportsFor(dockerCli command.Cli, b *hostbuild.Builder, opts buildOptions, nPlatforms int) ([]hostbuild.Export, error) {
	var exports []hostbuild.Export
	names := strings.Join(opts.tags, ",")
	for _, spec := range opts.outputs {
		e, err := hostbuild.ParseExport(spec)
		if err != nil {
			return nil, err
		}
		if e.Type == "image" && e.Attrs["name"] == "" {
			if names == "" {
				return nil, fmt.Errorf("--output=%s: the image needs a name: give -t or name=", spec)
			}
			e.Attrs["name"] = names
		}
		exports = append(exports, e)
	}
	load := opts.load || len(exports) == 0 && !opts.push && b.Kind == hostbuild.Engine && nPlatforms <= 1
	if load {
		if nPlatforms > 1 {
			return nil, fmt.Errorf("--load of %d platforms: the engine's image store holds one platform per image; use --push, or -o type=oci,dest=FILE and docker storepack load --platform P FILE", nPlatforms)
		}
		if b.Kind == hostbuild.Engine {
			exports = append(exports, hostbuild.Export{Type: "moby", Attrs: map[string]string{"name": names}})
		} else {
			engine := dockerCli.Client()
			exports = append(exports, hostbuild.Export{Type: "docker", Attrs: map[string]string{"name": names}, Load: func(ctx context.Context, r io.Reader) error {
				return engineload.Archive(ctx, engine, r, io.Discard)
			}})
		}
	}
	if opts.push {
		if names == "" {
			return nil, errors.New("--push needs an image name: give -t")
		}
		if b.Kind == hostbuild.Engine {
			return nil, fmt.Errorf("--push: the builder %q (the engine's) cannot push; build with --load and run docker push, or build with a BuildKit builder (--builder, --addr)", b.Name)
		}
		exports = append(exports, hostbuild.Export{Type: "image", Attrs: map[string]string{"name": names, "push": "true"}})
	}
	if len(exports) == 0 && !opts.quiet {
		fmt.Fprintln(dockerCli.Err(), "No output specified: the result stays in the builder's cache (use --load, --push or -o)")
	}
	return exports, nil
}
