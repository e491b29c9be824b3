package imagelookup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/util/contentutil"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
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

// PushIndex pushes as ref one index of manifests, images in ref's
// repository (an index among them gives its manifests), in their order,
// and returns its descriptor. Only the index is sent: the images are in
// the repository already.
func PushIndex(ctx context.Context, ref string, manifests []ocispecs.Descriptor, src Sources) (ocispecs.Descriptor, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ocispecs.Descriptor{}, fmt.Errorf("push %s: not an image reference: %w", ref, err)
	}
	ctx = quietResolver(ctx)
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: registryHosts(ctx, src)})
	fetcher, err := resolver.Fetcher(ctx, reference.TrimNamed(named).String())
	if err != nil {
		return ocispecs.Descriptor{}, fmt.Errorf("push %s to the registry %s: %w", ref, reference.Domain(named), err)
	}
	fetched := smallBlobs{contentutil.FromFetcher(fetcher)}
	idx := ocispecs.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispecs.MediaTypeImageIndex}
	for _, m := range manifests {
		if !images.IsIndexType(m.MediaType) {
			idx.Manifests = append(idx.Manifests, m)
			continue
		}
		data, err := content.ReadBlob(ctx, fetched, m)
		var inner ocispecs.Index
		if err == nil {
			err = json.Unmarshal(data, &inner)
		}
		if err != nil {
			return ocispecs.Descriptor{}, fmt.Errorf("push %s: the index %s: %w", ref, m.Digest, err)
		}
		idx.Manifests = append(idx.Manifests, inner.Manifests...)
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return ocispecs.Descriptor{}, err
	}
	root := ocispecs.Descriptor{MediaType: idx.MediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	buf := contentutil.NewBuffer()
	if err := content.WriteBlob(ctx, buf, root.Digest.String(), bytes.NewReader(data), root); err != nil {
		return ocispecs.Descriptor{}, err
	}
	return root, Push(ctx, ref, root, withBlob{digest: root.Digest, buf: buf, rest: fetched}, src)
}

// withBlob serves one blob from memory, the others from rest.
type withBlob struct {
	digest digest.Digest
	buf    content.Provider
	rest   content.Provider
}

func (p withBlob) ReaderAt(ctx context.Context, desc ocispecs.Descriptor) (content.ReaderAt, error) {
	if desc.Digest == p.digest {
		return p.buf.ReaderAt(ctx, desc)
	}
	return p.rest.ReaderAt(ctx, desc)
}
