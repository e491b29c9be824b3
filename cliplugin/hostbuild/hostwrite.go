package hostbuild

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images/archive"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/storepack/storepack/cliplugin/hostimage"
	"github.com/storepack/storepack/cliplugin/layerstore"
	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/frontend/manifest2llb"
)

// errNeedsBuilder says that an image cannot be written on the host.
var errNeedsBuilder = errors.New("the image needs a builder")

// onHost reports whether every export of out can be written on the host,
// with no builder: archives, loads into an engine and pushes, of the
// compressions a builder gives by default, with no frontend image and no
// attestation.
func onHost(out Output) bool {
	if out.FrontendImage != "" || out.SBOM || len(out.Exports) == 0 {
		return false
	}
	for _, e := range out.Exports {
		toFile := (e.Type == "oci" || e.Type == "docker") && e.Attrs["dest"] != ""
		push := e.Type == "image" && e.Attrs["push"] == "true" && e.Push != nil && e.Attrs["name"] != ""
		if e.Load == nil && !toFile && !push {
			return false
		}
		for k := range e.Attrs {
			switch k {
			case "dest", "name", "push", "compression", "force-compression":
			default:
				return false
			}
		}
		if _, _, ok := hostCompression(e); !ok {
			return false
		}
	}
	return true
}

// hostCompression is the compression of the layers that e asks for, and
// whether the host writes it: gzip forced (the default for archives), or
// uncompressed, where only a forced one decompresses a previous image's
// blobs (uncompressedOnly).
func hostCompression(e Export) (gzipped, uncompressedOnly, ok bool) {
	attrs := compressionDefaults(e)
	for k, v := range e.Attrs {
		if k == "compression" || k == "force-compression" {
			attrs[k] = v
		}
	}
	forced := attrs["force-compression"] == "true"
	switch attrs["compression"] {
	case "uncompressed":
		return false, forced, true
	case "gzip":
		return true, false, forced
	}
	return false, false, false
}

// writeOnHost converts in and writes its images as out says, with no
// builder, or returns errNeedsBuilder (before writing anything) when an
// image needs one.
func (in *Input) writeOnHost(ctx context.Context, out Output) (*Result, error) {
	conv := in.convertOpt()
	conv.ReadPrevious = noted(conv.ReadPrevious, in.progress.ch)
	// Names what only a builder's stage can hold (Image.Host is nil then).
	conv.Stager = HostStager{}
	switch {
	case len(conv.TargetPlatforms) > 0:
	case out.Platform != nil:
		p, err := out.Platform(ctx)
		if err != nil {
			return nil, err
		}
		conv.BuildPlatform = p
	default:
		// The platform a builder on this host would build for.
		p := platforms.DefaultSpec()
		p.OS = "linux"
		conv.BuildPlatform = platforms.Normalize(p)
	}
	res, err := manifest2llb.Convert(ctx, in.conv, conv)
	if err != nil {
		return nil, in.located(err)
	}
	images := make([]hostimage.Platform, len(res.Images))
	for i, img := range res.Images {
		if img.Host == nil {
			return nil, errNeedsBuilder
		}
		config, err := json.Marshal(img.Config)
		if err != nil {
			return nil, err
		}
		images[i] = hostimage.Platform{Platform: img.Platform, Config: config, Epoch: img.Epoch}
		for _, l := range img.Host.Layers {
			images[i].Layers = append(images[i].Layers, hostimage.Layer{Blob: l.Blob, DiffID: l.DiffID})
		}
		if img.Host.Customisation != nil {
			var buf bytes.Buffer
			if err := layertar.WriteEntries(ctx, &buf, img.Host.Customisation, img.Epoch); err != nil {
				return nil, fmt.Errorf("customisation layer: %w", err)
			}
			desc := in.layers.AddData(buf.Bytes())
			images[i].Layers = append(images[i].Layers, hostimage.Layer{Blob: desc, DiffID: desc.Digest})
		}
	}
	for _, e := range out.Exports {
		if _, uncompressedOnly, _ := hostCompression(e); uncompressedOnly && anyCompressed(images) {
			return nil, errNeedsBuilder // a builder decompresses a previous image's blobs
		}
	}
	blobs, err := newHostBlobs(in.layers, in.gzip)
	if err != nil {
		return nil, err
	}
	defer blobs.Close()
	result := &Result{Metadata: map[string]any{}}
	for _, e := range out.Exports {
		done := in.progress.step(ctx, exportStepName(e))
		written, err := blobs.export(ctx, images, e)
		done(err, blobs.note())
		if err != nil {
			return nil, err
		}
		result.ImageID = written.Config.String()
		result.Metadata[exptypes.ExporterImageDigestKey] = written.Root.Digest.String()
		if written.Config != "" {
			result.Metadata[exptypes.ExporterImageConfigDigestKey] = written.Config.String()
		}
		desc, err := json.Marshal(written.Root)
		if err != nil {
			return nil, err
		}
		result.Metadata[exptypes.ExporterImageDescriptorKey] = base64.StdEncoding.EncodeToString(desc)
		if names := e.Attrs["name"]; names != "" {
			result.Metadata[exptypes.ExporterImageNameKey] = names
		}
	}
	return result, nil
}

// anyCompressed reports whether a layer of images is a compressed blob (a
// previous image's).
func anyCompressed(images []hostimage.Platform) bool {
	for _, img := range images {
		for _, l := range img.Layers {
			if l.Blob.MediaType != ocispecs.MediaTypeImageLayer {
				return true
			}
		}
	}
	return false
}

// exportStepName names an export's step in the progress.
func exportStepName(e Export) string {
	if e.Push != nil {
		return fmt.Sprintf("[storepack] write the image on the host and push it to %s (no builder needed)", e.Attrs["name"])
	}
	if e.Load != nil {
		return "[storepack] write the image on the host and load it into the engine (no builder needed)"
	}
	return fmt.Sprintf("[storepack] write the image on the host to %s archive %s (no builder needed)", e.Type, e.Attrs["dest"])
}

// hostBlobs holds the blobs of images written on the host: the layer
// store's, the configs, manifests and indexes, and the layers compressed
// for an export into a temporary directory.
type hostBlobs struct {
	layers *layerstore.Store
	forms  *gzipForms // the gzip blobs the host's cache knows; nil: none
	dir    string

	mu      sync.Mutex
	data    map[digest.Digest][]byte
	files   map[digest.Digest]string              // compressed layers, in dir
	gzipped map[digest.Digest]ocispecs.Descriptor // a layer's uncompressed digest → its gzip blob
	// pending are the gzip blobs known from the cache and not written yet,
	// by digest: each is written when read (a blob the registry holds is
	// never read).
	pending  map[digest.Digest]ocispecs.Descriptor // gzip blob → its layer's uncompressed blob
	compress singleflight.Group
	// gzipped now, known from the cache, and pending ones written when read
	gzips gzipCounts
	// held: layers a load left out of its archive, the engine holding them
	held int
}

// gzipCounts are the layers an export gzipped, for its progress.
type gzipCounts struct {
	now, known int
	read       atomic.Int32
}

var _ content.InfoReaderProvider = (*hostBlobs)(nil)

func newHostBlobs(layers *layerstore.Store, forms *gzipForms) (*hostBlobs, error) {
	dir, err := os.MkdirTemp("", "storepack-blobs-")
	if err != nil {
		return nil, err
	}
	return &hostBlobs{layers: layers, forms: forms, dir: dir, data: map[digest.Digest][]byte{}, files: map[digest.Digest]string{}, gzipped: map[digest.Digest]ocispecs.Descriptor{}, pending: map[digest.Digest]ocispecs.Descriptor{}}, nil
}

// note says, for the progress, how the layers were gzipped and which a
// load left to the engine.
func (b *hostBlobs) note() string {
	var notes []string
	if b.gzips.now != 0 || b.gzips.known != 0 {
		notes = append(notes, fmt.Sprintf("%d layers gzipped on the host, %d gzip blobs known from the host's cache of layer digests (%d of them written, for a destination that lacked them)", b.gzips.now, b.gzips.known, b.gzips.read.Load()))
	}
	if b.held != 0 {
		notes = append(notes, fmt.Sprintf("%d layers held by the engine already, not sent", b.held))
	}
	return strings.Join(notes, "; ")
}

// Close removes the compressed layers.
func (b *hostBlobs) Close() error { return os.RemoveAll(b.dir) }

// export writes images as e says and returns what it wrote.
func (b *hostBlobs) export(ctx context.Context, images []hostimage.Platform, e Export) (*hostimage.Image, error) {
	gzipped, _, _ := hostCompression(e)
	if gzipped {
		var err error
		// A push reads only the blobs the registry lacks; an archive or a
		// load reads every one, best compressed side by side beforehand.
		if images, err = b.gzipLayers(ctx, images, e.Push != nil); err != nil {
			return nil, err
		}
	}
	img, err := hostimage.Write(ctx, images)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	for d, data := range img.Blobs {
		b.data[d] = data
	}
	b.mu.Unlock()
	names, err := tagNames(e.Attrs["name"])
	if err != nil {
		return nil, err
	}
	if e.Push != nil {
		for _, name := range names {
			if err := e.Push(ctx, name, img.Root, b); err != nil {
				return nil, err
			}
		}
		return img, nil
	}
	if e.Load != nil {
		if err := b.load(ctx, img, images, names, e); err != nil {
			return nil, err
		}
		return img, nil
	}
	w, commit, err := openDest(e.Attrs["dest"])
	if err != nil {
		return nil, err
	}
	err = writeImageArchive(ctx, b, img.Root, names, e.Type, ctxWriter{ctx, w})
	if cerr := commit(err); err == nil {
		err = cerr
	}
	return img, err
}

// tagNames are the image names of an export's name attribute, tagged
// (":latest" where none is given), as BuildKit's archive exporters name
// them.
func tagNames(attr string) ([]string, error) {
	if attr == "" {
		return nil, nil
	}
	var names []string
	for _, n := range strings.Split(attr, ",") {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return nil, fmt.Errorf("image name %s: %w", n, err)
		}
		names = append(names, reference.TagNameOnly(named).String())
	}
	return names, nil
}

// gzipLayers returns images with every uncompressed layer gzipped (as
// BuildKit's gzip compression writes it), each written once into the
// temporary directory, now or, when lazy, when read if the host's cache
// knows its gzip blob; other blobs stay as they are.
func (b *hostBlobs) gzipLayers(ctx context.Context, images []hostimage.Platform, lazy bool) ([]hostimage.Platform, error) {
	var todo []ocispecs.Descriptor
	seen := map[digest.Digest]bool{}
	for _, img := range images {
		for _, l := range img.Layers {
			if l.Blob.MediaType != ocispecs.MediaTypeImageLayer || seen[l.Blob.Digest] {
				continue
			}
			seen[l.Blob.Digest] = true
			b.mu.Lock()
			_, done := b.gzipped[l.Blob.Digest]
			b.mu.Unlock()
			if done {
				continue
			}
			if gz, ok := b.forms.known(l.Blob.Digest); ok && lazy {
				b.gzips.known++
				b.mu.Lock()
				b.gzipped[l.Blob.Digest] = gz
				b.pending[gz.Digest] = l.Blob
				b.mu.Unlock()
				continue
			}
			todo = append(todo, l.Blob)
		}
	}
	b.gzips.now += len(todo)
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for _, desc := range todo {
		eg.Go(func() error {
			gz, file, err := b.writeGzip(ctx, desc)
			if err != nil {
				return err
			}
			b.forms.remember(desc.Digest, gz)
			b.mu.Lock()
			defer b.mu.Unlock()
			b.gzipped[desc.Digest] = gz
			b.files[gz.Digest] = file
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	out := make([]hostimage.Platform, len(images))
	for i, img := range images {
		out[i] = img
		out[i].Layers = make([]hostimage.Layer, len(img.Layers))
		for j, l := range img.Layers {
			if gz, ok := b.gzipped[l.Blob.Digest]; ok && l.Blob.MediaType == ocispecs.MediaTypeImageLayer {
				l.Blob = gz
			}
			out[i].Layers[j] = l
		}
	}
	return out, nil
}

// writePending writes the pending gzip blob gz, once however many read it,
// and checks that it is the blob the cache said: one that is not is
// forgotten, and the push fails.
func (b *hostBlobs) writePending(ctx context.Context, gz, layer ocispecs.Descriptor) (string, error) {
	file, err, _ := b.compress.Do(gz.Digest.String(), func() (any, error) {
		b.mu.Lock()
		file, done := b.files[gz.Digest]
		b.mu.Unlock()
		if done {
			return file, nil
		}
		written, file, err := b.writeGzip(ctx, layer)
		if err != nil {
			return "", err
		}
		if written.Digest != gz.Digest || written.Size != gz.Size {
			os.Remove(file)
			b.forms.remember(layer.Digest, ocispecs.Descriptor{})
			return "", fmt.Errorf("layer %s: the host's cache of layer digests says its gzip blob is %s (%d bytes), but it compresses to %s (%d bytes); the entry is removed, build again", layer.Digest, gz.Digest, gz.Size, written.Digest, written.Size)
		}
		b.gzips.read.Add(1)
		b.mu.Lock()
		defer b.mu.Unlock()
		b.files[gz.Digest] = file
		return file, nil
	})
	if err != nil {
		return "", err
	}
	return file.(string), nil
}

// writeGzip compresses the uncompressed layer desc into a file of the
// temporary directory.
func (b *hostBlobs) writeGzip(ctx context.Context, desc ocispecs.Descriptor) (gz ocispecs.Descriptor, file string, err error) {
	ra, err := b.layers.ReaderAt(ctx, desc)
	if err != nil {
		return gz, "", err
	}
	defer ra.Close()
	f, err := os.CreateTemp(b.dir, "layer-")
	if err != nil {
		return gz, "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	h := sha256.New()
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, h), gzip.DefaultCompression)
	if err != nil {
		return gz, "", err
	}
	if _, err := io.Copy(ctxWriter{ctx, zw}, content.NewReader(ra)); err != nil {
		return gz, "", err
	}
	if err := zw.Close(); err != nil {
		return gz, "", err
	}
	fi, err := f.Stat()
	if err != nil {
		return gz, "", err
	}
	gz = ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), Size: fi.Size()}
	return gz, f.Name(), nil
}

func (b *hostBlobs) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	b.mu.Lock()
	data, isData := b.data[d]
	file, isFile := b.files[d]
	layer, isPending := b.pending[d]
	gz := b.gzipped[layer.Digest]
	b.mu.Unlock()
	switch {
	case isData:
		return content.Info{Digest: d, Size: int64(len(data))}, nil
	case isPending:
		return content.Info{Digest: d, Size: gz.Size}, nil
	case isFile:
		fi, err := os.Stat(file)
		if err != nil {
			return content.Info{}, err
		}
		return content.Info{Digest: d, Size: fi.Size()}, nil
	}
	return b.layers.Info(ctx, d)
}

func (b *hostBlobs) ReaderAt(ctx context.Context, desc ocispecs.Descriptor) (content.ReaderAt, error) {
	b.mu.Lock()
	data, isData := b.data[desc.Digest]
	file, isFile := b.files[desc.Digest]
	layer, isPending := b.pending[desc.Digest]
	gz := b.gzipped[layer.Digest]
	b.mu.Unlock()
	if isPending && !isFile {
		var err error
		if file, err = b.writePending(ctx, gz, layer); err != nil {
			return nil, err
		}
		isFile = true
	}
	switch {
	case isData:
		return readerAt{bytes.NewReader(data)}, nil
	case isFile:
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		return fileReaderAt{File: f, size: fi.Size()}, nil
	}
	ra, err := b.layers.ReaderAt(ctx, desc)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return ra, err
}

// ctxWriter stops writing once ctx ends: the layers written on the host
// are streamed from the store whatever the build's context, so an
// interrupted build ends where it writes.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

type readerAt struct{ *bytes.Reader }

func (readerAt) Close() error { return nil }

type fileReaderAt struct {
	*os.File
	size int64
}

func (f fileReaderAt) Size() int64 { return f.size }

// writeImageArchive writes the image root names as BuildKit's exporter of
// variant (oci, docker) writes its archive.
func writeImageArchive(ctx context.Context, store content.InfoReaderProvider, root ocispecs.Descriptor, names []string, variant string, w io.Writer, extra ...archive.ExportOpt) error {
	opts := append([]archive.ExportOpt{archive.WithManifest(root, names...)}, extra...)
	if variant == "oci" {
		opts = append(opts, archive.WithAllPlatforms(), archive.WithSkipDockerManifest())
	}
	return archive.Export(ctx, store, w, opts...)
}

// load streams img to e.Load as a docker archive, without the layers the
// engine holds (e.EngineLayers). Should the engine refuse that archive (an
// image it held them for removed meanwhile), it gets every layer.
func (b *hostBlobs) load(ctx context.Context, img *hostimage.Image, images []hostimage.Platform, names []string, e Export) error {
	send := func(opts ...archive.ExportOpt) error {
		r, w := io.Pipe()
		go func() {
			w.CloseWithError(writeImageArchive(ctx, b, img.Root, names, "docker", ctxWriter{ctx, w}, opts...))
		}()
		err := e.Load(ctx, r)
		r.CloseWithError(err)
		return err
	}
	var err error
	if e.EngineLayers != nil {
		var stacks [][]digest.Digest
		if stacks, err = e.EngineLayers(ctx); err != nil {
			return err
		}
		held := heldLayers(images, stacks)
		b.held = len(held)
		err = send(archive.WithBlobFilter(func(desc ocispecs.Descriptor) bool { return !held[desc.Digest] }))
		if err == nil || len(held) == 0 || ctx.Err() != nil {
			return wrapLoadErr(err)
		}
		b.held = 0
	}
	return wrapLoadErr(send())
}

func wrapLoadErr(err error) error {
	if err != nil {
		return fmt.Errorf("load into the engine: %w", err)
	}
	return nil
}

// heldLayers is the set of layer blobs of images that an engine holding
// the layer stacks held need not be sent: each layer up to the first whose
// stack (it and every layer below it) none of held has, as a load into a
// classic image store looks a layer up by that stack's chain ID.
func heldLayers(images []hostimage.Platform, held [][]digest.Digest) map[digest.Digest]bool {
	skip := map[digest.Digest]bool{}
	for _, img := range images {
		depth := 0
		for _, stack := range held {
			n := 0
			for n < len(stack) && n < len(img.Layers) && stack[n] == img.Layers[n].DiffID {
				n++
			}
			depth = max(depth, n)
		}
		for _, l := range img.Layers[:depth] {
			skip[l.Blob.Digest] = true
		}
	}
	return skip
}
