package frontend

import (
	"context"
	"encoding/json"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/layerllb"
)

// previousPlan reads the layer plan recorded in the config of image ref
// for platform p, from the builder's image store or a registry; only the
// config is fetched.
func (b *build) previousPlan(ctx context.Context, ref string, p ocispecs.Platform) (*layering.Plan, error) {
	_, _, data, err := b.c.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
		LogName: "[storepack] read the layer plan of " + ref,
		ImageOpt: &sourceresolver.ResolveImageOpt{
			Platform:    &p,
			ResolveMode: b.bc.ImageResolveMode.String(),
		},
	})
	if err != nil {
		return nil, errors.Wrapf(err, "LAYERS --previous=%s", ref)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, errors.Wrapf(err, "LAYERS --previous=%s: image config", ref)
	}
	label, ok := img.Config.Labels[layerllb.PlanLabel]
	if !ok {
		return nil, errors.Errorf("LAYERS --previous=%s: the image (%s) records no layer plan (label %s): was it built by storepack?", ref, platforms.Format(p), layerllb.PlanLabel)
	}
	var plan layering.Plan
	if err := json.Unmarshal([]byte(label), &plan); err != nil {
		return nil, errors.Wrapf(err, "LAYERS --previous=%s: label %s", ref, layerllb.PlanLabel)
	}
	return &plan, nil
}
