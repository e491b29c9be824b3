package hostbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	bkclient "github.com/moby/buildkit/client"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/go-csvvalue"

	"github.com/storepack/storepack/cliplugin/layerstore"
)

// Export is one destination of a build's result, as buildx's --output
// names it: type=oci|docker|tar|local|image|registry with its attributes.
type Export struct {
	Type  string
	Attrs map[string]string
	// Load receives a docker archive to put into an engine, as `docker
	// load` does: the builder's export of Type docker (no dest) streams one
	// to it. With Type moby (the engine's own builder, which stores the
	// image itself) it takes only an image written on the host.
	Load func(ctx context.Context, archive io.Reader) error
	// EngineLayers, with Load, gives the layers (diffIDs from the bottom
	// up) of images the engine holds: a layer whose whole stack up to it
	// is one of them is left out of the archive, for an engine whose load
	// then takes it from its own store, as the classic image store's does.
	EngineLayers func(ctx context.Context) ([][]digest.Digest, error)
	// Push, if set, pushes an image written on the host (Type image with
	// push=true) to its registry as ref, its blobs read from blobs.
	Push func(ctx context.Context, ref string, root ocispecs.Descriptor, blobs content.Provider) error
	// PushIndex, if set, pushes as ref one index of the images manifests,
	// which nodes of the builder pushed by digest to ref's repository
	// (Type image with push=true, built on several nodes).
	PushIndex func(ctx context.Context, ref string, manifests []ocispecs.Descriptor) (ocispecs.Descriptor, error)
}

// ParseExport reads an --output value: "type=oci,dest=out.tar",
// "type=registry", or a bare directory for type=local.
func ParseExport(spec string) (Export, error) {
	fields, err := csvvalue.Fields(spec, nil)
	if err != nil {
		return Export{}, fmt.Errorf("--output=%s: %w", spec, err)
	}
	e := Export{Attrs: map[string]string{}}
	if len(fields) == 1 && !strings.Contains(fields[0], "=") {
		e.Type, e.Attrs["dest"] = "local", fields[0]
		if fields[0] == "-" {
			e.Type = "tar"
		}
		return e, nil
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Export{}, fmt.Errorf("--output=%s: %q is not KEY=VALUE", spec, f)
		}
		if k == "type" {
			e.Type = v
			continue
		}
		e.Attrs[k] = v
	}
	switch e.Type {
	case "oci", "docker", "tar", "local", "image":
	case "registry":
		e.Type, e.Attrs["push"] = "image", "true"
	case "":
		return Export{}, fmt.Errorf("--output=%s: no type= (oci, docker, image, registry, local or tar)", spec)
	default:
		return Export{}, fmt.Errorf("--output=%s: unknown type %q (want oci, docker, image, registry, local or tar)", spec, e.Type)
	}
	if e.Type == "local" && e.Attrs["dest"] == "" {
		return Export{}, fmt.Errorf("--output=%s: type=local needs dest=DIRECTORY", spec)
	}
	return e, nil
}

// exportEntries turns exports into the solve's entries. finish ends what
// they started once the solve returns with the exporters' response, or
// err: it waits for loads into the engine, writes the archive the layers
// of which are on the host (layers, if not nil), closes files, and removes
// a file a failed build half wrote.
func exportEntries(ctx context.Context, exports []Export, layers *layerstore.Store) (entries []bkclient.ExportEntry, finish func(resp map[string]string, err error) error, err error) {
	var finishers []func(map[string]string, error) error
	finish = func(resp map[string]string, err error) error {
		var errs []error
		for _, f := range finishers {
			errs = append(errs, f(resp, err))
		}
		return errors.Join(errs...)
	}
	for _, e := range exports {
		entry := bkclient.ExportEntry{Type: e.Type, Attrs: compressionDefaults(e)}
		dest := e.Attrs["dest"]
		for k, v := range e.Attrs {
			if k != "dest" {
				entry.Attrs[k] = v
			}
		}
		switch {
		case e.Load != nil:
			r, w := io.Pipe()
			done := make(chan error, 1)
			go func() {
				err := e.Load(ctx, r)
				r.CloseWithError(err)
				done <- err
			}()
			entry.Output = func(map[string]string) (io.WriteCloser, error) { return w, nil }
			finishers = append(finishers, func(_ map[string]string, err error) error {
				w.CloseWithError(err)
				if lerr := <-done; lerr != nil && err == nil {
					return fmt.Errorf("load into the engine: %w", lerr)
				}
				return nil
			})
		case e.Type == "local":
			entry.OutputDir = dest
		case e.Type == "oci" || e.Type == "docker" || e.Type == "tar":
			if dest == "" {
				return nil, nil, fmt.Errorf("--output type=%s needs dest=FILE (or dest=- for standard output)", e.Type)
			}
			// The exporters' response describes one image: with another
			// export beside, the builder writes the archive itself.
			if e.Type == "tar" || layers == nil || len(exports) > 1 || entry.Attrs["tar"] == "false" {
				entry.Output = fileOutput(dest, &finishers)
				break
			}
			// The archive is written here: the builder sends what it
			// made, not the store layers, which are on the host.
			store, err := newArchiveStore(layers)
			if err != nil {
				return nil, nil, err
			}
			entry.OutputStore, entry.Attrs["tar"] = store, "false"
			variant := e.Type
			finishers = append(finishers, func(resp map[string]string, err error) error {
				defer store.Close()
				if err != nil {
					return nil
				}
				w, commit, err := openDest(dest)
				if err != nil {
					return err
				}
				werr := writeArchive(ctx, store, resp, variant, w)
				if cerr := commit(werr); werr == nil {
					werr = cerr
				}
				return werr
			})
		}
		entries = append(entries, entry)
	}
	return entries, finish, nil
}

// compressionDefaults are the attributes an export gets unless it sets
// them: layers written on the host reach the builder uncompressed, as
// BuildKit's differ writes them, and the builder keeps a layer's blob as it
// is unless forced. Images and archives are compressed as `docker buildx
// build` compresses its own layers (gzip), by the builder, so that they
// hold the same blobs; an archive loaded into the engine stays
// uncompressed, which the engine reads without decompressing. The engine's
// own exporter (moby) is told to gzip too: its containerd image store keeps
// the blobs it gets, and `docker push` would send them uncompressed (as
// NixOS/nix#15246 saw); its classic store keeps no blobs and ignores it.
func compressionDefaults(e Export) map[string]string {
	attrs := map[string]string{}
	switch {
	case e.Type == "local" || e.Type == "tar":
	case e.Load != nil:
		attrs["compression"] = "uncompressed"
	case e.Attrs["compression"] == "" && e.Attrs["force-compression"] == "":
		attrs["compression"], attrs["force-compression"] = "gzip", "true"
	}
	return attrs
}

// fileOutput writes an archive to dest ("-": standard output) through a
// temporary file renamed into place once the build succeeded.
func fileOutput(dest string, finishers *[]func(map[string]string, error) error) func(map[string]string) (io.WriteCloser, error) {
	return func(map[string]string) (io.WriteCloser, error) {
		w, commit, err := openDest(dest)
		if err != nil {
			return nil, err
		}
		*finishers = append(*finishers, func(_ map[string]string, err error) error { return commit(err) })
		return w, nil
	}
}

// openDest opens dest ("-": standard output) through a temporary file,
// which commit renames into place when err is nil, else removes; commit
// returns what renaming or removing failed with.
func openDest(dest string) (w io.WriteCloser, commit func(err error) error, err error) {
	if dest == "-" {
		return nopCloser{os.Stdout}, func(error) error { return nil }, nil
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*")
	if err != nil {
		return nil, nil, err
	}
	return f, func(err error) error {
		f.Close()
		if err != nil {
			return os.Remove(f.Name())
		}
		return os.Rename(f.Name(), dest)
	}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
