package cliplugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/cli/command"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/imagelookup"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
)

// dockerSources returns the sources of the docker CLI: its engine (unless
// its endpoint cannot be resolved) and its credentials.
func dockerSources(dockerCli command.Cli) imagelookup.Sources {
	src := imagelookup.Sources{Auth: dockerCli.ConfigFile()}
	// Client() exits the process when the endpoint cannot be resolved
	// (DockerEndpoint has said why on stderr); the registry may still
	// have the image.
	if dockerCli.DockerEndpoint().Host != "" {
		src.Engine = dockerCli.Client()
	}
	return src
}

// readPreviousPlan reads the layer plan recorded in the config of image
// ref for platform p (`plan --previous`, a manifest's LAYERS --previous),
// from the local engine or the registry. Errors start with ref.
func readPreviousPlan(ctx context.Context, ref string, p ocispecs.Platform, src imagelookup.Sources) (*layering.Plan, error) {
	img, _, err := imagelookup.ImageConfig(ctx, ref, p, src)
	if err != nil {
		return nil, err
	}
	plan, err := layerllb.RecordedPlan(img.Config.Labels)
	switch {
	case errors.Is(err, layerllb.ErrNoRecordedPlan):
		return nil, fmt.Errorf("%s %w", ref, err)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return plan, nil
}
