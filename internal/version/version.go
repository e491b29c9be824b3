// Package version holds the build-time identity of storepack.
//
// Version and Revision are meant to be set by the linker, for example:
//
//	go build -ldflags "-X github.com/storepack/storepack/internal/version.Version=v0.1.0 \
//	  -X github.com/storepack/storepack/internal/version.Revision=$(git rev-parse HEAD)" \
//	  ./cmd/docker-storepack
//
// When they are not set, the values recorded by the Go toolchain in the
// binary's build information are used where available.
package version

import (
	"runtime/debug"
	"strings"
)

// Version is the storepack release version. Overridden at link time.
var Version = "dev"

// Revision is the source control revision storepack was built from.
// Overridden at link time.
var Revision = ""

// unknownRevision is reported when no revision is known.
const unknownRevision = "unknown"

// readBuildInfo is a seam for tests.
var readBuildInfo = debug.ReadBuildInfo

// Get returns the effective version and revision. Values set at link time
// take precedence; otherwise the module version (for `go install
// module@version` builds) and VCS revision recorded by the Go toolchain
// are used. The revision is "unknown" when it cannot be determined.
func Get() (version, revision string) {
	version, revision = Version, Revision
	if version != "dev" && revision != "" {
		return version, revision
	}
	if bi, ok := readBuildInfo(); ok {
		if version == "dev" {
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				version = v
			}
		}
		if revision == "" {
			var modified bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					revision = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if revision != "" && modified {
				revision += ".m"
			}
		}
	}
	if revision == "" {
		revision = unknownRevision
	}
	return version, revision
}

// String returns a one-line description: "storepack <version> <revision>".
func String() string {
	v, r := Get()
	return strings.Join([]string{"storepack", v, r}, " ")
}
