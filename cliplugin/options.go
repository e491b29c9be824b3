package cliplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/moby/moby/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/cliplugin/layercache"
	"github.com/storepack/storepack/cliplugin/podman"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/hoststore"
)

// The options each concern shares between the commands that have it: one
// name, one help text, one default and one check per flag, whichever
// command declares it (as ko's AddBuildOptions).

// convertOptions are the options of every command that plans or builds
// (build, run, plan).
type convertOptions struct {
	buildArgs []string
	strategy  string
	maxLayers int
	storeRoot string
	maxSet    *pflag.Flag // tells --max-layers 0 from no --max-layers
}

func (o *convertOptions) addFlags(flags *pflag.FlagSet) {
	flags.StringArrayVar(&o.buildArgs, "build-arg", nil, "Build-time variables (KEY=VALUE)")
	flags.StringVar(&o.strategy, "strategy", "", fmt.Sprintf("Layering strategy: %s (default: the manifest's, else %s)", strings.Join(layering.Strategies(), ", "), layering.DefaultStrategy))
	flags.IntVar(&o.maxLayers, "max-layers", 0, fmt.Sprintf("Layer budget, counting every layer of the image (default: the manifest's, else %d)", manifest.DefaultMaxLayers))
	o.maxSet = flags.Lookup("max-layers")
	addStoreRootFlag(flags, &o.storeRoot)
	// The spelling `plan` had; kept so that scripts go on working.
	aliasFlag(flags, "max", "max-layers")
}

// addStoreRootFlag declares --store-root, which graph has too.
func addStoreRootFlag(flags *pflag.FlagSet, storeRoot *string) {
	flags.StringVar(storeRoot, "store-root", "", `Directory that holds the store, as DIR/nix/store (a Nix store opened with --store local?root=DIR; default: /)`)
}

// aliasFlag makes --alias another spelling of --name, hidden from help.
func aliasFlag(flags *pflag.FlagSet, alias, name string) {
	normalize := flags.GetNormalizeFunc()
	flags.SetNormalizeFunc(func(f *pflag.FlagSet, n string) pflag.NormalizedName {
		if n == alias {
			n = name
		}
		return normalize(f, n)
	})
}

// check checks the options, before the command reads anything.
func (o convertOptions) check() error {
	if o.strategy != "" && !slices.Contains(layering.Strategies(), o.strategy) {
		return fmt.Errorf("--strategy=%s: unknown layering strategy (known: %s)", o.strategy, strings.Join(layering.Strategies(), ", "))
	}
	if o.maxLayers < 0 || o.maxSet != nil && o.maxSet.Changed && o.maxLayers < 1 {
		return fmt.Errorf("--max-layers=%d: want a whole number of at least 1", o.maxLayers)
	}
	return nil
}

// settings returns the conversion settings the options make; the build
// arguments go to the request apart, as they are read with the manifest.
func (o convertOptions) settings() (hostbuild.Settings, map[string]string) {
	args := map[string]string{}
	for _, kv := range o.buildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			v, ok = os.LookupEnv(k) // as docker build does for a bare KEY
		}
		if ok {
			args[k] = v
		}
	}
	return hostbuild.Settings{Strategy: o.strategy, MaxLayers: o.maxLayers, Labels: map[string]string{}}, args
}

// previousOption is --previous, of the commands that build or plan a next
// release (build, plan).
type previousOption struct {
	image string
	set   bool // given, "" included
}

func (o *previousOption) addFlag(flags *pflag.FlagSet) {
	flags.StringVar(&o.image, "previous", "", `Image whose recorded layer plan to keep where that ships fewer bytes, read from the engine or its registry (default: the manifest's LAYERS --previous, else the image -t names; "" for none)`)
}

// apply sets s to read the previous image's plan from the engine or its
// registry, and to take the image -t names (tag, "" for none) unless
// --previous or the manifest's LAYERS name one.
func (o previousOption) apply(dockerCli command.Cli, s *hostbuild.Settings, tag string) {
	// The engine is asked only when there is an image to read: a plan
	// that names none never contacts it.
	s.ReadPrevious = func(ctx context.Context, ref string, p ocispecs.Platform) (*manifest2llb.PreviousImage, error) {
		return readPrevious(ctx, ref, p, dockerSources(dockerCli))
	}
	if o.set {
		s.Previous = &o.image
	} else {
		s.DefaultPrevious = tag
	}
}

// attestOptions ask for attestations of the image built (build).
type attestOptions struct {
	sbom    bool
	content sbomContentOptions
}

func (o *attestOptions) addFlags(flags *pflag.FlagSet) {
	flags.BoolVar(&o.sbom, "sbom", false, "Attach an SBOM to each platform's image: an SPDX document of its store paths, their references and layers, stated from the closure graph (no scanner runs)")
	o.content.addFlags(flags, " (implies --sbom)")
}

// sbomAsked says that an SBOM is to be attached.
func (o attestOptions) sbomAsked() bool { return o.sbom || o.content.files }

// apply asks out for the attestations.
func (o attestOptions) apply(out *hostbuild.Output) {
	out.SBOM, out.SBOMFiles = o.sbomAsked(), o.content.files
}

// sbomContentOptions say what an SBOM lists besides the store paths
// (build, sbom).
type sbomContentOptions struct {
	files bool
}

func (o *sbomContentOptions) addFlags(flags *pflag.FlagSet, implies string) {
	flags.BoolVar(&o.files, "sbom-files", false, "List each store path's files in the SBOM, with their SHA-1 and SHA-256, read from the files"+implies)
}

// rootOptions say where the store paths of ROOT arguments are and where
// their reference graph comes from (build, run, plan and graph).
type rootOptions struct {
	from     string
	storeDir string
}

func (o *rootOptions) addFlags(flags *pflag.FlagSet) {
	flags.StringVar(&o.from, "from", string(hoststore.FromAuto), `Where the reference graph of ROOTs comes from: "auto", "nix", "db", "scan", or a graph file`)
	flags.StringVar(&o.storeDir, "store-dir", "", "Store directory of the ROOTs (default: the one they are in)")
}

// rootFlagsOnManifest is the error for --from or --store-dir given with a
// manifest, which names its graph and its store itself.
func rootFlagsOnManifest(flags *pflag.FlagSet, manifestFile string) error {
	for _, name := range []string{"from", "store-dir"} {
		if flags.Changed(name) {
			return fmt.Errorf("--%s applies to ROOT arguments, not to a manifest (%s), which names its graph with GRAPH and its store with STORE", name, manifestFile)
		}
	}
	return nil
}

// planningOptions are the input and the settings of the commands that
// convert for one platform without building (plan, sbom).
type planningOptions struct {
	platforms []string
	context   string
	convert   convertOptions
	previous  previousOption
	roots     rootOptions
}

func (o *planningOptions) addFlags(flags *pflag.FlagSet, platformUsage string) {
	flags.StringSliceVar(&o.platforms, "platform", nil, platformUsage)
	flags.StringVar(&o.context, "context", "", "Build context of a manifest (default: the manifest's directory)")
	o.convert.addFlags(flags)
	o.previous.addFlag(flags)
	o.roots.addFlags(flags)
}

// open checks the options, reads the manifest or the ROOTs that args name
// and returns them as the host pipeline's input, with the one platform to
// convert for. Without --previous, only a manifest that names a previous
// image contacts the engine.
func (o planningOptions) open(ctx context.Context, dockerCli command.Cli, flags *pflag.FlagSet, args []string) (*hostbuild.Input, ocispecs.Platform, error) {
	if err := o.convert.check(); err != nil {
		return nil, ocispecs.Platform{}, err
	}
	p, err := targetPlatform(o.platforms)
	if err != nil {
		return nil, ocispecs.Platform{}, err
	}
	var in input
	if file, ok := manifestArg(args, o.roots.storeDir); ok {
		if err := rootFlagsOnManifest(flags, file); err != nil {
			return nil, ocispecs.Platform{}, err
		}
		in = input{manifestFile: file, contextDir: o.context}
		if in.contextDir == "" {
			in.contextDir = filepath.Dir(file)
		}
	} else {
		if flags.Changed("context") {
			return nil, ocispecs.Platform{}, errors.New("--context applies to a manifest, not to ROOT arguments")
		}
		if in, err = rootsInput(args, o.roots); err != nil {
			return nil, ocispecs.Platform{}, err
		}
	}
	req, err := o.convert.request(dockerCli, in, o.roots, nil)
	if err != nil {
		return nil, ocispecs.Platform{}, err
	}
	req.Platforms = []ocispecs.Platform{p}
	previous := o.previous
	previous.set = flags.Changed("previous")
	previous.apply(dockerCli, &req.Settings, "")
	input, err := hostbuild.Open(ctx, req)
	return input, p, err
}

// builderOptions choose the builder and how its progress shows (build,
// run).
type builderOptions struct {
	builder  string
	addr     string
	tls      hostbuild.TLS
	progress string
	noCache  bool
}

func (o *builderOptions) addFlags(flags *pflag.FlagSet) {
	flags.BoolVar(&o.noCache, "no-cache", false, "Do not use cache when building the image: neither the builder's nor the host's cache of layer digests")
	flags.StringVar(&o.builder, "builder", "", "buildx builder to use (default: BUILDX_BUILDER, else buildx's selected builder)")
	flags.StringVar(&o.addr, "addr", "", "BuildKit daemon address (default: BUILDKIT_HOST)")
	// buildctl's names for them.
	flags.StringVar(&o.tls.CACert, "tlscacert", "", "CA certificate that signed the BuildKit daemon's (TLS to --addr or BUILDKIT_HOST)")
	flags.StringVar(&o.tls.Cert, "tlscert", "", "Client certificate for the BuildKit daemon (mutual TLS)")
	flags.StringVar(&o.tls.Key, "tlskey", "", "Key of the client certificate (--tlscert)")
	flags.StringVar(&o.tls.ServerName, "tlsservername", "", "Name the BuildKit daemon's certificate must carry (default: the address's host)")
	flags.StringVar(&o.progress, "progress", "auto", `Progress output: "auto", "tty", "plain", "rawjson" or "quiet"`)
}

// progressMode reads --progress; -q makes it quiet.
func (o builderOptions) progressMode(quiet bool) (progressui.DisplayMode, error) {
	if quiet {
		return progressui.QuietMode, nil
	}
	switch m := progressui.DisplayMode(o.progress); m {
	case progressui.AutoMode, progressui.TtyMode, progressui.PlainMode, progressui.RawJSONMode, progressui.QuietMode:
		return m, nil
	}
	return "", fmt.Errorf("--progress=%s: want auto, tty, plain, rawjson or quiet", o.progress)
}

// layerCache opens the host's cache of layer digests, or says on warn why
// the build goes without one (it then writes every layer); none with
// --no-cache.
func (o builderOptions) layerCache(warn io.Writer) *layercache.Cache {
	if o.noCache {
		return nil
	}
	dir, err := layercache.DefaultDir()
	var c *layercache.Cache
	if err == nil {
		c, err = layercache.Open(dir, layercache.DefaultMaxEntries)
	}
	if err != nil {
		fmt.Fprintf(warn, "WARNING: no cache of layer digests, every store layer is read: %v\n", err)
	}
	return c
}

// named tells whether a BuildKit builder is named (--addr, --builder,
// BUILDKIT_HOST, BUILDX_BUILDER), rather than buildx's or docker's default.
func (o builderOptions) named() bool {
	return o.addr != "" || o.builder != "" || os.Getenv("BUILDKIT_HOST") != "" || os.Getenv("BUILDX_BUILDER") != ""
}

func (o builderOptions) choice() hostbuild.Choice {
	return hostbuild.Choice{Addr: o.addr, Builder: o.builder, TLS: o.tls}
}

// A command's input: a manifest and its build context, or ROOTs.
type input struct {
	manifestFile string // "-": standard input; "": none, ROOTs
	contextDir   string
	roots        []hoststore.Root
	storeDir     string // of the roots
}

// rootsInput resolves ROOT arguments, once.
func rootsInput(args []string, ro rootOptions) (input, error) {
	roots, storeDir, err := hoststore.ResolveRoots(args, ro.storeDir)
	if err != nil {
		return input{}, err
	}
	return input{roots: roots, storeDir: storeDir}, nil
}

// request makes the host pipeline's request of in with the options every
// command that plans or builds shares (checked before): the manifest read,
// or generated for ROOTs with a note on its entrypoint to note, if not nil.
func (o convertOptions) request(dockerCli command.Cli, in input, ro rootOptions, note io.Writer) (hostbuild.Request, error) {
	settings, buildArgs := o.settings()
	req := hostbuild.Request{StoreRoot: o.storeRoot, BuildArgs: buildArgs, Settings: settings}
	from := graphSource(ro)
	if in.manifestFile == "" {
		paths := make([]store.Path, len(in.roots))
		for i, r := range in.roots {
			paths[i] = r.Path
		}
		src, msg, err := hostbuild.RootsManifest(paths, o.storeRoot)
		if err != nil {
			return hostbuild.Request{}, err
		}
		if msg != "" && note != nil {
			fmt.Fprintln(note, msg)
		}
		req.Manifest = src
	} else if err := readManifest(dockerCli, in, &req); err != nil {
		return hostbuild.Request{}, err
	}
	root := o.storeRoot
	req.Discover = func(ctx context.Context, roots []store.Path) (*store.Graph, error) {
		rs := make([]hoststore.Root, len(roots))
		for i, r := range roots {
			rs[i] = hoststore.Root{Arg: r.String(), Path: r}
		}
		return hoststore.LoadClosure(ctx, rs, roots[0].Dir, from, hoststore.Options{Root: root, Warn: dockerCli.Err()})
	}
	return req, nil
}

func graphSource(ro rootOptions) hoststore.GraphSource {
	if ro.from == "" {
		return hoststore.FromAuto
	}
	return hoststore.GraphSource(ro.from)
}

// readManifest reads in's manifest and checks its build context.
func readManifest(dockerCli command.Cli, in input, req *hostbuild.Request) error {
	req.ContextDir = in.contextDir
	if fi, err := os.Stat(in.contextDir); err != nil {
		return fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("build context %s is not a directory", in.contextDir)
	}
	var err error
	if in.manifestFile == "-" {
		req.Manifest, err = io.ReadAll(dockerCli.In())
		req.ManifestName = "<stdin>"
	} else {
		req.Manifest, err = os.ReadFile(in.manifestFile)
		req.ManifestName = in.manifestFile
	}
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no manifest %s: give one with -f, or store paths to build without one", in.manifestFile)
	}
	return err
}

// parsePlatforms reads --platform values.
func parsePlatforms(specs []string) ([]ocispecs.Platform, error) {
	var list []ocispecs.Platform
	for _, spec := range specs {
		p, err := inputs.ParsePlatform(spec)
		if err != nil {
			return nil, err
		}
		list = append(list, p)
	}
	return list, nil
}

// platformHelp is --platform's help, for build and plan.
const platformHelp = "Target platforms, comma-separated (os/arch[/variant] or a Nix system such as aarch64-linux; default: the builder's, for plan this machine's)"

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

// manifestArg tells whether the arguments are a manifest: one argument
// that is a file and not a store path or a symlink into the store.
func manifestArg(args []string, storeDir string) (string, bool) {
	if len(args) != 1 {
		return "", false
	}
	arg := args[0]
	if storeDir != "" {
		if abs, err := filepath.Abs(storeDir); err == nil {
			storeDir = abs
		}
	}
	abs, err := filepath.Abs(arg)
	if err != nil || store.LooksInStore(abs) {
		return "", false
	}
	fi, err := os.Lstat(arg)
	if err != nil {
		return "", false
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if _, err := hoststore.ResolveRoot(arg, storeDir); err == nil {
			return "", false
		}
		if fi, err = os.Stat(arg); err != nil {
			return "", false
		}
	}
	return arg, fi.Mode().IsRegular()
}

// runtimeOption chooses the container engine that load and run put images
// into and run them with (--runtime).
type runtimeOption struct {
	name string
}

// The engines --runtime names.
const (
	runtimeDocker = "docker"
	runtimePodman = "podman"
)

const runtimeHelp = `Container engine to load into and run with: "docker" or "podman" (default: STOREPACK_RUNTIME, else docker when an engine is named (DOCKER_HOST, -H, a context) or answers at the default socket, else podman when it is on PATH)`

func (o *runtimeOption) addFlag(flags *pflag.FlagSet) {
	flags.StringVar(&o.name, "runtime", "", runtimeHelp)
}

// isEngine tells an engine's name (or none, for the default) from docker
// run's --runtime, which names an OCI runtime.
func isEngine(name string) bool {
	return name == "" || name == runtimeDocker || name == runtimePodman
}

// podman returns Podman when it is the engine, nil for the docker engine;
// or one line that says what to install or start when there is none.
func (o runtimeOption) podman(ctx context.Context, dockerCli command.Cli) (*podman.Podman, error) {
	name, from := o.name, "--runtime"
	if name == "" {
		name, from = os.Getenv("STOREPACK_RUNTIME"), "STOREPACK_RUNTIME"
	}
	switch name {
	case runtimeDocker:
		return nil, nil
	case runtimePodman:
		return podman.Find()
	case "":
	default:
		return nil, fmt.Errorf("%s=%s: want docker or podman", from, name)
	}
	// An engine the user named (DOCKER_HOST, -H, a context) is the one to
	// use, and to say it does not answer.
	if dockerCli.DockerEndpoint().Host != client.DefaultDockerHost {
		return nil, nil
	}
	// A docker engine that does not answer within this bound is taken as
	// absent.
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := dockerCli.Client().Ping(pingCtx, client.PingOptions{}); err == nil {
		return nil, nil
	}
	p, perr := podman.Find()
	if perr != nil {
		return nil, fmt.Errorf("no container engine: no docker engine answers at %s and podman is not on PATH; start dockerd, or install Podman (apt-get install podman uidmap slirp4netns)", dockerCli.DockerEndpoint().Host)
	}
	return p, nil
}
