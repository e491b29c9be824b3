package cliplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/containerd/platforms"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/storepack/storepack/cliplugin/imagelookup"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/layering"
)

const (
	formatTable = "table"
	formatJSON  = "json"
)

type planOptions struct {
	format   string
	planning planningOptions
	args     []string
}

func newPlanCommand(dockerCli command.Cli) *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "plan [OPTIONS] MANIFEST|ROOT [ROOT...]",
		Short: "Print the layer plan of an image without building it",
		Long: `Print the layer plan of an image without building it: the store layers,
bottom first, with the store paths of each. It is the plan that "docker
storepack build" of the same input records in the image: both run the one
conversion on the inputs read once.

With one argument that is a file (and not a symlink into the store), the
argument is a manifest, planned for one platform (--platform, default: this
machine's). Its files are read from the build context, --context (default:
the manifest's directory). Otherwise the arguments are ROOTs, planned as the
image "docker storepack build ROOT..." makes of them (see build --help).

The budget and the strategy are the manifest's LAYERS unless --max-layers or
--strategy are given. The budget counts every layer of the image: a FROM
image's layers, listed first as "base" rows (read from the local engine, else
the registry, config only), and the customisation layer (` + manifest.CustomisationInstructions + `),
which is not listed, come off it.

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
  docker storepack plan --max-layers 10 --strategy popularity ./result
  docker storepack plan --previous registry.example/app:1.0 ./result`,
		Args:                  cli.RequiresMinArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.args = args
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runPlan(ctx, dockerCli, cmd.Flags(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.format, "format", formatTable, `Output format: "table" or "json"`)
	opts.planning.addFlags(flags, platformHelp)
	return cmd
}

func runPlan(ctx context.Context, dockerCli command.Cli, flags *pflag.FlagSet, opts planOptions) error {
	if opts.format != formatTable && opts.format != formatJSON {
		return fmt.Errorf("--format=%s: want %s or %s", opts.format, formatTable, formatJSON)
	}
	input, p, err := opts.planning.open(ctx, dockerCli, flags, opts.args)
	if err != nil {
		return err
	}
	img, err := input.Plan(ctx, p, func(ctx context.Context, ref string, p ocispecs.Platform) (string, []byte, error) {
		bounded, cancel := manifest2llb.WithRegistryTimeout(ctx)
		defer cancel()
		cfg, _, err := imagelookup.ImageConfig(bounded, ref, p, dockerSources(dockerCli))
		if err != nil {
			return "", nil, manifest2llb.RegistryError(bounded, ref, err)
		}
		data, err := json.Marshal(cfg)
		return ref, data, err
	})
	if err != nil {
		return err
	}
	if opts.format == formatJSON {
		return writePlanJSON(dockerCli.Out(), img.Plan, img.Base)
	}
	return writePlanTable(dockerCli.Out(), img.Plan, img.Base)
}

// targetPlatform parses plan's --platform, of one platform; none is the
// host's platform.
func targetPlatform(specs []string) (ocispecs.Platform, error) {
	list, err := parsePlatforms(specs)
	switch {
	case err != nil:
		return ocispecs.Platform{}, err
	case len(list) == 0:
		return platforms.Normalize(platforms.DefaultSpec()), nil
	case len(list) > 1:
		return ocispecs.Platform{}, fmt.Errorf("--platform=%s: a plan is of one platform", strings.Join(specs, ","))
	}
	return list[0], nil
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
