//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testbedBusybox is the test bed's busybox of a Debian architecture:
// Debian's busybox-static, which hack/testbed.sh install unpacks.
func testbedBusybox(t *testing.T, debarch string) string {
	t.Helper()
	cache := os.Getenv("STOREPACK_CACHE")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "storepack")
	}
	bin := filepath.Join(cache, "busybox", debarch, "bin", "busybox")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("busybox for %s: %v (hack/testbed.sh install fetches it)", debarch, err)
	}
	return bin
}

// multiarchBase pushes a busybox image for the four platforms of systems,
// each platform's from Debian's busybox-static of its architecture (the
// test bed's), with its applets installed by the platform's own busybox
// under qemu, and returns its reference.
func multiarchBase(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range systems {
		data, err := os.ReadFile(testbedBusybox(t, s.debarch))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "busybox-"+s.goarch), data, 0o755); err != nil {
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
	for _, s := range systems {
		// The machine is the one this host's kernel shows a program of
		// that architecture: under qemu, the emulated one (i686 for
		// i386); run natively, the host's own (x86_64 for i386 too).
		machine := strings.TrimSpace(must(t, nil, testbedBusybox(t, s.debarch), "uname", "-m"))
		want := machine + "\n" + s.elfClass
		t.Run(s.platform, func(t *testing.T) {
			must(t, nil, bed.docker, "pull", "--platform", s.platform, ref)
			if out := strings.TrimSpace(dockerRun(t, "--rm", "--platform", s.platform, ref, "cat", "/arch")); out != want {
				t.Errorf("/arch of %s holds %q, want %q", s.platform, out, want)
			}
			cmd(nil, bed.docker, "rmi", "-f", ref)
		})
	}
}
