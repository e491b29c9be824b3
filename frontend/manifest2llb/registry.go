package manifest2llb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/reference"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RegistryTimeout bounds each read of an image's metadata (a FROM image's
// config, a previous image's plan) and the plugin's check of a registry it
// is to push to. The registry clients of BuildKit and containerd wait
// without end for a registry that takes the connection and never answers;
// a manifest and a config are small, so a registry that is up answers well
// within it.
const RegistryTimeout = 30 * time.Second

// WithRegistryTimeout is ctx bounded by RegistryTimeout, for reading image
// metadata from a registry.
func WithRegistryTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, RegistryTimeout)
}

// RegistryError is the error of a read of image ref under a context from
// WithRegistryTimeout: when the bound cut the read short, an error that
// says so and names ref's registry; else err. Through a builder's gateway
// the builder's own end of the deadline may answer first, as a gRPC
// DeadlineExceeded, a moment before ctx ends.
func RegistryError(ctx context.Context, ref string, err error) error {
	return timedOut(ctx, ref, "answer", err)
}

// UploadError is RegistryError for an upload started to see whether ref's
// registry takes one (a registry may answer reads and never an upload).
func UploadError(ctx context.Context, ref string, err error) error {
	return timedOut(ctx, ref, "take an upload", err)
}

// timedOut is err, or, when the bound cut it short, an error saying that
// ref's registry did not do what within the bound.
func timedOut(ctx context.Context, ref, what string, err error) error {
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded {
		return err
	}
	registry := "of " + ref
	if named, perr := reference.ParseNormalizedNamed(ref); perr == nil {
		registry = reference.Domain(named)
	}
	return fmt.Errorf("the registry %s did not %s within %s", registry, what, RegistryTimeout)
}
