package cliplugin

import (
	"testing"

	"github.com/moby/moby/api/types/system"
)

// TestContainerdImageStore reads the image store from docker info as
// Docker 28 reports it on each store, and as Docker 20.10 does.
func TestContainerdImageStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		info   system.Info
		wanted bool
	}{
		{"containerd store", system.Info{Driver: "overlayfs", DriverStatus: [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}}, true},
		{"classic overlay2", system.Info{Driver: "overlay2", DriverStatus: [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}}}, false},
		{"no status", system.Info{Driver: "vfs"}, false},
	} {
		if got := containerdImageStore(tc.info); got != tc.wanted {
			t.Errorf("%s: containerdImageStore = %v, want %v", tc.name, got, tc.wanted)
		}
	}
}
