package cliplugin

import (
	"context"
	"fmt"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/storepack/storepack/cliplugin/engineload"
	"github.com/storepack/storepack/cliplugin/podman"
	"github.com/storepack/storepack/frontend/inputs"
)

type loadOptions struct {
	platform string
	tags     []string
	quiet    bool
	src      string
	runtime  runtimeOption
}

func newLoadCommand(dockerCli command.Cli) *cobra.Command {
	var opts loadOptions
	cmd := &cobra.Command{
		Use:   "load [OPTIONS] ARCHIVE|DIRECTORY|-",
		Short: "Load an image from a docker or OCI archive into the engine",
		Long: `Load an image from a docker archive, an OCI archive or an OCI layout
directory ("-": standard input; gzip, bzip2, xz and zstd are read) into the
docker engine or Podman (--runtime). From an index of several platforms it loads --platform's
image, or else the best one for the engine's platform (as a pull picks:
amd64 also runs 386), converted to the docker archive that every engine
loads (Docker 20.10 cannot load an OCI index); an engine with the containerd
image store gets it with its index, and keeps the index's other platforms
that it holds. Nothing is loaded when the
archive is corrupt or has no image for the platform. Podman gets the same
docker archive, so the image has the same ID as in the docker engine.`,
		Example: `  docker storepack load app.tar
  docker storepack load --platform linux/arm/v7 -t app:arm app-oci.tar
  nix-build -A image | xargs cat | docker storepack load -
  storepack load --runtime podman app-oci.tar`,
		Args:                  cli.ExactArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.src = args[0]
			return runLoad(cmd.Context(), dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.platform, "platform", "", "Platform to load from an index (os/arch[/variant] or a Nix system; default: the engine's)")
	flags.StringArrayVarP(&opts.tags, "tag", "t", nil, "Name the loaded image (default: the archive's names); repeatable")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Print only what the engine says it loaded")
	opts.runtime.addFlag(flags)
	return cmd
}

func runLoad(ctx context.Context, dockerCli command.Cli, opts loadOptions) error {
	var names []string
	for _, tag := range opts.tags {
		ref, err := reference.ParseNormalizedNamed(tag)
		if err != nil {
			return fmt.Errorf("-t %s: not a valid image reference: %w", tag, err)
		}
		// The engine would load the image and then refuse the name.
		if _, ok := ref.(reference.Digested); ok {
			return fmt.Errorf("-t %s: a name and tag, not a digest", tag)
		}
		// In full: the containerd image store names the image exactly as the
		// archive's index does, and no familiar name finds "repo:tag" there.
		names = append(names, reference.TagNameOnly(ref).String())
	}
	pod, err := opts.runtime.podman(ctx, dockerCli)
	if err != nil {
		return err
	}
	// --platform asks for that platform, not one the engine could also run.
	lo := engineload.Options{Exact: opts.platform != "", Names: names, Out: dockerCli.Out()}
	var loader engineload.ImageLoader
	if pod != nil {
		loader = pod
		lo.Platform, err = podmanPlatform(ctx, pod, opts.platform)
	} else {
		engine := dockerCli.Client()
		loader = engine
		lo.Platform, lo.IndexStore, err = engineLoadTarget(ctx, engine, opts.platform)
	}
	if err != nil {
		return err
	}
	if !opts.quiet {
		lo.Progress = dockerCli.Err()
	}
	return engineload.Load(ctx, loader, opts.src, dockerCli.In(), lo)
}

// podmanPlatform parses spec; "" is Podman's platform.
func podmanPlatform(ctx context.Context, pod *podman.Podman, spec string) (ocispecs.Platform, error) {
	if spec != "" {
		return inputs.ParsePlatform(spec)
	}
	host, err := pod.Host(ctx)
	return host.Platform, err
}

// enginePlatform parses spec; "" is the engine's platform.
func enginePlatform(ctx context.Context, engine client.APIClient, spec string) (ocispecs.Platform, error) {
	if spec != "" {
		return inputs.ParsePlatform(spec)
	}
	p, _, err := engineLoadTarget(ctx, engine, spec)
	return p, err
}

// engineLoadTarget is the platform of spec ("": the engine's) and whether
// the engine keeps image indexes (its containerd image store does).
func engineLoadTarget(ctx context.Context, engine client.APIClient, spec string) (ocispecs.Platform, bool, error) {
	info, err := engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return ocispecs.Platform{}, false, fmt.Errorf("cannot reach the docker engine: %w", err)
	}
	p := platforms.Normalize(ocispecs.Platform{OS: info.Info.OSType, Architecture: info.Info.Architecture})
	if spec != "" {
		p, err = inputs.ParsePlatform(spec)
	}
	return p, containerdImageStore(info.Info), err
}
