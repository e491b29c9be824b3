package cliplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	intoto "github.com/in-toto/in-toto-golang/in_toto"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/storepack/storepack/cliplugin/imagelookup"
	"github.com/storepack/storepack/frontend"
	"github.com/storepack/storepack/frontend/cdxsbom"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/frontend/spdxsbom"
)

// The formats of `sbom`.
const (
	formatSPDXJSON      = "spdx-json"
	formatCycloneDXJSON = "cyclonedx-json"
)

type sbomOptions struct {
	format   string
	content  sbomContentOptions
	planning planningOptions
	args     []string
}

func newSBOMCommand(dockerCli command.Cli) *cobra.Command {
	var opts sbomOptions
	cmd := &cobra.Command{
		Use:   "sbom [OPTIONS] MANIFEST|ROOT [ROOT...]|IMAGE",
		Short: "Print the SBOM of an image without building it, or an image's attached SBOM",
		Long: `Print the SBOM of an image without building it: the document that
"docker storepack build --sbom" (or docker buildx build --sbom=true) of the
same input attaches to the image for the platform (--platform, default: this
machine's), byte for byte. It is stated from the closure graph and the layer
plan: one package per store path with its name, version, NAR hash and size,
package URL and layer, its references as dependencies, the roots described
(NAR hashes the graph lacks are read from the files), with what the
manifest's SBOM --metadata file says of licences, homepages and descriptions.
--format cyclonedx-json writes the same as a CycloneDX 1.6 document (the
store path, NAR size and layers as storepack:* properties of each component).
--sbom-files lists each store path's files too, as "build --sbom-files" does.

MANIFEST and ROOTs are read as "docker storepack plan" reads them, with the
same options (see plan --help): the layers a document names are the plan's,
so give the options the build has (--build-arg, --max-layers, --strategy,
--previous; a build with -t of an existing image takes that image as its
previous image, which --previous IMAGE says here).

With one argument that is neither a file nor a store path but an image
reference, the document is the one attached to IMAGE in its registry: the
SBOM attestation of its image for the platform, as the registry holds it
(SPDX only).

` + fromHelp,
		Example: `  docker storepack sbom app.storepack > app.spdx.json
  docker storepack sbom --platform linux/arm64 ./result
  docker storepack sbom --format cyclonedx-json ./result > app.cdx.json
  docker storepack sbom registry.example/app:2`,
		Args:                  cli.RequiresMinArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.args = args
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return runSBOM(ctx, dockerCli, cmd.Flags(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.format, "format", formatSPDXJSON, `Output format: "`+formatSPDXJSON+`" (SPDX 2.3, as attached) or "`+formatCycloneDXJSON+`" (CycloneDX 1.6)`)
	opts.content.addFlags(flags, "")
	opts.planning.addFlags(flags, "Target platform (os/arch[/variant] or a Nix system; default: this machine's)")
	return cmd
}

func runSBOM(ctx context.Context, dockerCli command.Cli, flags *pflag.FlagSet, opts sbomOptions) error {
	if opts.format != formatSPDXJSON && opts.format != formatCycloneDXJSON {
		return fmt.Errorf("--format=%s: want %s or %s", opts.format, formatSPDXJSON, formatCycloneDXJSON)
	}
	var doc []byte
	var err error
	if ref, ok := imageArg(opts.args); ok {
		if err := inputFlagsOnImage(flags, ref); err != nil {
			return err
		}
		if opts.format != formatSPDXJSON {
			return fmt.Errorf("--format=%s: an image's attached SBOM is SPDX (%s); the CycloneDX document is made from a manifest or ROOTs", opts.format, formatSPDXJSON)
		}
		var p ocispecs.Platform
		if p, err = targetPlatform(opts.planning.platforms); err != nil {
			return err
		}
		doc, err = imagelookup.Attestation(ctx, ref, p, intoto.PredicateSPDX, dockerSources(dockerCli))
		if err != nil && !strings.ContainsAny(ref, "/:@") {
			// A bare name may be a mistyped file.
			err = fmt.Errorf("no file %s, and as an image: %w", ref, err)
		}
	} else {
		doc, err = sbomOfInput(ctx, dockerCli, flags, opts)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "%s\n", doc)
	return err
}

// sbomOfInput converts the manifest or ROOTs of opts for their platform,
// for the layer plan and the SBOM, and returns the document in opts'
// format: SPDX as a build attaches it.
func sbomOfInput(ctx context.Context, dockerCli command.Cli, flags *pflag.FlagSet, opts sbomOptions) ([]byte, error) {
	input, p, err := opts.planning.open(ctx, dockerCli, flags, opts.args)
	if err != nil {
		return nil, err
	}
	img, err := input.PlanWithSBOM(ctx, p, pinnedImages(dockerCli), opts.content.files)
	if err != nil {
		return nil, err
	}
	if opts.format == formatCycloneDXJSON {
		doc, err := cdxsbom.JSON(img.SBOM)
		return bytes.TrimSuffix(doc, []byte("\n")), err
	}
	doc, err := spdxsbom.JSON(img.SBOM)
	if err != nil {
		return nil, err
	}
	return frontend.AttachedSBOM(doc)
}

// pinnedImages reads FROM images from the engine, else the registry, and
// pins a reference to the digest a builder pins it to, that of its
// manifest or index in the registry, where it was found there.
func pinnedImages(dockerCli command.Cli) manifest2llb.ImageResolver {
	return func(ctx context.Context, ref string, p ocispecs.Platform) (string, []byte, error) {
		img, err := imagelookup.Lookup(ctx, ref, p, dockerSources(dockerCli))
		if err != nil {
			return "", nil, err
		}
		data, err := json.Marshal(img.Config)
		if err != nil || img.Digest == "" {
			return ref, data, err
		}
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return "", nil, err
		}
		pinned, err := reference.WithDigest(reference.TagNameOnly(named), img.Digest)
		if err != nil {
			return "", nil, err
		}
		return pinned.String(), data, nil
	}
}

// imageArg tells an image reference from a manifest or ROOTs: one
// argument that names no file and parses as an image reference.
func imageArg(args []string) (string, bool) {
	if len(args) != 1 {
		return "", false
	}
	if _, err := os.Lstat(args[0]); !errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	_, err := reference.ParseNormalizedNamed(args[0])
	return args[0], err == nil
}

// inputFlagsOnImage is the error for an option of a manifest or ROOTs
// given with an IMAGE, whose document is read as it is.
func inputFlagsOnImage(flags *pflag.FlagSet, ref string) error {
	var err error
	flags.Visit(func(f *pflag.Flag) {
		if err == nil && f.Name != "format" && f.Name != "platform" {
			err = fmt.Errorf("--%s applies to a manifest or ROOTs, not to an image (%s), whose attached SBOM is read as it is", f.Name, ref)
		}
	})
	return err
}
