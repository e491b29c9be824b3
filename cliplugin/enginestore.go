package cliplugin

import (
	"context"
	"fmt"
	"slices"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// containerdSnapshotter is the driver type an engine reports (docker info's
// DriverStatus) when it keeps its images in containerd's image store.
const containerdSnapshotter = "io.containerd.snapshotter.v1"

// loadAttrs are the attributes of the docker archive that --load gives the
// engine under names: uncompressed (the engine reads it without
// decompressing), but gzip on the containerd image store, which keeps the
// archive's blobs as they are and would push them uncompressed
// (NixOS/nix#15246), and where docker build compresses its layers.
func loadAttrs(ctx context.Context, engine client.APIClient, names string) (map[string]string, error) {
	containerd, err := engineContainerdStore(ctx, engine)
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{"name": names}
	if containerd {
		attrs["compression"], attrs["force-compression"] = "gzip", "true"
	}
	return attrs, nil
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
