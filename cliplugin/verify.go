package cliplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/containerd/platforms"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/storepack/storepack/cliplugin/imagelookup"
	"github.com/storepack/storepack/cliplugin/imageverify"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/layering"
)

type verifyOptions struct {
	image    string
	against  []string
	planning planningOptions
}

func newVerifyCommand(dockerCli command.Cli) *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify [OPTIONS] IMAGE",
		Short: "Rebuild an image's store layers from the store and name any that differ",
		Long: `Rebuild each store layer of IMAGE on this host from the store paths the
image records (its layer plan), bypassing every cache, and compare it with the
image's layer: by diffID, and where the bytes differ, by the files of each
store path, which names the store paths that differ. A layer whose tar bytes
differ but whose files are the same (an image built by Docker 20.10's BuildKit,
whose tar writer writes other headers) passes as "same files". Exit 0 only
when every store layer passes. A FROM image's layers and the customisation
layer (LINK, DIR, COPY, RUN) are not made from the store and are listed as
not checked.

IMAGE is an image in the engine, else in its registry (as plan --previous
reads one: only the config and the manifests are fetched, and a layer only
where it must be compared file by file), or a docker or OCI archive (a file,
or an OCI layout directory). The store is read at /nix/store (or /gnu/store),
or below --store-root.

--against MANIFEST or --against ROOT (repeated for several roots) checks the
image against those inputs instead: their layer plan (with the options of
"docker storepack plan"; the previous image is IMAGE itself unless --previous
says otherwise) must put the same store paths in each store layer. For a
manifest whose image the host writes (no FROM, COPY or RUN), the store layers
are written as a build writes them, with no cache, and the customisation layer
(LINK, DIR) is checked too.`,
		Example: `  docker storepack verify registry.example/app:2
  docker storepack verify --store-root /srv/nix app.oci.tar
  docker storepack verify --against app.storepack app:2`,
		Args:                  cli.ExactArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runVerify(ctx, dockerCli, cmd.Flags(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringArrayVar(&opts.against, "against", nil, "A manifest, or ROOTs (repeat the flag), to check the image's store layers against (default: the store paths the image records)")
	opts.planning.addFlags(flags, "Platform of the image to check (os/arch[/variant] or a Nix system; default: this machine's)")
	return cmd
}

func runVerify(ctx context.Context, dockerCli command.Cli, flags *pflag.FlagSet, opts verifyOptions) error {
	p, err := targetPlatform(opts.planning.platforms)
	if err != nil {
		return err
	}
	if len(opts.against) == 0 {
		for _, name := range []string{"context", "build-arg", "strategy", "max-layers", "previous", "from", "store-dir"} {
			if flags.Changed(name) {
				return fmt.Errorf("--%s applies to the inputs --against names; without them the image's recorded store paths are checked", name)
			}
		}
	}
	img, closeImage, err := readVerifiedImage(ctx, dockerCli, opts.image, p)
	if err != nil {
		return err
	}
	defer closeImage()
	layout, err := imageverify.LayoutOf(img)
	if errors.Is(err, imageverify.ErrNotStorepack) {
		return fmt.Errorf("%s %w", opts.image, err)
	} else if err != nil {
		return fmt.Errorf("%s: %w", opts.image, err)
	}
	check := imageverify.Options{StoreRoot: opts.planning.convert.storeRoot}
	if len(opts.against) > 0 {
		if check.Against, err = againstInputs(ctx, dockerCli, flags, opts, p, layout.Plan); err != nil {
			return err
		}
	}
	report, err := imageverify.Check(ctx, img, check)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.image, err)
	}
	if err := writeVerifyTable(dockerCli.Out(), report); err != nil {
		return err
	}
	return verifyError(opts.image, report)
}

// readVerifiedImage reads IMAGE: an archive when a file or directory of
// that name exists, else an image of the engine or the registry.
func readVerifiedImage(ctx context.Context, dockerCli command.Cli, ref string, p ocispecs.Platform) (imageverify.Image, func() error, error) {
	if _, err := os.Stat(ref); err == nil {
		return imageverify.FromArchive(ctx, ref, p)
	}
	bounded, cancel := manifest2llb.WithRegistryTimeout(ctx)
	defer cancel()
	src := dockerSources(dockerCli)
	found, err := imagelookup.Lookup(bounded, ref, p, src)
	if err != nil {
		return imageverify.Image{}, nil, manifest2llb.RegistryError(bounded, ref, err)
	}
	if found.Origin == imagelookup.InEngine {
		return imageverify.FromEngine(ctx, dockerCli.Client(), ref, p, found.Config)
	}
	return imageverify.FromRegistry(ref, found), func() error { return nil }, nil
}

// againstInputs is what the inputs --against names make: their layer plan
// (the previous image is the checked image, whose plan is recorded, unless
// --previous names another) and, for a manifest the host writes the image
// of, its store layers' diffIDs and its customisation layer, written with no
// cache.
func againstInputs(ctx context.Context, dockerCli command.Cli, flags *pflag.FlagSet, opts verifyOptions, p ocispecs.Platform, recorded layering.Plan) (*imageverify.Inputs, error) {
	planning := opts.planning
	planning.platforms = []string{platforms.Format(p)}
	input, _, err := planning.open(ctx, dockerCli, flags, opts.against)
	if err != nil {
		return nil, err
	}
	if !flags.Changed("previous") {
		input.Previous = &opts.image
		input.ReadPrevious = func(context.Context, string, ocispecs.Platform) (*manifest2llb.PreviousImage, error) {
			return &manifest2llb.PreviousImage{Plan: &recorded}, nil
		}
	}
	// ROOTs say nothing of a customisation layer; nor can the host write
	// one of FROM, COPY or RUN.
	if _, isManifest := manifestArg(opts.against, planning.roots.storeDir); !isManifest || input.NeedsBuilder() {
		img, err := input.Plan(ctx, p, pinnedImages(dockerCli))
		if err != nil {
			return nil, err
		}
		return &imageverify.Inputs{Plan: img.Plan}, nil
	}
	img, err := input.HostImage(ctx, p, pinnedImages(dockerCli))
	if err != nil {
		return nil, err
	}
	in := &imageverify.Inputs{Plan: img.Plan}
	if img.Host != nil && len(img.Host.Layers) == len(img.Plan.Layers) {
		in.HostWritten, in.Customisation = true, img.Host.Customisation
		for _, l := range img.Host.Layers {
			in.DiffIDs = append(in.DiffIDs, l.DiffID)
		}
	}
	return in, nil
}

// writeVerifyTable writes one row per layer of the image, bottom first:
// its number, kind, status, diffID, and its store paths (those to blame
// where it fails) with a note.
func writeVerifyTable(w io.Writer, r imageverify.Report) error {
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tKIND\tSTATUS\tDIFFID\tSTORE PATHS")
	for _, l := range r.Layers {
		var paths []string
		shown := l.Paths
		if l.Culprits != nil {
			shown = l.Culprits
		}
		for _, sp := range shown {
			paths = append(paths, sp.String())
		}
		detail := strings.Join(paths, " ")
		if l.Note != "" && (l.Status != imageverify.Match && l.Status != imageverify.NotChecked || len(paths) == 0) {
			detail = strings.TrimSpace(detail + " (" + l.Note + ")")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", l.Index+1, l.Kind, l.Status, l.DiffID.Encoded()[:12], detail)
	}
	return tw.Flush()
}

// verifyError is nil for a verified report, else one line naming the
// layers that failed and their store paths.
func verifyError(image string, r imageverify.Report) error {
	if r.Verified() {
		return nil
	}
	var failed []string
	for _, l := range r.Layers {
		if l.Status == imageverify.Differs || l.Status == imageverify.Missing {
			var paths []string
			for _, sp := range l.Culprits {
				paths = append(paths, sp.String())
			}
			what := fmt.Sprintf("layer %d %s", l.Index+1, strings.ToLower(l.Status.String()))
			if len(paths) > 0 {
				what += ": " + strings.Join(paths, ", ")
			} else {
				what += ", the " + l.Kind.String() + " layer"
			}
			failed = append(failed, what+" ("+l.Note+")")
		}
	}
	return errors.New(image + " does not match the store: " + strings.Join(failed, "; "))
}
