package manifest2llb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/manifest"
)

// ImageResolver reads the config of image ref for platform p from the
// builder's image store or a registry, and returns the reference to build
// on: ref pinned to the digest it read, where the builder gives one, so
// that the layers and the config come from the same image.
type ImageResolver func(ctx context.Context, ref string, p ocispecs.Platform) (pinned string, config []byte, err error)

// BaseImage is a FROM image as a conversion read it.
type BaseImage struct {
	Ref     string          `json:"ref"` // pinned to its digest where the builder gave one
	DiffIDs []digest.Digest `json:"diffIDs"`
}

// baseImage is a FROM image resolved for one platform.
type baseImage struct {
	from   *manifest.Base
	pinned string
	config dockerspec.DockerOCIImage
}

// base resolves the platform's FROM image; nil when the manifest has none
// for p.
func (c *conversion) base(ctx context.Context, spec *manifest.Spec, p ocispecs.Platform) (*baseImage, error) {
	from := spec.BaseFor(platforms.Format(p))
	if from == nil {
		return nil, nil
	}
	fail := func(err error) (*baseImage, error) {
		return nil, parser.WithLocation(fmt.Errorf("FROM %s: %w", from.Image, err), from.Location)
	}
	if c.opt.ResolveImage == nil {
		return fail(errors.New("this conversion cannot read images"))
	}
	pinned, data, err := c.opt.ResolveImage(ctx, from.Image, p)
	if err != nil {
		return fail(err)
	}
	b := &baseImage{from: from, pinned: pinned}
	if err := json.Unmarshal(data, &b.config); err != nil {
		return fail(fmt.Errorf("its config: %w", err))
	}
	// A single-platform image is returned whatever platform was asked.
	if got := b.config.Platform; got.OS != "" && !platforms.Only(p).Match(platforms.Normalize(got)) {
		return fail(fmt.Errorf("the image is for %s, not %s", platforms.Format(got), platforms.Format(p)))
	}
	return b, nil
}

// layers is how many layers the base image brings.
func (b *baseImage) layers() int { return len(b.config.RootFS.DiffIDs) }

// state is the base image's file system, the bottom of the image.
func (b *baseImage) state(p ocispecs.Platform) llb.State {
	return llb.Image(b.pinned, llb.Platform(p), llb.WithCustomName("base image "+b.from.Image))
}
