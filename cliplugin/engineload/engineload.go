// Package engineload puts images into a docker engine: a docker archive,
// an OCI archive or an OCI layout directory, one platform of it, converted
// to the docker archive that every engine loads (Docker 20.10's classic
// image store cannot load an OCI index), or, into an engine that keeps
// indexes, with the index it belongs to.
package engineload

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
)

// ImageLoader is what loading asks of the engine; client.APIClient has it.
type ImageLoader interface {
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error)
}

var _ ImageLoader = (client.APIClient)(nil)

// Archive loads a docker archive into the engine, as `docker load` does;
// the engine's messages ("Loaded image: …") go to out.
func Archive(ctx context.Context, engine ImageLoader, archive io.Reader, out io.Writer) error {
	res, err := engine.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer res.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(res, out, 0, false, nil); err != nil {
		return fmt.Errorf("the engine refused the image: %w", err)
	}
	return nil
}

// Options say which image of an archive to load, and as what.
type Options struct {
	Platform ocispecs.Platform // of an image of an index
	// Exact takes only Platform (normalised); otherwise the best image the
	// platform runs, as a pull picks one (amd64 runs 386, arm64 arm/v7).
	Exact bool
	Names []string // none: the archive's names for the image
	// IndexStore: the engine keeps an image index and whichever of its
	// images it holds (Docker's containerd image store), so an image of an
	// index is loaded with the index; otherwise it is loaded alone.
	IndexStore bool
	Out        io.Writer // the engine's messages
	// Progress, when not nil, is told which image is loaded once the
	// archive has been read and holds it (an error is then the only line).
	Progress io.Writer
}

// Load reads the archive or OCI layout at src ("-": in), picks the image
// of opt.Platform, and loads it into the engine. Nothing is loaded when
// src is not an archive, or holds no complete image for the platform.
func Load(ctx context.Context, engine ImageLoader, src string, in io.Reader, opt Options) error {
	match := platforms.Only(opt.Platform)
	if opt.Exact {
		match = platforms.OnlyStrict(opt.Platform)
	}
	a, err := Open(ctx, src, in, opt.Platform, match)
	if err != nil {
		return err
	}
	defer a.Close()
	store, img, name := a.Store, a.image, a.Name
	names := opt.Names
	if len(names) == 0 {
		names = img.names
	}
	// The export would also name the image after the index entry's own
	// annotation, which imageNames may have refused as no reference.
	desc := img.desc
	desc.Annotations = nil
	export := []archive.ExportOpt{archive.WithManifest(desc, names...)}
	how := ""
	switch {
	case img.index != nil && opt.IndexStore:
		// The whole index with this platform's blobs alone, loaded with
		// no platform named: the engine then records every image of the
		// index as the index's, so those of it that it already holds stay.
		// (Naming the platform, Docker 28 records that one alone, and its
		// next garbage collection drops the others.)
		index := *img.index
		index.Annotations = nil
		export = []archive.ExportOpt{archive.WithManifest(index, names...), archive.WithPlatform(platforms.OnlyStrict(img.platform)), archive.WithSkipDockerManifest()}
		how = ", into the engine's image of its index"
	case img.index != nil && img.indexPlatforms > 1:
		how = " alone: the engine's image store keeps one platform per image, not the index"
	}
	if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "Loading the %s image of %s%s\n", platforms.Format(img.platform), name, how)
	}
	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		err := archive.Export(ctx, store, pw, export...)
		pw.CloseWithError(err)
		exported <- err
	}()
	err = Archive(ctx, engine, pr, opt.Out)
	pr.CloseWithError(errEngineDone)
	// The export reads the store, which is removed on return; when it
	// failed, its error says why the engine got half an archive.
	if xerr := <-exported; xerr != nil && err != nil && !errors.Is(xerr, errEngineDone) {
		return fmt.Errorf("%s: %w", name, xerr)
	}
	return err
}

// ArchiveImage is the image of one platform of an archive, its blobs in a
// temporary content store until Close.
type ArchiveImage struct {
	Name     string              // the archive's, for errors ("standard input" for "-")
	Store    content.Store       // every blob of the archive
	Manifest ocispecs.Descriptor // the image's
	Platform ocispecs.Platform
	image    candidate
	dir      string
}

// Open reads the archive or OCI layout at src ("-": in) into a temporary
// content store and picks its image that match takes best for p, which
// must be complete.
func Open(ctx context.Context, src string, in io.Reader, p ocispecs.Platform, match platforms.MatchComparer) (*ArchiveImage, error) {
	r, closeSrc, err := open(src, in)
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	dir, err := os.MkdirTemp("", "storepack-load-")
	if err != nil {
		return nil, err
	}
	a := &ArchiveImage{Name: src, dir: dir}
	if src == "-" {
		a.Name = "standard input"
	}
	if err := a.read(ctx, r, p, match); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *ArchiveImage) read(ctx context.Context, r io.Reader, p ocispecs.Platform, match platforms.MatchComparer) error {
	var err error
	if a.Store, err = newStore(a.dir); err != nil {
		return err
	}
	index, err := archive.ImportIndex(ctx, a.Store, r)
	if err != nil {
		return fmt.Errorf("%s: not a docker or OCI archive: %w", a.Name, err)
	}
	if a.image, err = pick(ctx, a.Store, index, p, match); err != nil {
		return fmt.Errorf("%s: %w", a.Name, err)
	}
	// A blob missing from the store would break a load halfway through
	// the upload.
	if err := complete(ctx, a.Store, a.image); err != nil {
		return fmt.Errorf("%s: %w", a.Name, err)
	}
	a.Manifest, a.Platform = a.image.desc, a.image.platform
	return nil
}

// Close removes the archive's blobs.
func (a *ArchiveImage) Close() error { return os.RemoveAll(a.dir) }

// errEngineDone stops an export that the engine no longer reads.
var errEngineDone = errors.New("the engine stopped reading the image")

// newStore makes the temporary content store. containerd's local store
// warns, through the process's logger rather than a context's, that a file
// system lacks fs-verity (most do), which a store that lives for one load
// does not use; the logger's level is atomic, so raising it is race-free.
func newStore(dir string) (content.Store, error) {
	logger := log.L.Logger
	if level := logger.GetLevel(); level >= logrus.WarnLevel {
		logger.SetLevel(logrus.ErrorLevel)
		defer logger.SetLevel(level)
	}
	return local.NewStore(dir)
}

// open reads src: a file (compressed or not), a directory (an OCI layout,
// as a tar stream), or in for "-".
func open(src string, in io.Reader) (io.Reader, func(), error) {
	if src == "-" {
		r, err := compression.DecompressStream(in)
		if err != nil {
			return nil, nil, fmt.Errorf("standard input: %w", err)
		}
		return r, func() { r.Close() }, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		if _, err := os.Stat(src + "/" + ocispecs.ImageLayoutFile); err != nil {
			return nil, nil, fmt.Errorf("%s: a directory, but not an OCI layout (no %s)", src, ocispecs.ImageLayoutFile)
		}
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.AddFS(os.DirFS(src))
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, func() { pr.Close() }, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, nil, err
	}
	r, err := compression.DecompressStream(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	return r, func() { r.Close(); f.Close() }, nil
}

// candidate is an image of an archive.
type candidate struct {
	desc     ocispecs.Descriptor
	platform ocispecs.Platform
	names    []string
	// index is the image index that lists it, nil for an image that
	// index.json (or a docker archive's manifest.json) lists itself;
	// indexPlatforms counts the platforms of that index's images.
	index          *ocispecs.Descriptor
	indexPlatforms int
}

// maxDepth bounds nested indexes.
const maxDepth = 4

// pick returns the image of the index that matches p best.
func pick(ctx context.Context, store content.Store, index ocispecs.Descriptor, p ocispecs.Platform, match platforms.MatchComparer) (candidate, error) {
	var all []candidate
	if err := collect(ctx, store, index, nil, nil, 0, &all); err != nil {
		return candidate{}, err
	}
	var best *candidate
	var have []string
	for i, c := range all {
		if name := platforms.Format(c.platform); name != "unknown/unknown" && !slices.Contains(have, name) {
			have = append(have, name) // unknown/unknown: attestations
		}
		if match.Match(c.platform) && (best == nil || match.Less(c.platform, best.platform)) {
			best = &all[i]
		}
	}
	if best == nil {
		if len(have) == 0 {
			return candidate{}, errors.New("it holds no image")
		}
		slices.Sort(have)
		return candidate{}, fmt.Errorf("no image for %s (it has %s)", platforms.Format(p), strings.Join(have, ", "))
	}
	// An index lists an image once per name (a docker archive's RepoTags).
	img := *best
	img.names = nil
	var indexPlatforms []string
	for _, c := range all {
		if img.index != nil && c.index != nil && c.index.Digest == img.index.Digest {
			if name := platforms.Format(c.platform); name != "unknown/unknown" && !slices.Contains(indexPlatforms, name) {
				indexPlatforms = append(indexPlatforms, name)
			}
		}
		if c.desc.Digest == img.desc.Digest {
			for _, n := range c.names {
				if !slices.Contains(img.names, n) {
					img.names = append(img.names, n)
				}
			}
		}
	}
	img.indexPlatforms = len(indexPlatforms)
	return img, nil
}

// complete checks that the store holds every blob of img's image.
func complete(ctx context.Context, store content.Store, img candidate) error {
	lacks := func(d ocispecs.Descriptor) error {
		return fmt.Errorf("the %s image lacks blob %s: the archive is truncated or corrupt", platforms.Format(img.platform), d.Digest)
	}
	var m ocispecs.Manifest
	if err := readJSON(ctx, store, img.desc, &m); err != nil {
		if errdefs.IsNotFound(err) {
			return lacks(img.desc)
		}
		return err
	}
	for _, d := range append([]ocispecs.Descriptor{m.Config}, m.Layers...) {
		info, err := store.Info(ctx, d.Digest)
		if errdefs.IsNotFound(err) {
			return lacks(d)
		}
		if err != nil {
			return err
		}
		if info.Size != d.Size {
			return fmt.Errorf("blob %s has %d bytes, its manifest says %d: the archive is corrupt", d.Digest, info.Size, d.Size)
		}
	}
	return nil
}

// collect lists the images below desc, which index lists (nil: desc is
// the archive's index.json, or lists images that index.json lists); names
// are the index entries' names.
func collect(ctx context.Context, store content.Store, desc ocispecs.Descriptor, names []string, index *ocispecs.Descriptor, depth int, out *[]candidate) error {
	names = append(names, imageNames(desc.Annotations)...)
	switch {
	case images.IsManifestType(desc.MediaType):
		p := desc.Platform
		if p == nil {
			var m ocispecs.Manifest
			if err := readJSON(ctx, store, desc, &m); err != nil {
				return err
			}
			var config ocispecs.Image
			if err := readJSON(ctx, store, m.Config, &config); err != nil {
				return err
			}
			p = &config.Platform
		}
		*out = append(*out, candidate{desc: desc, platform: platforms.Normalize(*p), names: names, index: index})
		return nil
	case images.IsIndexType(desc.MediaType):
		if depth == maxDepth {
			return fmt.Errorf("more than %d nested indexes", maxDepth)
		}
		var list ocispecs.Index
		if err := readJSON(ctx, store, desc, &list); err != nil {
			return err
		}
		var parent *ocispecs.Descriptor
		if depth > 0 {
			parent = &desc
		}
		for _, m := range list.Manifests {
			if err := collect(ctx, store, m, slices.Clone(names), parent, depth+1, out); err != nil {
				return err
			}
		}
		return nil
	}
	return nil // neither image nor index: not an image
}

// imageNames are the image names an index entry's annotations give.
func imageNames(annotations map[string]string) []string {
	for _, key := range []string{images.AnnotationImageName, ocispecs.AnnotationRefName} {
		// An OCI layout's ref.name may be a tag alone ("1"), not a name.
		if v := annotations[key]; strings.ContainsAny(v, "/:") {
			if _, err := reference.ParseNormalizedNamed(v); err == nil {
				return []string{v}
			}
		}
	}
	return nil
}

func readJSON(ctx context.Context, store content.Store, desc ocispecs.Descriptor, v any) error {
	data, err := content.ReadBlob(ctx, store, desc)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("blob %s is missing, the archive is truncated or corrupt: %w", desc.Digest, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", desc.Digest, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", desc.Digest, err)
	}
	return nil
}
