package layerllb

import (
	"encoding/json"
	"errors"
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

// ErrNoRecordedPlan is RecordedPlan's error for labels without PlanLabel.
// Its text is a predicate: callers put the image's name before it.
var ErrNoRecordedPlan = errors.New("records no layer plan (label " + PlanLabel + "): was it built by storepack?")

// RecordedPlan decodes the layer plan that an image's config labels
// record, for a build that keeps the previous image's layout.
func RecordedPlan(labels map[string]string) (*layering.Plan, error) {
	label, ok := labels[PlanLabel]
	if !ok {
		return nil, ErrNoRecordedPlan
	}
	var plan layering.Plan
	if err := json.Unmarshal([]byte(label), &plan); err != nil {
		return nil, fmt.Errorf("label %s: %w", PlanLabel, err)
	}
	return &plan, nil
}

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
