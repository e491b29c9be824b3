// Package imagelookup finds the config of an image for a platform: in the
// local Docker engine if it has the image, else in the image's registry,
// where only the manifests and the config are fetched, never a layer.
//
// Registries are reached as docker reaches them: with the credentials of
// `docker login`, the certificates of /etc/docker/certs.d, and, for a
// loopback registry or one the engine lists as insecure, HTTPS without
// verifying the certificate, then plain HTTP (see registry.go).
package imagelookup

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/docker/cli/cli/config/configfile"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
)

// engineTimeout bounds each question to the local engine, which may be
// unreachable or slow: the registry is asked next.
const engineTimeout = 10 * time.Second

// EngineAPI is what ImageConfig asks the local engine.
type EngineAPI interface {
	ClientVersion() string
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	Info(ctx context.Context, opts client.InfoOptions) (client.SystemInfoResult, error)
}

// The docker CLI's client is the engine that callers pass.
var _ EngineAPI = (client.APIClient)(nil)

// Sources says where ImageConfig looks for an image.
type Sources struct {
	Engine EngineAPI              // the local engine; nil: none
	Auth   *configfile.ConfigFile // docker's registry credentials; nil: none

	certsDir string // per-registry certificates; "": dockerCertsDir (tests set it)
}

// Origin says where ImageConfig found an image.
type Origin int

const (
	InEngine   Origin = iota + 1 // the local engine's image store
	InRegistry                   // the image's registry
)

// ImageConfig returns the image config of image ref for platform p, and
// where it was found: in the local engine if it has ref for p, else in
// ref's registry, from p's manifest in ref's index (a lone manifest is
// taken whatever its platform). From the engine it holds what the engine's
// inspect tells: the container config, the platform and the rootfs, no
// history.
// Errors start with ref. When neither has the image for p, the error
// satisfies cerrdefs.IsNotFound.
func ImageConfig(ctx context.Context, ref string, p ocispecs.Platform, src Sources) (*dockerspec.DockerOCIImage, Origin, error) {
	img, err := Lookup(ctx, ref, p, src)
	if err != nil {
		return nil, 0, err
	}
	return img.Config, img.Origin, nil
}

// Image is an image found by Lookup.
type Image struct {
	Config *dockerspec.DockerOCIImage
	Origin Origin
	// From a registry, the manifest for the platform and where its blobs
	// are read from (fetched when read); nil from the engine.
	Manifest *ocispecs.Manifest
	Blobs    content.Provider
	// Digest is that of the manifest or index ref names in the registry,
	// which a builder pins ref to; "" from the engine.
	Digest digest.Digest
}

// Lookup finds image ref for platform p as ImageConfig does, and from a
// registry also its manifest and blobs.
func Lookup(ctx context.Context, ref string, p ocispecs.Platform, src Sources) (*Image, error) {
	p = platforms.Normalize(p)
	ctx = quietResolver(ctx)

	cfg, found, engineNote := engineConfig(ctx, src.Engine, ref, p)
	if found {
		return &Image{Config: cfg, Origin: InEngine}, nil
	}
	img, err := registryImage(ctx, ref, p, src)
	if err != nil {
		if engineNote != "" {
			err = fmt.Errorf("%w (local engine: %s)", err, engineNote)
		}
		return nil, err
	}
	return img, nil
}

// quietResolver silences containerd's resolver, which logs failed
// requests: its errors say enough.
func quietResolver(ctx context.Context) context.Context {
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	return log.WithLogger(ctx, logrus.NewEntry(quiet))
}

// engineConfig returns the config of image ref for platform p in the
// local engine. When the engine does not have it, found is false and note
// says why, for the error if the registry lacks it too.
func engineConfig(ctx context.Context, engine EngineAPI, ref string, p ocispecs.Platform) (cfg *dockerspec.DockerOCIImage, found bool, note string) {
	if engine == nil {
		return nil, false, ""
	}
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	var opts []client.ImageInspectOption
	if versions.GreaterThanOrEqualTo(engine.ClientVersion(), "1.49") {
		// An engine with the containerd image store can hold several
		// platforms of an image.
		opts = append(opts, client.ImageInspectWithPlatform(&p))
	}
	img, err := engine.ImageInspect(ctx, ref, opts...)
	switch {
	case cerrdefs.IsNotFound(err):
		return nil, false, ""
	case err != nil:
		// The CLI's connection errors span lines; the note ends one.
		return nil, false, strings.Join(strings.Fields(err.Error()), " ")
	}
	have := platforms.Normalize(ocispecs.Platform{OS: img.Os, Architecture: img.Architecture, Variant: img.Variant})
	if img.Os != "" && !platforms.Only(p).Match(have) {
		return nil, false, fmt.Sprintf("its image is for %s, not %s", platforms.Format(have), platforms.Format(p))
	}
	out := &dockerspec.DockerOCIImage{Image: ocispecs.Image{
		Platform: ocispecs.Platform{OS: img.Os, Architecture: img.Architecture, Variant: img.Variant},
		RootFS:   ocispecs.RootFS{Type: img.RootFS.Type},
	}}
	for _, l := range img.RootFS.Layers {
		d, err := digest.Parse(l)
		if err != nil {
			return nil, false, fmt.Sprintf("its layer %q: %v", l, err)
		}
		out.RootFS.DiffIDs = append(out.RootFS.DiffIDs, d)
	}
	if img.Config != nil {
		out.Config = *img.Config
	}
	return out, true, ""
}
