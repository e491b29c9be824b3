// Package layerstore serves store layers written on the host to BuildKit as
// images of one layer each, through the content store of the plugin's
// session, which BuildKit's OCI layout sources read. A layer's tar is
// written when the builder reads it, from the store paths themselves: the
// closure is never copied on the host's disk.
package layerstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layertar"
)

// Store is a content store of one-layer images. It implements the reading
// half of content.Store; what writes is refused.
type Store struct {
	ctx   context.Context // ends the layers being written
	mu    sync.Mutex
	blobs map[digest.Digest]*blob
}

var _ content.Store = (*Store)(nil)

// New returns an empty Store whose layers are written under ctx.
func New(ctx context.Context) *Store {
	return &Store{ctx: ctx, blobs: map[digest.Digest]*blob{}}
}

// blob is a manifest or a config (data), a layer written when read, or a
// layer read from elsewhere (remote, as desc).
type blob struct {
	data   []byte
	layer  *layertar.Layer
	remote content.Provider
	desc   ocispecs.Descriptor
	size   int64

	mu     sync.Mutex // one reader of a layer at a time, at its offset
	stream *stream
}

// Add adds the image of one layer l, whose tar has digest diffID and size
// bytes (layertar.Digest, or a cache), for platform p, and returns the
// image's manifest descriptor. The layer is uncompressed, as BuildKit's
// differ writes it, so that the image's blobs and digests are those a build
// from the same store paths gives.
func (s *Store) Add(l layertar.Layer, diffID digest.Digest, size int64, p ocispecs.Platform) (ocispecs.Descriptor, error) {
	return s.addImage(diffID, LayerDescriptor(diffID, size), &blob{layer: &l, size: size}, p)
}

// LayerDescriptor describes the blob Add adds for a layer whose tar has
// digest diffID and size bytes.
func LayerDescriptor(diffID digest.Digest, size int64) ocispecs.Descriptor {
	return ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayer, Digest: diffID, Size: size}
}

// addImage adds the manifest and config of an image of the one layer
// layerDesc, whose tar has digest diffID, and the layer's blob.
func (s *Store) addImage(diffID digest.Digest, layerDesc ocispecs.Descriptor, layer *blob, p ocispecs.Platform) (ocispecs.Descriptor, error) {
	config, err := json.Marshal(ocispecs.Image{
		Platform: p,
		RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	})
	if err != nil {
		return ocispecs.Descriptor{}, err
	}
	configDesc := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	manifest, err := json.Marshal(ocispecs.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispecs.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispecs.Descriptor{layerDesc},
	})
	if err != nil {
		return ocispecs.Descriptor{}, err
	}
	manifestDesc := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(configDesc.Digest, &blob{data: config, size: configDesc.Size})
	s.add(manifestDesc.Digest, &blob{data: manifest, size: manifestDesc.Size})
	s.add(layerDesc.Digest, layer)
	return manifestDesc, nil
}

// AddBlob adds the image of one layer whose blob is read elsewhere (a
// previous image's, in its registry), for platform p: the builder reads
// the blob from blobs only when it needs its bytes (not for a push to a
// registry that has it).
func (s *Store) AddBlob(diffID digest.Digest, layer ocispecs.Descriptor, blobs content.Provider, p ocispecs.Platform) (ocispecs.Descriptor, error) {
	return s.addImage(diffID, layer, &blob{remote: blobs, desc: layer, size: layer.Size}, p)
}

// AddData adds an uncompressed layer whose tar is data, and describes its
// blob.
func (s *Store) AddData(data []byte) ocispecs.Descriptor {
	desc := LayerDescriptor(digest.FromBytes(data), int64(len(data)))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(desc.Digest, &blob{data: data, size: desc.Size})
	return desc
}

// add keeps the first blob of a digest: the same layer added for two
// platforms is one blob.
func (s *Store) add(d digest.Digest, b *blob) {
	if _, ok := s.blobs[d]; !ok {
		s.blobs[d] = b
	}
}

func (s *Store) lookup(d digest.Digest) (*blob, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[d]
	if !ok {
		return nil, fmt.Errorf("%s: %w", d, cerrdefs.ErrNotFound)
	}
	return b, nil
}

// Info implements content.Store.
func (s *Store) Info(_ context.Context, d digest.Digest) (content.Info, error) {
	b, err := s.lookup(d)
	if err != nil {
		return content.Info{}, err
	}
	return content.Info{Digest: d, Size: b.size}, nil
}

// ReaderAt implements content.Store.
func (s *Store) ReaderAt(ctx context.Context, desc ocispecs.Descriptor) (content.ReaderAt, error) {
	b, err := s.lookup(desc.Digest)
	if err != nil {
		return nil, err
	}
	switch {
	case b.remote != nil:
		return b.remote.ReaderAt(ctx, b.desc)
	case b.layer == nil:
		return readerAt{bytes.NewReader(b.data)}, nil
	}
	return layerReader{s: s, b: b}, nil
}

// Close stops the layers being written.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.blobs {
		b.mu.Lock()
		b.stop()
		b.mu.Unlock()
	}
	return nil
}

// Walk implements content.Store.
func (s *Store) Walk(_ context.Context, fn content.WalkFunc, _ ...string) error {
	s.mu.Lock()
	infos := make([]content.Info, 0, len(s.blobs))
	for d, b := range s.blobs {
		infos = append(infos, content.Info{Digest: d, Size: b.size})
	}
	s.mu.Unlock()
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// The writing half of content.Store: the builder never writes here.

func (s *Store) Update(context.Context, content.Info, ...string) (content.Info, error) {
	return content.Info{}, cerrdefs.ErrNotImplemented
}
func (s *Store) Delete(context.Context, digest.Digest) error { return cerrdefs.ErrNotImplemented }
func (s *Store) Status(context.Context, string) (content.Status, error) {
	return content.Status{}, cerrdefs.ErrNotImplemented
}
func (s *Store) ListStatuses(context.Context, ...string) ([]content.Status, error) {
	return nil, cerrdefs.ErrNotImplemented
}
func (s *Store) Abort(context.Context, string) error { return cerrdefs.ErrNotImplemented }
func (s *Store) Writer(context.Context, ...content.WriterOpt) (content.Writer, error) {
	return nil, cerrdefs.ErrNotImplemented
}

type readerAt struct{ *bytes.Reader }

func (readerAt) Close() error { return nil }

// layerReader reads a layer as it is written. The session opens a reader
// for every chunk it asks for, at increasing offsets: the layer's writing
// goes on from one chunk to the next, and starts again only when a chunk
// before the last is asked for.
type layerReader struct {
	s *Store
	b *blob
}

// stream is a layer being written: pos bytes were read of it.
type stream struct {
	r    *io.PipeReader
	pos  int64
	stop context.CancelFunc
}

func (r layerReader) Size() int64  { return r.b.size }
func (r layerReader) Close() error { return nil }

func (r layerReader) ReadAt(p []byte, off int64) (int, error) {
	b := r.b
	if off >= b.size {
		return 0, io.EOF
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stream == nil || off < b.stream.pos {
		b.stop()
		b.start(r.s.ctx)
	}
	if skip := off - b.stream.pos; skip > 0 {
		n, err := io.CopyN(io.Discard, b.stream.r, skip)
		b.stream.pos += n
		if err != nil {
			b.stop()
			return 0, r.failed(err)
		}
	}
	want := p
	if rest := b.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n, err := io.ReadFull(b.stream.r, want)
	b.stream.pos += int64(n)
	if err != nil {
		b.stop()
		return n, r.failed(err)
	}
	if b.stream.pos == b.size {
		b.stop()
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// failed says which layer could not be read: the store paths changed
// since the layer was measured, or could not be read.
func (r layerReader) failed(err error) error {
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = fmt.Errorf("it ended before its %d bytes: did its store paths change since it was measured?", r.b.size)
	}
	return fmt.Errorf("store layer of %s: %w", r.b.layer.Paths[0], err)
}

// start writes the layer from its beginning into a new stream.
func (b *blob) start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	b.stream = &stream{r: pr, stop: cancel}
	go func() {
		pw.CloseWithError(layertar.Write(ctx, pw, *b.layer))
	}()
}

// stop ends the stream being written, if any.
func (b *blob) stop() {
	if b.stream != nil {
		b.stream.stop()
		b.stream.r.Close()
		b.stream = nil
	}
}
