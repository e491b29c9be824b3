package manifest2llb

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/llb/layerllb"
)

// CopySources is the shared key of the transfer of COPY sources: the
// builder's copy of them apart from the manifest's inputs'.
const CopySources = "storepack-copy-sources"

// copies resolves the COPY instructions against the build context: each
// source must be there (else an error at its line); a directory's contents
// go into the destination directory, a file into it when it ends with /,
// as in a Dockerfile.
// Owners named in --chown are looked up in the image's accounts, which
// load reads.
func (c *conversion) copies(ctx context.Context, spec *manifest.Spec, load func(context.Context) (accounts, error)) ([]layerllb.Copy, error) {
	if len(spec.Copies) == 0 {
		return nil, nil
	}
	var names []string
	var acc accounts
	loaded := false
	for _, cp := range spec.Copies {
		names = append(names, cp.Sources...)
		if cp.Chown != nil && cp.Chown.Named() && !loaded {
			var err error
			if acc, err = load(ctx); err != nil {
				return nil, parser.WithLocation(fmt.Errorf("COPY --chown: %w", err), cp.Location)
			}
			loaded = true
		}
	}
	st, files, err := c.in.source.ContextState(ctx, names)
	if err != nil {
		return nil, parser.WithLocation(err, spec.Copies[0].Location)
	}
	var copies []layerllb.Copy
	for _, cp := range spec.Copies {
		for _, src := range cp.Sources {
			isDir := src == "."
			if !isDir {
				e, err := files.Lookup(ctx, src)
				if err != nil {
					return nil, parser.WithLocation(fmt.Errorf("COPY %s: %w", src, err), cp.Location)
				}
				if e == nil {
					return nil, parser.WithLocation(fmt.Errorf("COPY %s: not in the build context", src), cp.Location)
				}
				isDir = e.Mode.IsDir()
			}
			dest := cp.Dest
			if !isDir && strings.HasSuffix(dest, "/") {
				dest += path.Base(src)
			}
			out := layerllb.Copy{From: st, Src: "/" + src, Dest: dest, Contents: isDir}
			if cp.Mode != nil {
				mode := os.FileMode(*cp.Mode)
				out.Mode = &mode
			}
			if cp.Chown != nil {
				if out.Owner, err = acc.owner(cp.Chown); err != nil {
					return nil, parser.WithLocation(fmt.Errorf("COPY --chown=%s: %w", chownFlag(cp.Chown), err), cp.Location)
				}
			}
			copies = append(copies, out)
		}
	}
	return copies, nil
}

// chownFlag is --chown's value as the manifest has it.
func chownFlag(ch *manifest.Chown) string {
	if ch.Group == "" {
		return ch.User
	}
	return ch.User + ":" + ch.Group
}
