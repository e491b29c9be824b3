package layerllb

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
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
	// JSON's null leaves a path zero, where every string is parsed: a
	// plan with one could not be recorded again.
	for i, layer := range plan.Layers {
		if slices.Contains(layer.Paths, store.Path{}) {
			return nil, fmt.Errorf("label %s: layer %d lists null as a store path", PlanLabel, i+1)
		}
	}
	return &plan, nil
}

// ImageOptions are the settings of an image config.
type ImageOptions struct {
	Platform      ocispecs.Platform
	Config        dockerspec.DockerOCIImageConfig // from the manifest
	Epoch         time.Time                       // created time of the image and of every history entry
	Customisation bool                            // the image ends with a customisation layer
	// Base is the config of the image the layers are on (FROM); nil for
	// none.
	Base *dockerspec.DockerOCIImage
	// ContentKeys are the store layers' content keys (ContentLabel), in
	// plan order; nil for none.
	ContentKeys []digest.Digest
}

// Image returns the image config for a plan. The exporter fills in the
// rootfs diffIDs; the history here has exactly one entry per layer, in
// layer order (the base image's first), so the exporter adds none of its
// own.
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
	if opt.Base != nil {
		img.Config = onBase(opt.Base.Config, opt.Config)
		img.History = slices.Clone(opt.Base.History)
	}
	if img.Config.Labels == nil {
		img.Config.Labels = map[string]string{}
	}
	img.Config.Labels[PlanLabel] = string(planJSON) // never the base's
	delete(img.Config.Labels, ContentLabel)
	if opt.ContentKeys != nil {
		keys, err := json.Marshal(opt.ContentKeys)
		if err != nil {
			return nil, err
		}
		img.Config.Labels[ContentLabel] = string(keys)
	}

	for i, layer := range plan.Layers {
		img.History = append(img.History, ocispecs.History{
			Created:   &created,
			CreatedBy: StoreLayerCreatedBy(plan, i),
			Comment:   layerComment(layer),
		})
	}
	if opt.Customisation {
		img.History = append(img.History, ocispecs.History{
			Created:   &created,
			CreatedBy: CustomisationCreatedBy,
		})
	}
	return img, nil
}

// StoreLayerCreatedBy is the history's created_by of store layer i of
// plan, which tells a store layer among an image's layers.
func StoreLayerCreatedBy(plan layering.Plan, i int) string {
	return fmt.Sprintf("storepack: store layer %d/%d (%s)", i+1, len(plan.Layers), plan.Layers[i].Key)
}

// CustomisationCreatedBy is the history's created_by of the customisation
// layer, which tells it among an image's layers.
const CustomisationCreatedBy = "storepack: customisation layer"

// onBase is the config of an image built on base whose own instructions
// set config, as a Dockerfile's stage on its FROM: the environment is the
// base's overlaid by config's, variable by variable; labels, exposed ports
// and volumes add to the base's; an ENTRYPOINT replaces the base's and its
// CMD; a CMD, WORKDIR, USER or STOPSIGNAL replaces the base's. ONBUILD
// triggers are not inherited, as no build of this image runs them.
func onBase(base, config dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	out := base
	out.OnBuild = nil
	out.Env = slices.Clone(base.Env)
	for _, kv := range config.Env {
		name, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out.Env, func(have string) bool { return strings.HasPrefix(have, name+"=") || have == name })
		if i < 0 {
			out.Env = append(out.Env, kv)
		} else {
			out.Env[i] = kv
		}
	}
	out.Labels = merged(base.Labels, config.Labels)
	out.ExposedPorts = merged(base.ExposedPorts, config.ExposedPorts)
	out.Volumes = merged(base.Volumes, config.Volumes)
	if config.Entrypoint != nil {
		out.Entrypoint, out.Cmd = config.Entrypoint, nil
	}
	if config.Cmd != nil {
		out.Cmd = config.Cmd
	}
	for _, f := range []struct {
		to   *string
		from string
	}{
		{&out.WorkingDir, config.WorkingDir},
		{&out.User, config.User},
		{&out.StopSignal, config.StopSignal},
	} {
		if f.from != "" {
			*f.to = f.from
		}
	}
	return out
}

// merged is a copy of base with the entries of over added; nil when both
// are empty.
func merged[V any](base, over map[string]V) map[string]V {
	if len(base)+len(over) == 0 {
		return nil
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, over)
	return out
}
