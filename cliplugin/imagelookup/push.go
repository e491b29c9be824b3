package imagelookup

import (
	"context"
	"fmt"
	"runtime"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"
)

// Push pushes the image root, whose blobs store holds, to its registry as
// ref, reaching the registry as Lookup does. A blob the repository has
// already is neither read nor sent.
func Push(ctx context.Context, ref string, root ocispecs.Descriptor, store content.Provider, src Sources) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("push %s: not an image reference: %w", ref, err)
	}
	named = reference.TagNameOnly(named)
	ctx = quietResolver(ctx)
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: registryHosts(ctx, src)})
	pusher, err := resolver.Pusher(ctx, named.String())
	if err != nil {
		return fmt.Errorf("push %s to the registry %s: %w", named, reference.Domain(named), err)
	}
	limit := semaphore.NewWeighted(int64(2 * runtime.GOMAXPROCS(0)))
	if err := remotes.PushContent(ctx, pusher, root, store, limit, platforms.All, nil); err != nil {
		return fmt.Errorf("push %s to the registry %s: %w", named, reference.Domain(named), err)
	}
	return nil
}
