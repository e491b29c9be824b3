package cliplugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/cli/command"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/imagelookup"
	"github.com/storepack/storepack/frontend/manifest2llb"
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

// readPrevious reads image ref for platform p as a previous image (`plan
// --previous`, a manifest's LAYERS --previous, the image -t names), from
// the local engine or the registry: its recorded layer plan and, from a
// registry, the store layers it records the content of. Errors start with
// ref. The lookup is bounded by manifest2llb.RegistryTimeout.
func readPrevious(ctx context.Context, ref string, p ocispecs.Platform, src imagelookup.Sources) (*manifest2llb.PreviousImage, error) {
	bounded, cancel := manifest2llb.WithRegistryTimeout(ctx)
	defer cancel()
	img, err := imagelookup.Lookup(bounded, ref, p, src)
	if err != nil {
		if timedOut := manifest2llb.RegistryError(bounded, ref, err); timedOut != err {
			return nil, fmt.Errorf("%s: %w", ref, timedOut)
		}
		return nil, err
	}
	plan, err := layerllb.RecordedPlan(img.Config.Config.Labels)
	switch {
	case errors.Is(err, layerllb.ErrNoRecordedPlan):
		return nil, fmt.Errorf("%s %w", ref, err)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return &manifest2llb.PreviousImage{Plan: plan, Layers: previousLayers(img, *plan)}, nil
}

// previousLayers pairs the store layers of an image from a registry with
// the content keys it records, their diffIDs and their blobs. The store
// layers are the last run of layers whose history says they are plan's;
// an image that does not add up (another tool's, or rewritten) gives none.
func previousLayers(img *imagelookup.Image, plan layering.Plan) []manifest2llb.PreviousLayer {
	if img.Manifest == nil || len(plan.Layers) == 0 {
		return nil
	}
	keys, err := layerllb.RecordedContent(img.Config.Config.Labels)
	if err != nil || len(keys) != len(plan.Layers) {
		return nil
	}
	var made []string // created_by of each history entry that made a layer
	for _, h := range img.Config.History {
		if !h.EmptyLayer {
			made = append(made, h.CreatedBy)
		}
	}
	diffIDs, blobs := img.Config.RootFS.DiffIDs, img.Manifest.Layers
	if len(made) != len(diffIDs) || len(made) != len(blobs) {
		return nil
	}
	for start := len(made) - len(plan.Layers); start >= 0; start-- {
		matches := true
		for i := range plan.Layers {
			matches = matches && made[start+i] == layerllb.StoreLayerCreatedBy(plan, i)
		}
		if !matches {
			continue
		}
		var layers []manifest2llb.PreviousLayer
		for i, key := range keys {
			if key != "" {
				layers = append(layers, manifest2llb.PreviousLayer{Key: key, DiffID: diffIDs[start+i], Blob: blobs[start+i], Blobs: img.Blobs})
			}
		}
		return layers
	}
	return nil
}
