package cliplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/containerd/platforms"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/cliplugin/imagelookup"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/hoststore"
)

const (
	formatTable = "table"
	formatJSON  = "json"
)

type planOptions struct {
	closure  closureOptions
	strategy string
	max      int
	format   string
	platform string
	context  string
	previous string
	args     []string
}

func newPlanCommand(dockerCli command.Cli) *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "plan [OPTIONS] MANIFEST|ROOT [ROOT...]",
		Short: "Print the layer plan of an image without building it",
		Long: `Print the layer plan of an image without building it: the store layers,
bottom first, with the store paths of each.

With one argument that is a file (and not a symlink into the store), the
argument is a manifest, planned as "docker build" would plan it for one
platform (--platform, default: this machine's). Its files are read from the
build context, --context (default: the manifest's directory). The budget and
the strategy are the manifest's LAYERS unless --max or --strategy are given.
The budget counts every layer of the image: a FROM image's layers, listed
first as "base" rows (read from the local engine, else the registry, config
only), and the customisation layer (` + manifest.CustomisationInstructions + `),
which is not listed, come off it.

Otherwise the arguments are ROOTs, whose closure is planned with the budget
--max (default 100) and the strategy --strategy (default ` + layering.DefaultStrategy + `).

--previous IMAGE plans the next release of IMAGE, as a manifest's LAYERS
--previous=IMAGE does (the flag overrides it; --previous "" ignores it): the
plan keeps the layers of the plan that IMAGE records where that ships fewer
bytes (only the storepack strategy uses it). The recorded plan is read from
the config of IMAGE for the platform (--platform, default: this machine's)
in the local engine, else in IMAGE's registry, where only the manifests and
the config are fetched, no layer. Registry credentials are docker's (docker
login). A registry on a loopback address, or one the engine lists as
insecure (docker info), is tried with HTTPS without verifying its
certificate, then with plain HTTP.

` + fromHelp,
		Example: `  docker storepack plan app.storepack
  docker storepack plan --platform linux/arm/v7 --format json app.storepack
  docker storepack plan --max 10 --strategy popularity ./result
  docker storepack plan --previous registry.example/app:1.0 ./result`,
		Args:                  cli.RequiresMinArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.args = args
			return runPlan(cmd, dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.strategy, "strategy", "", fmt.Sprintf("Layering strategy: %s (default: the manifest's, else %s)", strings.Join(layering.Strategies(), ", "), layering.DefaultStrategy))
	flags.IntVar(&opts.max, "max", 0, fmt.Sprintf("Layer budget, counting every layer of the image (default: the manifest's, else %d)", manifest.DefaultMaxLayers))
	flags.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	flags.StringVar(&opts.platform, "platform", "", "Target platform of a manifest and of the --previous image, as os/arch[/variant] or a Nix system such as aarch64-linux (default: this machine's)")
	flags.StringVar(&opts.context, "context", "", "Build context of a manifest (default: the manifest's directory)")
	flags.StringVar(&opts.previous, "previous", "", `Image whose recorded layer plan to keep where that ships fewer bytes, read from the engine or a registry (default: the manifest's LAYERS --previous; "" for none)`)
	opts.closure.addFlags(flags)
	return cmd
}

func runPlan(cmd *cobra.Command, dockerCli command.Cli, opts planOptions) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	flags := cmd.Flags()
	if opts.format != formatTable && opts.format != formatJSON {
		return fmt.Errorf("--format=%s: want %s or %s", opts.format, formatTable, formatJSON)
	}
	if opts.strategy != "" && !slices.Contains(layering.Strategies(), opts.strategy) {
		return fmt.Errorf("--strategy=%s: unknown layering strategy (known: %s)", opts.strategy, strings.Join(layering.Strategies(), ", "))
	}
	if flags.Changed("max") && opts.max < 1 {
		return fmt.Errorf("--max=%d: want a whole number of at least 1", opts.max)
	}

	var (
		plan layering.Plan
		base *manifest2llb.BaseImage
		err  error
	)
	// Read the previous plan only when there is an image to read, so
	// that plans without one never contact the engine.
	readPrevious := func(ctx context.Context, ref string, p ocispecs.Platform) (*layering.Plan, error) {
		return readPreviousPlan(ctx, ref, p, dockerSources(dockerCli))
	}
	if file, ok := manifestArg(opts.args, opts.closure.storeDir); ok {
		for _, name := range []string{"from", "store-dir"} {
			if flags.Changed(name) {
				return fmt.Errorf("--%s applies to ROOT arguments, not to a manifest (%s), which names its graph with GRAPH and its store with STORE", name, file)
			}
		}
		mo := manifestPlanOptions{
			strategy:     opts.strategy,
			max:          opts.max,
			context:      opts.context,
			platform:     opts.platform,
			readPrevious: readPrevious,
			resolveImage: func(ctx context.Context, ref string, p ocispecs.Platform) (string, []byte, error) {
				img, _, err := imagelookup.ImageConfig(ctx, ref, p, dockerSources(dockerCli))
				if err != nil {
					return "", nil, err
				}
				data, err := json.Marshal(img)
				return ref, data, err
			},
		}
		if flags.Changed("previous") {
			mo.previous = &opts.previous
		}
		plan, base, err = planManifest(ctx, file, mo)
	} else {
		if flags.Changed("context") {
			return errors.New("--context applies to a manifest, not to ROOT arguments")
		}
		if flags.Changed("platform") && opts.previous == "" {
			return errors.New("--platform applies to a manifest, or to the --previous image, not to ROOT arguments alone")
		}
		budget := opts.max
		if budget == 0 {
			budget = manifest.DefaultMaxLayers
		}
		var previous func(context.Context) (*layering.Plan, error)
		if opts.previous != "" {
			p, err := targetPlatform(opts.platform)
			if err != nil {
				return err
			}
			previous = func(ctx context.Context) (*layering.Plan, error) {
				plan, err := readPrevious(ctx, opts.previous, p)
				if err != nil {
					return nil, fmt.Errorf("--previous: %w", err)
				}
				return plan, nil
			}
		}
		plan, err = planRoots(ctx, opts.args, opts.closure, layering.Options{Strategy: opts.strategy, MaxLayers: budget}, previous, dockerCli.Err())
	}
	if err != nil {
		return err
	}
	if opts.format == formatJSON {
		return writePlanJSON(dockerCli.Out(), plan, base)
	}
	return writePlanTable(dockerCli.Out(), plan, base)
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

// planRoots plans the closure of ROOT arguments. previous, if not nil,
// reads opt.Previous once the closure is known.
func planRoots(ctx context.Context, args []string, co closureOptions, opt layering.Options, previous func(context.Context) (*layering.Plan, error), warn io.Writer) (layering.Plan, error) {
	g, err := co.load(ctx, args, warn)
	if err != nil {
		return layering.Plan{}, err
	}
	if previous != nil {
		if opt.Previous, err = previous(ctx); err != nil {
			return layering.Plan{}, err
		}
	}
	return layering.NewPlan(g, opt)
}

type manifestPlanOptions struct {
	strategy string  // "" : the manifest's
	max      int     // 0: the manifest's
	context  string  // "": the manifest's directory
	platform string  // "": the host's
	previous *string // nil: the manifest's LAYERS --previous; "": none
	// readPrevious reads the plan recorded in an image for a platform.
	readPrevious func(ctx context.Context, ref string, p ocispecs.Platform) (*layering.Plan, error)
	// resolveImage reads a FROM image.
	resolveImage manifest2llb.ImageResolver
}

// targetPlatform parses a --platform value; "" is the host's platform.
func targetPlatform(spec string) (ocispecs.Platform, error) {
	if spec == "" {
		return platforms.Normalize(platforms.DefaultSpec()), nil
	}
	return inputs.ParsePlatform(spec)
}

// planManifest plans a manifest for one platform with the conversion
// that `docker build` runs, reading the context and the store from the
// host. Errors located in the manifest name its file and line.
func planManifest(ctx context.Context, file string, opt manifestPlanOptions) (plan layering.Plan, base *manifest2llb.BaseImage, err error) {
	defer func() { err = manifest.WithFileLine(file, err) }()
	src, err := os.ReadFile(file)
	if err != nil {
		return layering.Plan{}, nil, err
	}
	p, err := targetPlatform(opt.platform)
	if err != nil {
		return layering.Plan{}, nil, err
	}
	contextDir := opt.context
	if contextDir == "" {
		contextDir = filepath.Dir(file)
	}
	if fi, err := os.Stat(contextDir); err != nil {
		return layering.Plan{}, nil, fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return layering.Plan{}, nil, fmt.Errorf("build context %s is not a directory", contextDir)
	}
	res, err := manifest2llb.Convert(ctx, src, manifest2llb.ConvertOpt{
		Source:        manifest2llb.HostSource{HostSource: inputs.HostSource{ContextDir: contextDir}},
		Stager:        manifest2llb.HostStager{},
		Differ:        hostbuild.SelfDiffer{},
		PlanOnly:      true,
		BuildPlatform: p,
		Strategy:      opt.strategy,
		MaxLayers:     opt.max,
		Previous:      opt.previous,
		ReadPrevious:  opt.readPrevious,
		ResolveImage:  opt.resolveImage,
	})
	if err != nil {
		return layering.Plan{}, nil, err
	}
	return res.Images[0].Plan, res.Images[0].Base, nil
}

func writePlanJSON(w io.Writer, plan layering.Plan, base *manifest2llb.BaseImage) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Base *manifest2llb.BaseImage `json:"base,omitempty"`
		layering.Plan
	}{base, plan})
}

// writePlanTable writes one row per layer, bottom first, aligned like
// docker's tables: a FROM image's layers (LAYER "base", its diffID), then
// each store layer's index (as in the JSON), key, number of paths, size
// and the names of its store paths.
func writePlanTable(w io.Writer, plan layering.Plan, base *manifest2llb.BaseImage) error {
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tKEY\tPATHS\tSIZE\tSTORE PATHS")
	if base != nil {
		for _, d := range base.DiffIDs {
			fmt.Fprintf(tw, "base\t%s\t-\t-\t(%s)\n", base.Ref, d)
		}
	}
	for i, l := range plan.Layers {
		// Names sorted for reading; the JSON keeps the plan's path order.
		names := make([]string, len(l.Paths))
		for k, p := range l.Paths {
			names[k] = p.Name
		}
		slices.Sort(names)
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", i, l.Key, len(l.Paths), humanSize(l.Size), strings.Join(names, ", "))
	}
	return tw.Flush()
}

// humanSize writes a size as docker does; 0 is an unknown size (a graph
// without NAR sizes).
func humanSize(size uint64) string {
	if size == 0 {
		return "-"
	}
	return units.HumanSize(float64(size))
}
