package version

import (
	"runtime/debug"
	"testing"
)

func TestString(t *testing.T) {
	oldV, oldR, oldRead := Version, Revision, readBuildInfo
	t.Cleanup(func() { Version, Revision, readBuildInfo = oldV, oldR, oldRead })

	buildInfo := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/storepack/storepack", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name              string
		version, revision string
		info              *debug.BuildInfo
		want              string
	}{
		{"linker flags win", "v1.2.3", "deadbeef", buildInfo, "storepack v1.2.3 deadbeef"},
		{"build info fallback", "dev", "", buildInfo, "storepack v0.3.0 0123abcd.m"},
		{"nothing known", "dev", "", nil, "storepack dev unknown"},
		{"devel main module", "dev", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "storepack dev unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Version, Revision = tc.version, tc.revision
			readBuildInfo = func() (*debug.BuildInfo, bool) { return tc.info, tc.info != nil }
			if got := String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}
