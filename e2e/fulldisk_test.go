//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// smallDisk mounts a tmpfs of size (mount's notation, such as 1m) for the
// test, unmounted at its end.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, nil, "mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir)
	t.Cleanup(func() { cmd(nil, "umount", dir) })
	return dir
}

// TestFullDisk: a disk that fills during a plugin's build on buildkitd,
// under its temporary files ($TMPDIR) or under the archive it writes, fails
// the build with an error that says so and leaves nothing there; a full
// disk under the host's cache of layer digests costs the build nothing
// but the cache, and leaves no damaged entry. The builder then builds the
// image of an untroubled build at once.
func TestFullDisk(t *testing.T) {
	// 256 MiB, about 1.5 MiB compressed: more than the small disks hold.
	c, df := bigBuild(t, 31)
	build := func(env []string, dest string) result {
		return cmd(append(env, buildkitEnv...), "docker", "storepack", "build", "--progress=plain", "--previous", "", "-f", df, "-o", "type=oci,dest="+dest, c.dir)
	}
	referenceFile := filepath.Join(t.TempDir(), "reference.tar")
	if r := build([]string{"XDG_CACHE_HOME=" + t.TempDir()}, referenceFile); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	reference := readArchive(t, referenceFile)

	for _, tc := range []struct {
		name string
		// dirs for $TMPDIR, $XDG_CACHE_HOME and the archive, one of them
		// on the small disk.
		dirs  func(full string) (tmp, cache, archive string)
		fails bool
	}{
		{"temporary files", func(full string) (string, string, string) { return full, t.TempDir(), t.TempDir() }, true},
		{"archive", func(full string) (string, string, string) { return t.TempDir(), t.TempDir(), full }, true},
		{"cache", func(full string) (string, string, string) { return t.TempDir(), full, t.TempDir() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := smallDisk(t, "1m")
			tmp, cache, archive := tc.dirs(full)
			if !tc.fails {
				// The cache's disk has no room left at all.
				cmd(nil, "dd", "if=/dev/zero", "of="+filepath.Join(full, "filler"), "bs=64k")
			}
			dest := filepath.Join(archive, "image.tar")
			r := build([]string{"TMPDIR=" + tmp, "XDG_CACHE_HOME=" + cache}, dest)
			switch {
			case tc.fails && r.err == nil:
				t.Fatalf("the build succeeded on a full disk:\n%s", r)
			case tc.fails && !strings.Contains(r.out, "no space left on device"):
				t.Errorf("the error does not say the disk is full:\n%s", r)
			case !tc.fails && r.err != nil:
				t.Fatalf("the build failed for want of room for its cache:\n%s", r)
			case !tc.fails:
				sameImage(t, reference, readArchive(t, dest))
			}
			var left []string
			filepath.WalkDir(full, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && d.Name() != "filler" && !strings.HasSuffix(p, ".json") {
					left = append(left, p)
				}
				return nil
			})
			if tc.fails {
				if _, err := os.Stat(dest); err == nil {
					left = append(left, dest)
				}
			}
			if len(left) > 0 {
				t.Errorf("left on the full disk: %v", left)
			}
			checkCacheEntries(t, cache)

			again := filepath.Join(t.TempDir(), "again.tar")
			if r := build([]string{"XDG_CACHE_HOME=" + t.TempDir()}, again); r.err != nil {
				t.Fatalf("the build after failed:\n%s", r)
			}
			if got := readArchive(t, again); !slices.Equal(got.diffIDs(), reference.diffIDs()) || got.configDigest != reference.configDigest {
				t.Errorf("the build after made another image")
			}
		})
	}
}
