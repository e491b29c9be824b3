package hostbuild

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/internal/version"
)

// InputKeyLabel is the label in which an image records the InputKey it was
// built from, so that `docker storepack run` can tell an image it need not
// build again.
const InputKeyLabel = "dev.storepack.inputs"

// InputKey identifies a build of opt for platform p by what it reads:
// storepack's version, the manifest, the build arguments and settings, and
// what the manifest names in the build context (its roots, resolved, and
// its GRAPH files). It reads no more than the manifest's inputs, not the
// closure: store paths do not change once they exist, so the same roots
// have the same closure. Errors located in the manifest name its file.
func InputKey(ctx context.Context, opt Options, p ocispecs.Platform) (key digest.Digest, err error) {
	defer func() { err = manifest.WithFileLine(opt.ManifestName, err) }()
	m, err := manifest.Parse(opt.Manifest)
	if err != nil {
		return "", err
	}
	spec, err := m.Expand(manifest.Options{BuildArgs: opt.BuildArgs})
	if err != nil {
		return "", err
	}
	in, err := inputs.Read(ctx, spec, inputs.HostSource{ContextDir: opt.ContextDir, Root: opt.StoreRoot})
	if err != nil {
		return "", err
	}
	v, _ := version.Get()
	var b strings.Builder
	fmt.Fprintf(&b, "storepack %q\nplatform %q\nstrategy %q\nmax-layers %d\nstore-root %q\ninputs %s\n",
		v, platforms.Format(platforms.Normalize(p)), opt.Strategy, opt.MaxLayers, opt.StoreRoot, in.Key())
	for _, set := range []struct {
		name string
		kv   map[string]string
	}{{"build-arg", opt.BuildArgs}, {"label", opt.Labels}} {
		for _, k := range slices.Sorted(maps.Keys(set.kv)) {
			fmt.Fprintf(&b, "%s %q=%q\n", set.name, k, set.kv[k])
		}
	}
	fmt.Fprintf(&b, "manifest %d\n%s", len(opt.Manifest), opt.Manifest)
	return digest.FromString(b.String()), nil
}
