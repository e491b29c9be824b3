package layerllb

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/storepack/storepack/layering"
)

// PlanLabel is the image label that records the layer plan, so that a later
// build can read the previous image's layout.
const PlanLabel = "dev.storepack.plan"

// ImageOptions are the settings of an image config.
type ImageOptions struct {
	Platform      ocispecs.Platform
	Config        dockerspec.DockerOCIImageConfig // from the manifest
	Epoch         time.Time                       // created time of the image and of every history entry
	Customisation bool                            // the image ends with a customisation layer
}

// Image returns the image config for a plan. The exporter fills in the
// rootfs diffIDs; the history here has exactly one entry per layer, in
// layer order, so the exporter adds none of its own.
func Image(plan layering.Plan, opt ImageOptions) (*dockerspec.DockerOCIImage, error) {
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	created := opt.Epoch.UTC()
	img := &dockerspec.DockerOCIImage{
		Image: ocispecs.Image{
			Created:  &created,
			Platform: opt.Platform,
			RootFS:   ocispecs.RootFS{Type: "layers"},
		},
		Config: opt.Config,
	}
	img.Config.Labels = maps.Clone(opt.Config.Labels)
	if img.Config.Labels == nil {
		img.Config.Labels = map[string]string{}
	}
	img.Config.Labels[PlanLabel] = string(planJSON)
	for i, layer := range plan.Layers {
		img.History = append(img.History, ocispecs.History{
			Created:   &created,
			CreatedBy: fmt.Sprintf("storepack: store layer %d/%d (%s)", i+1, len(plan.Layers), layer.Key),
			Comment:   layerComment(layer),
		})
	}
	if opt.Customisation {
		img.History = append(img.History, ocispecs.History{
			Created:   &created,
			CreatedBy: "storepack: customisation layer (LINK, DIR)",
		})
	}
	return img, nil
}
