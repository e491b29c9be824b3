package hostbuild

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layerstore"
)

// archiveStore receives what an OCI or docker exporter writes into the
// client's content store: the blobs the layer store holds (the store
// layers, written on the host) are there already, so the builder does not
// send them back; the rest (manifests, configs, the customisation layer)
// goes to a temporary directory.
type archiveStore struct {
	content.Store // the temporary directory's
	dir           string
	layers        *layerstore.Store
}

var _ content.Store = (*archiveStore)(nil)

func newArchiveStore(layers *layerstore.Store) (*archiveStore, error) {
	dir, err := os.MkdirTemp("", "storepack-archive-")
	if err != nil {
		return nil, err
	}
	local, err := local.NewStore(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &archiveStore{Store: local, dir: dir, layers: layers}, nil
}

// Close removes the temporary directory.
func (s *archiveStore) Close() error { return os.RemoveAll(s.dir) }

func (s *archiveStore) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	if info, err := s.layers.Info(ctx, d); err == nil {
		return info, nil
	}
	return s.Store.Info(ctx, d)
}

func (s *archiveStore) ReaderAt(ctx context.Context, desc ocispecs.Descriptor) (content.ReaderAt, error) {
	if ra, err := s.layers.ReaderAt(ctx, desc); err == nil {
		return ra, nil
	}
	return s.Store.ReaderAt(ctx, desc)
}

func (s *archiveStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	if _, err := s.layers.Info(ctx, wo.Desc.Digest); err == nil {
		return nil, fmt.Errorf("%s: %w", wo.Desc.Digest, cerrdefs.ErrAlreadyExists)
	}
	return s.Store.Writer(ctx, opts...)
}

// writeArchive writes the image the exporter described in resp as the
// builder's exporter of variant (oci, docker) writes it.
func writeArchive(ctx context.Context, store *archiveStore, resp map[string]string, variant string, w io.Writer) error {
	data, err := base64.StdEncoding.DecodeString(resp[exptypes.ExporterImageDescriptorKey])
	if err != nil {
		return fmt.Errorf("the exporter's image descriptor: %w", err)
	}
	var desc ocispecs.Descriptor
	if err := json.Unmarshal(data, &desc); err != nil {
		return fmt.Errorf("the exporter's image descriptor: %w", err)
	}
	var names []string
	if n := resp[exptypes.ExporterImageNameKey]; n != "" {
		names = strings.Split(n, ",")
	}
	return writeImageArchive(ctx, store, desc, names, variant, w)
}
