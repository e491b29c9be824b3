// Package hostimage writes an image's configs, manifests and index on the
// host as BuildKit's image exporter writes them for the same layers and
// config: an image written without a builder then has the digests a build
// of the same manifest gives.
package hostimage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/util/compression"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Platform is one platform's image: its config as the conversion gives it
// to the exporter (JSON), its layers from the bottom, and the time it was
// made (SOURCE_DATE_EPOCH).
type Platform struct {
	Platform ocispecs.Platform
	Config   []byte
	Layers   []Layer
	Epoch    time.Time
}

// Layer is a layer's blob and the digest of its tar.
type Layer struct {
	Blob   ocispecs.Descriptor
	DiffID digest.Digest
}

// Image is what Write made: the configs, manifests and the index (for
// several platforms), and the descriptor of the top one as the OCI and
// docker exporters describe it (with its creation time).
type Image struct {
	Root   ocispecs.Descriptor
	Config digest.Digest // of the one platform's image; "" for an index
	Blobs  map[digest.Digest][]byte
}

// Write writes the image of platforms: one manifest for one platform, an
// index of them for several, as BuildKit builds a result of several
// target platforms; with OCI media types, which BuildKit's exporters write
// by default since its compatibility version 0.31, docker archives too.
func Write(ctx context.Context, ps []Platform) (*Image, error) {
	img := &Image{Blobs: map[digest.Digest][]byte{}}
	manifests := make([]ocispecs.Descriptor, len(ps))
	for i, p := range ps {
		desc, config, err := img.manifest(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", platforms.Format(p.Platform), err)
		}
		platform := platforms.Normalize(p.Platform)
		desc.Platform = &platform
		manifests[i] = desc
		img.Config = config
	}
	var epoch time.Time
	if len(ps) > 0 {
		epoch = ps[0].Epoch
	}
	created := map[string]string{ocispecs.AnnotationCreated: epoch.UTC().Format(time.RFC3339)}
	if len(ps) == 1 {
		img.Root = manifests[0]
		img.Root.Annotations = created
		return img, nil
	}
	img.Config = ""
	idx := ocispecs.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispecs.MediaTypeImageIndex,
		Manifests: manifests,
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	img.Root = img.add(idx.MediaType, data)
	img.Root.Annotations = created
	return img, nil
}

// add keeps data as a blob of mediaType and describes it.
func (img *Image) add(mediaType string, data []byte) ocispecs.Descriptor {
	d := digest.FromBytes(data)
	img.Blobs[d] = data
	return ocispecs.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// manifest writes p's config and manifest, and returns the manifest's
// descriptor and the config's digest.
func (img *Image) manifest(ctx context.Context, p Platform) (ocispecs.Descriptor, digest.Digest, error) {
	config, err := patchConfig(p)
	if err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	configDesc := img.add(ocispecs.MediaTypeImageConfig, config)
	layers := make([]ocispecs.Descriptor, len(p.Layers))
	for i, l := range p.Layers {
		layers[i] = ocispecs.Descriptor{MediaType: l.Blob.MediaType, Digest: l.Blob.Digest, Size: l.Blob.Size}
	}
	m := ocispecs.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispecs.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    compression.ConvertAllLayerMediaTypes(ctx, true, layers...),
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return ocispecs.Descriptor{}, "", err
	}
	return img.add(ocispecs.MediaTypeImageManifest, data), configDesc.Digest, nil
}

// patchConfig completes the conversion's config as the exporter does: the
// layers' diffIDs as its root file system, every history entry's time and
// the image's at most the epoch, the keys in order.
func patchConfig(p Platform) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(p.Config, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	var config struct{ History []ocispecs.History }
	if err := json.Unmarshal(p.Config, &config); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	rootFS := ocispecs.RootFS{Type: "layers"}
	for _, l := range p.Layers {
		rootFS.DiffIDs = append(rootFS.DiffIDs, l.DiffID)
	}
	epoch := p.Epoch
	for i, h := range config.History {
		if h.Created == nil || h.Created.After(epoch) {
			config.History[i].Created = &epoch
		}
	}
	var err error
	if fields["rootfs"], err = json.Marshal(rootFS); err != nil {
		return nil, err
	}
	if fields["history"], err = json.Marshal(config.History); err != nil {
		return nil, err
	}
	if v, ok := fields["created"]; ok {
		var t time.Time
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, fmt.Errorf("image config: created: %w", err)
		}
		if t.After(epoch) {
			if fields["created"], err = json.Marshal(&epoch); err != nil {
				return nil, err
			}
		}
	} else {
		// The last history entry's, as the exporter takes it.
		var last *time.Time
		for _, h := range config.History {
			if h.Created != nil {
				last = h.Created
			}
		}
		if fields["created"], err = json.Marshal(last); err != nil {
			return nil, err
		}
	}
	return json.Marshal(fields)
}
