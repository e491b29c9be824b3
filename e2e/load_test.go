//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestLoad loads one four-platform OCI archive, built once through
// buildkitd by the plugin, into each engine of the bed: the engine's
// platform by default, another with --platform (run under qemu), from
// standard input from an OCI layout directory and from docker save's
// archive; bad input loads and tags nothing.
func TestLoad(t *testing.T) {
	installPlugin(t)
	dir := multiarchClosures(t, "load")
	platformList := systemPlatforms()
	mf := multiarchManifest(t, dir, "LINK /bin -> bin", `ENTRYPOINT ["/bin/hello"]`)
	const archiveName = "storepack-e2e/load:archive"
	oci := filepath.Join(t.TempDir(), "multi.tar")
	mustPluginEnv(t, buildkitEnv, "build", "-q", "-f", mf, "--platform", strings.Join(platformList, ","),
		"-o", "type=oci,dest="+oci+",name="+archiveName, dir)
	if got := ociPlatforms(t, oci); !slices.Equal(got, sortedCopy(platformList)) {
		t.Fatalf("the archive has %v, want %v", got, platformList)
	}
	tags := []string{archiveName, "storepack-e2e/load:mips", "storepack-e2e/load:arm", "storepack-e2e/load:stdin", "storepack-e2e/load:dir", "storepack-e2e/load:saved"}
	runOnEngines(t, engineTest{"load", func(t *testing.T, e engine) { testLoadInto(t, e, oci, archiveName, tags) }})
}

func testLoadInto(t *testing.T, e engine, oci, archiveName string, tags []string) {
	// How the engine keeps an image of the archive's index (TestLoadKeepsIndex).
	kept := " alone: the engine's image store keeps one platform per image, not the index\n"
	if e.containerdStore() {
		kept = ", into the engine's image of its index\n"
	}
	t.Cleanup(func() { cmd(nil, bed.docker, append([]string{"rmi", "-f"}, tags...)...) })

	// First, while the engine holds no image of the archive, so that any
	// image a bad load left would show.
	t.Run("bad input", func(t *testing.T) {
		tmp := t.TempDir()
		truncated := writeFile(t, tmp, "truncated.tar", readFile(t, oci)[:fileSize(t, oci)/2])
		corrupt := writeFile(t, tmp, "corrupt-layer.tar", string(corruptLayer(t, oci, "linux/amd64")))
		text := writeFile(t, tmp, "notes.txt", "not an image\n")
		noLayout := t.TempDir()
		missing := filepath.Join(tmp, "missing.tar")
		const bad = "storepack-e2e/load:bad"
		for _, tc := range []struct {
			name  string
			stdin io.Reader
			args  []string
			want  string
		}{
			{"truncated archive", nil, []string{truncated}, truncated + ": not a docker or OCI archive"},
			{"corrupt layer", nil, []string{corrupt}, corrupt + ": the linux/amd64 image lacks blob sha256:"},
			{"no image for the platform", nil, []string{"--platform", "linux/arm64", oci},
				oci + ": no image for linux/arm64 (it has linux/386, linux/amd64, linux/arm/v7, linux/mips64le)"},
			{"not an archive", nil, []string{text}, text + ": not a docker or OCI archive"},
			{"directory, not a layout", nil, []string{noLayout}, noLayout + ": a directory, but not an OCI layout"},
			{"no such file", nil, []string{missing}, missing},
			{"standard input, not an archive", strings.NewReader("not an image\n"), []string{"-"}, "standard input: not a docker or OCI archive"},
			{"digest for a name", nil, []string{"-t", "storepack-e2e/load@sha256:" + strings.Repeat("0", 64), oci}, "not a digest"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := imageIDs(t)
				args := tc.args
				if !slices.Contains(args, "-t") {
					args = append([]string{"-t", bad}, args...)
				}
				stdout, stderr, err := runLoad(t, tc.stdin, args...)
				if err == nil {
					t.Errorf("load succeeded:\n%s%s", stdout, stderr)
				}
				if lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); len(lines) != 1 || !strings.Contains(stderr, tc.want) {
					t.Errorf("stderr %q, want one line with %q", stderr, tc.want)
				}
				if after := imageIDs(t); !slices.Equal(before, after) {
					t.Errorf("the engine's images changed:\nbefore %v\nafter  %v", before, after)
				}
				checkNotTagged(t, bad)
			})
		}
	})

	t.Run("engine platform, archive's name", func(t *testing.T) {
		stdout, stderr := loadOK(t, nil, oci)
		if want := "Loaded image: " + archiveName + "\n"; stdout != want {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
		if want := "Loading the linux/amd64 image of " + oci + kept; stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
		checkLoadedOn(t, e, archiveName, "amd64", "")
	})
	t.Run("mips64le under qemu", func(t *testing.T) {
		stdout, _ := loadOK(t, nil, "--platform", "linux/mips64le", "-t", tags[1], oci)
		// -t replaces the archive's name.
		if want := "Loaded image: " + tags[1] + "\n"; stdout != want {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
		checkLoadedOn(t, e, tags[1], "mips64le", "")
	})
	t.Run("linux/arm is arm/v7", func(t *testing.T) {
		stdout, stderr := loadOK(t, nil, "-q", "--platform", "linux/arm", "-t", tags[2], oci)
		if want := "Loaded image: " + tags[2] + "\n"; stdout != want || stderr != "" {
			t.Errorf("-q: stdout %q, stderr %q; want %q alone", stdout, stderr, want)
		}
		checkLoadedOn(t, e, tags[2], "arm", "v7")
	})
	t.Run("standard input, compressed", func(t *testing.T) {
		_, stderr := loadOK(t, bytes.NewReader(gzipFile(t, oci)), "-t", tags[3], "-")
		if want := "Loading the linux/amd64 image of standard input" + kept; stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
		checkLoadedOn(t, e, tags[3], "amd64", "")
	})
	t.Run("OCI layout directory", func(t *testing.T) {
		layout := untar(t, oci)
		loadOK(t, nil, "--platform", "linux/386", "-t", tags[4], layout)
		checkLoadedOn(t, e, tags[4], "386", "")
	})
	t.Run("docker archive", func(t *testing.T) {
		saved := filepath.Join(t.TempDir(), "saved.tar")
		must(t, nil, bed.docker, "save", "-o", saved, tags[1])
		loadOK(t, nil, "--platform", "linux/mips64le", "-t", tags[5], saved)
		checkLoadedOn(t, e, tags[5], "mips64le", "")
	})
}

// runLoad runs `docker storepack load ARGS` with TMPDIR, where the plugin
// keeps its content store, pointed at an empty directory, and checks that
// the plugin left it empty.
func runLoad(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	tmp := t.TempDir()
	c := boundedCommand(commandBound, []string{"TMPDIR=" + tmp}, "docker", append([]string{"storepack", "load"}, args...)...)
	c.Stdin = stdin
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err = c.Run()
	if left, rerr := os.ReadDir(tmp); rerr != nil || len(left) != 0 {
		t.Errorf("the plugin left %v in TMPDIR (%v)", left, rerr)
	}
	return out.String(), errOut.String(), err
}

func loadOK(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := runLoad(t, stdin, args...)
	if err != nil {
		t.Fatalf("docker storepack load %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr, stdout)
	}
	return stdout, stderr
}

// checkLoaded checks the platform the engine recorded for ref, and that
// running it runs that architecture's program (under qemu where foreign).
func checkLoaded(t *testing.T, ref, arch, variant string) {
	t.Helper()
	got := strings.TrimSpace(must(t, nil, bed.docker, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}/{{.Variant}}", ref))
	if want := "linux/" + arch + "/" + variant; got != want {
		t.Errorf("%s is %s, want %s", ref, got, want)
	}
	// Docker's architecture names are Go's, which the program prints.
	if out := dockerRun(t, "--rm", ref); !strings.Contains(out, "arch="+arch+"\n") || !strings.Contains(out, greeting) {
		t.Errorf("docker run %s printed %q, want arch=%s and %q", ref, out, arch, greeting)
	}
}

// checkLoadedOn checks, as checkLoaded, that ref holds arch's image, where
// the engine keeps the index that ref names (the containerd image store)
// among its other platforms, which docker run --platform picks from.
func checkLoadedOn(t *testing.T, e engine, ref, arch, variant string) {
	t.Helper()
	if !e.containerdStore() {
		checkLoaded(t, ref, arch, variant)
		return
	}
	p := platforms.Format(ocispecs.Platform{OS: "linux", Architecture: arch, Variant: variant})
	if _, available := indexImages(t, e, ref); !slices.Contains(available, p) {
		t.Errorf("%s holds %v, not %s", ref, available, p)
	}
	if out := dockerRun(t, "--rm", "--platform", p, ref); !strings.Contains(out, "arch="+arch+"\n") || !strings.Contains(out, greeting) {
		t.Errorf("docker run --platform %s %s printed %q, want arch=%s and %q", p, ref, out, arch, greeting)
	}
}

// imageIDs lists every image of the engine, intermediate ones included.
func imageIDs(t *testing.T) []string {
	t.Helper()
	ids := strings.Fields(must(t, nil, bed.docker, "images", "-a", "-q", "--no-trunc"))
	slices.Sort(ids)
	return ids
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func gzipFile(t *testing.T, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(readFile(t, name))); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// untar unpacks an OCI archive into an OCI layout directory.
func untar(t *testing.T, file string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range readTar(t, file) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// corruptLayer copies an OCI archive with bytes of the largest layer of
// one platform's image changed, its size and the tar structure kept.
func corruptLayer(t *testing.T, file, platform string) []byte {
	t.Helper()
	blobs := readTar(t, file)
	var largest string
	for _, l := range platformManifest(t, blobs, platform).Layers {
		if name := blobPath(l.Digest.String()); largest == "" || len(blobs[name]) > len(blobs[largest]) {
			largest = name
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(blobs))
	for name := range blobs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		data := blobs[name]
		if name == largest {
			data = slices.Clone(data)
			for i := len(data) / 2; i < len(data)/2+64; i++ {
				data[i] ^= 0xff
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// platformManifest finds one platform's image manifest in an OCI archive.
func platformManifest(t *testing.T, blobs map[string][]byte, platform string) ocispecs.Manifest {
	t.Helper()
	indexes := [][]byte{blobs["index.json"]}
	for len(indexes) > 0 {
		var idx ocispecs.Index
		if err := json.Unmarshal(indexes[0], &idx); err != nil {
			t.Fatal(err)
		}
		indexes = indexes[1:]
		for _, d := range idx.Manifests {
			switch {
			case d.MediaType == ocispecs.MediaTypeImageIndex:
				indexes = append(indexes, blobs[blobPath(d.Digest.String())])
			case d.Platform != nil && platforms.Format(*d.Platform) == platform:
				var m ocispecs.Manifest
				if err := json.Unmarshal(blobs[blobPath(d.Digest.String())], &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
		}
	}
	t.Fatalf("no %s image in the archive", platform)
	return ocispecs.Manifest{}
}
