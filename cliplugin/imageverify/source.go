package imageverify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/platforms"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/engineload"
	"github.com/storepack/storepack/cliplugin/imagelookup"
)

// FromRegistry is an image imagelookup found in a registry: its layers are
// fetched from there when read.
func FromRegistry(name string, img *imagelookup.Image) Image {
	out := fromConfig(name, img.Config)
	if img.Manifest != nil && len(img.Manifest.Layers) == len(out.DiffIDs) {
		out.Layer = blobLayers(img.Blobs, img.Manifest.Layers)
	}
	return out
}

func fromConfig(name string, cfg *dockerspec.DockerOCIImage) Image {
	return Image{Name: name, Labels: cfg.Config.Labels, Created: cfg.Created, DiffIDs: cfg.RootFS.DiffIDs, History: cfg.History}
}

// blobLayers opens layer i of an image whose layer blobs are layers.
func blobLayers(blobs content.Provider, layers []ocispecs.Descriptor) func(ctx context.Context, i int) (io.ReadCloser, error) {
	return func(ctx context.Context, i int) (io.ReadCloser, error) {
		ra, err := blobs.ReaderAt(ctx, layers[i])
		if err != nil {
			return nil, err
		}
		r, err := compression.DecompressStream(content.NewReader(ra))
		if err != nil {
			ra.Close()
			return nil, err
		}
		return readCloser{Reader: r, close: func() error { r.Close(); return ra.Close() }}, nil
	}
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// FromArchive reads the image for platform p of an archive (docker or OCI,
// a file or an OCI layout directory), whose blobs stay in a temporary
// store until close.
func FromArchive(ctx context.Context, path string, p ocispecs.Platform) (img Image, close func() error, err error) {
	a, err := engineload.Open(ctx, path, nil, p, platforms.Only(p))
	if err != nil {
		return Image{}, nil, err
	}
	img, err = fromStore(ctx, a)
	if err != nil {
		a.Close()
		return Image{}, nil, err
	}
	return img, a.Close, nil
}

// fromStore reads the image of an archive from its content store.
func fromStore(ctx context.Context, a *engineload.ArchiveImage) (Image, error) {
	var m ocispecs.Manifest
	if err := readJSON(ctx, a.Store, a.Manifest, &m); err != nil {
		return Image{}, fmt.Errorf("%s: %w", a.Name, err)
	}
	var cfg dockerspec.DockerOCIImage
	if err := readJSON(ctx, a.Store, m.Config, &cfg); err != nil {
		return Image{}, fmt.Errorf("%s: %w", a.Name, err)
	}
	img := fromConfig(a.Name, &cfg)
	if len(m.Layers) == len(img.DiffIDs) {
		img.Layer = blobLayers(a.Store, m.Layers)
	}
	return img, nil
}

func readJSON(ctx context.Context, blobs content.Provider, desc ocispecs.Descriptor, v any) error {
	data, err := content.ReadBlob(ctx, blobs, desc)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// Engine is what FromEngine asks of the local engine; client.APIClient has
// it.
type Engine interface {
	ClientVersion() string
	ImageHistory(ctx context.Context, ref string, opts ...client.ImageHistoryOption) (client.ImageHistoryResult, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
}

var _ Engine = (client.APIClient)(nil)

// FromEngine completes image ref for platform p that imagelookup found in
// the engine (cfg, which has no history) with its history; its layers are
// read, when first asked for, by saving the image into a temporary store,
// removed by close.
func FromEngine(ctx context.Context, engine Engine, ref string, p ocispecs.Platform, cfg *dockerspec.DockerOCIImage) (img Image, close func() error, err error) {
	var opts []client.ImageHistoryOption
	var saveOpts []client.ImageSaveOption
	if versions.GreaterThanOrEqualTo(engine.ClientVersion(), "1.49") {
		// An engine with the containerd image store can hold several
		// platforms of an image.
		opts = append(opts, client.ImageHistoryWithPlatform(p))
		saveOpts = append(saveOpts, client.ImageSaveWithPlatforms(p))
	}
	hist, err := engine.ImageHistory(ctx, ref, opts...)
	if err != nil {
		return Image{}, nil, fmt.Errorf("%s: its history: %w", ref, err)
	}
	img = fromConfig(ref, cfg)
	img.History = nil
	// Newest first; the API does not tell empty entries (LayoutOf needs
	// not know them).
	for _, h := range slices.Backward(hist.Items) {
		created := time.Unix(h.Created, 0).UTC()
		img.History = append(img.History, ocispecs.History{Created: &created, CreatedBy: h.CreatedBy, Comment: h.Comment})
	}
	saved := &savedImage{engine: engine, ref: ref, platform: p, opts: saveOpts}
	img.Layer = saved.layer
	return img, saved.close, nil
}

// savedImage is an engine's image saved into a temporary store when a
// layer of it is first read.
type savedImage struct {
	engine   Engine
	ref      string
	platform ocispecs.Platform
	opts     []client.ImageSaveOption

	once sync.Once
	err  error
	a    *engineload.ArchiveImage
	open func(ctx context.Context, i int) (io.ReadCloser, error)
}

func (s *savedImage) layer(ctx context.Context, i int) (io.ReadCloser, error) {
	s.once.Do(func() {
		r, err := s.engine.ImageSave(ctx, []string{s.ref}, s.opts...)
		if err != nil {
			s.err = fmt.Errorf("saving %s from the engine: %w", s.ref, err)
			return
		}
		defer r.Close()
		if s.a, s.err = engineload.Open(ctx, "-", r, s.platform, platforms.Only(s.platform)); s.err != nil {
			return
		}
		var img Image
		if img, s.err = fromStore(ctx, s.a); s.err == nil && img.Layer == nil {
			s.err = fmt.Errorf("saving %s from the engine: its layers do not match its diffIDs", s.ref)
		}
		s.open = img.Layer
	})
	if s.err != nil {
		return nil, s.err
	}
	return s.open(ctx, i)
}

func (s *savedImage) close() error {
	if s.a != nil {
		return s.a.Close()
	}
	return nil
}
