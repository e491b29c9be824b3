package cliplugin

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

	"github.com/storepack/storepack/cliplugin/engineload"
	"github.com/storepack/storepack/cliplugin/hostbuild"
)

// containerdSnapshotter is the driver type an engine reports (docker info's
// DriverStatus) when it keeps its images in containerd's image store.
const containerdSnapshotter = "io.containerd.snapshotter.v1"

// loadExport is the docker archive that --load gives the engine under
// names: uncompressed (the engine reads it without decompressing), leaving
// out the layers the classic image store holds already; but gzip on the
// containerd image store (containerd: the engine keeps its images there),
// which keeps the archive's blobs as they are and would push them
// uncompressed (NixOS/nix#15246), and where docker build compresses its
// layers.
func loadExport(engine client.APIClient, names string, containerd bool) hostbuild.Export {
	e := hostbuild.Export{Type: "docker", Attrs: map[string]string{"name": names}, Load: func(ctx context.Context, r io.Reader) error {
		return engineload.Archive(ctx, engine, r, io.Discard)
	}}
	if containerd {
		e.Attrs["compression"], e.Attrs["force-compression"] = "gzip", "true"
	} else {
		e.EngineLayers = engineLayers(engine, names)
	}
	return e
}

// engineBuilderExport is the export of the engine's own builder, which
// stores the image under names itself. On the classic image store too: a
// docker load pays the engine's unpacking once per layer whatever brings the
// archive, so an image written on the host and loaded can only be as fast as
// a load of its file, where the builder's Chain was measured faster cold
// (docs/performance.md, "Docker 20.10: the engine's cost per layer").
func engineBuilderExport(names string) hostbuild.Export {
	return hostbuild.Export{Type: "moby", Attrs: map[string]string{"name": names}}
}

// engineLayers gives the layers (diffIDs, bottom up) of the images the
// engine holds under names, which a load need not send.
func engineLayers(engine client.APIClient, names string) func(context.Context) ([][]digest.Digest, error) {
	return func(ctx context.Context) ([][]digest.Digest, error) {
		var stacks [][]digest.Digest
		for _, name := range strings.Split(names, ",") {
			if name == "" {
				continue
			}
			img, err := engine.ImageInspect(ctx, name)
			if cerrdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("the engine's image %s: %w", name, err)
			}
			var stack []digest.Digest
			for _, l := range img.RootFS.Layers {
				d, err := digest.Parse(l)
				if err != nil {
					return nil, fmt.Errorf("the engine's image %s: layer %q: %w", name, l, err)
				}
				stack = append(stack, d)
			}
			stacks = append(stacks, stack)
		}
		return stacks, nil
	}
}

// engineContainerdStore asks the engine whether it keeps its images in
// containerd's image store.
func engineContainerdStore(ctx context.Context, engine client.APIClient) (bool, error) {
	info, err := engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, fmt.Errorf("--load: cannot reach the docker engine: %w", err)
	}
	return containerdImageStore(info.Info), nil
}

// containerdImageStore tells whether the engine of info keeps its images in
// containerd's image store.
func containerdImageStore(info system.Info) bool {
	return slices.Contains(info.DriverStatus, [2]string{"driver-type", containerdSnapshotter})
}
