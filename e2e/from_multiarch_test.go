//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// multiarchBase pushes a busybox image for the four platforms of systems,
// each platform's from Debian's busybox-static of its architecture (the
// test bed's), with its applets installed by the platform's own busybox
// under qemu, and returns its reference.
func multiarchBase(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("STOREPACK_CACHE")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "storepack")
	}
	dir := t.TempDir()
	for goarch, debarch := range map[string]string{"amd64": "amd64", "386": "i386", "arm": "armhf", "mips64le": "mips64el"} {
		bin := filepath.Join(cache, "busybox", debarch, "bin", "busybox")
		if debarch == "amd64" {
			bin = "/bin/busybox" // the test bed's busybox-static
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatalf("busybox for %s: %v (hack/testbed.sh install fetches it)", debarch, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "busybox-"+goarch), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, dir, "Dockerfile", "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n")
	ref := bed.registry + "/storepack-e2e/multibase:1"
	if r := buildxBuild(t, "--platform", strings.Join(systemPlatforms(), ","), "-t", ref, "--push", dir); r.err != nil {
		t.Fatalf("the multi-platform base image:\n%s", r)
	}
	return ref
}

// TestFromMultiArch builds one manifest for four platforms on a
// multi-platform base with a RUN: each platform gets its own base, and its
// RUN runs under that platform's shell (qemu where foreign).
func TestFromMultiArch(t *testing.T) {
	installPlugin(t)
	base := multiarchBase(t)
	dir := multiarchClosures(t, "from")
	// The machine as the RUN's shell sees it, and the ELF class (32 or 64
	// bits) of the base's busybox.
	df := multiarchManifest(t, dir, "FROM "+base, `RUN uname -m > /arch && head -c 5 /bin/busybox | tail -c 1 | od -An -tu1 | tr -d ' ' >> /arch`)
	ref := bed.registry + "/storepack-e2e/from-multi:1"
	mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "-f", df, "--platform", strings.Join(systemPlatforms(), ","), "-t", ref, "--push", dir)
	// i386 runs natively on this x86_64 kernel, which uname reports.
	for platform, arch := range map[string]string{"linux/amd64": "x86_64\n2", "linux/386": "x86_64\n1", "linux/arm/v7": "armv7l\n1", "linux/mips64le": "mips64\n2"} {
		t.Run(platform, func(t *testing.T) {
			must(t, nil, bed.docker, "pull", "--platform", platform, ref)
			if out := strings.TrimSpace(stdoutOf(t, bed.docker, "run", "--rm", "--platform", platform, ref, "cat", "/arch")); out != arch {
				t.Errorf("/arch of %s holds %q, want %q", platform, out, arch)
			}
			cmd(nil, bed.docker, "rmi", "-f", ref)
		})
	}
}
