//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storepack/storepack/store"
)

// How many builds of different closures run at once through each client:
// twenty each through the plugin and `docker buildx build` on one
// buildkitd (TestConcurrentBuilds), ten each through `docker build` and
// the plugin on Docker 20.10 (TestConcurrentEngineBuilds).
// STOREPACK_E2E_CONCURRENT_BUILDS sets another count for both.
const (
	concurrentDaemonBuilds = 20
	concurrentEngineBuilds = 10
)

// concurrentCount is n, or STOREPACK_E2E_CONCURRENT_BUILDS.
func concurrentCount(t *testing.T, n int) int {
	t.Helper()
	if v := os.Getenv("STOREPACK_E2E_CONCURRENT_BUILDS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			t.Fatalf("STOREPACK_E2E_CONCURRENT_BUILDS=%q: not a count", v)
		}
	}
	return n
}

// TestConcurrentBuilds: builds of different closures, each its own release
// of the test application (the other store paths shared), run at once on
// one buildkitd through the plugin and through `docker buildx build` with
// the frontend, each pushed and archived. Every image holds exactly its
// closure's paths with the fixed time, and a store path that every closure
// shares is one layer of the same digest in every image: the registry
// stores it once.
func TestConcurrentBuilds(t *testing.T) {
	installPlugin(t)
	n := concurrentCount(t, concurrentDaemonBuilds)
	repo := bed.registry + "/storepack-e2e/concurrent"
	type build struct {
		name    string
		c       closure
		oci     string
		argv    []string
		result  result
		tag     string
		through string
	}
	var builds []*build
	for i := range 2 * n {
		b := &build{c: nixClosure(t, "--argstr", "appVersion", fmt.Sprintf("concurrent-%d", i)), oci: filepath.Join(t.TempDir(), "image.tar")}
		df := writeFile(t, b.c.dir, "app.storepack", manifest("./result", "path-info.json", "LAYERS --strategy=per-path"))
		if i%2 == 0 {
			b.through, b.tag = "plugin", fmt.Sprintf("plugin-%d", i)
			b.argv = []string{"docker", "storepack", "build", "--progress=plain", "--previous", "", "-f", df, "-t", repo + ":" + b.tag, "--push", "-o", "type=oci,dest=" + b.oci, b.c.dir}
		} else {
			// gzip forced, as the plugin pushes: otherwise BuildKit pushes
			// a layer in whatever compression its cache holds it.
			b.through, b.tag = "buildx", fmt.Sprintf("buildx-%d", i)
			b.argv = []string{"docker", "buildx", "build", "--builder", os.Getenv("BUILDX_BUILDER"), "--progress=plain", "--provenance=false", "-f", df, "--build-context", "store=/nix/store",
				"-o", "type=image,name=" + repo + ":" + b.tag + ",push=true,compression=gzip,force-compression=true", "-o", "type=oci,dest=" + b.oci, b.c.dir}
		}
		builds = append(builds, b)
	}
	var wg sync.WaitGroup
	for _, b := range builds {
		wg.Go(func() {
			env := []string(nil)
			if b.through == "plugin" {
				env = append([]string{"XDG_CACHE_HOME=" + t.TempDir()}, buildkitEnv...)
			}
			b.result = cmd(env, b.argv[0], b.argv[1:]...)
		})
	}
	wg.Wait()

	// The layer of each shared store path, by digest, in every image.
	shared := map[store.Path]map[string][]string{}
	for _, b := range builds {
		if b.result.err != nil {
			t.Errorf("%s through the %s failed:\n%s", b.tag, b.through, b.result)
			continue
		}
		checkImage(t, readArchive(t, b.oci), b.c, time.Unix(1, 0))
		pushed := readImages(t, repo, b.tag)
		if len(pushed) != 1 {
			t.Errorf("%s: %d images in the registry", b.tag, len(pushed))
			continue
		}
		img := pushed[0]
		for i, l := range img.plan.Layers {
			if len(l.Paths) != 1 || l.Paths[0] == b.c.root {
				continue
			}
			p := l.Paths[0]
			if shared[p] == nil {
				shared[p] = map[string][]string{}
			}
			d := img.manifest.Layers[i].Digest.String()
			shared[p][d] = append(shared[p][d], b.tag)
		}
	}
	if len(shared) < 2 {
		t.Fatalf("%d store paths shared: too few to tell", len(shared))
	}
	for p, digests := range shared {
		if len(digests) != 1 {
			t.Errorf("%s is stored as %d blobs: %v", p, len(digests), digests)
		}
		for d, tags := range digests {
			if len(tags) != len(builds) {
				t.Errorf("%s: layer %s in %d images (%s), want all %d", p, d, len(tags), strings.Join(tags, ", "), len(builds))
			}
		}
	}
}

// TestConcurrentEngineBuilds: builds of different closures at once on
// Docker 20.10's builder, through `docker build` with the frontend image
// (the store in the main context) and through the plugin, each loaded into
// the engine: every image holds exactly its closure with the fixed time.
func TestConcurrentEngineBuilds(t *testing.T) {
	installPlugin(t)
	n := concurrentCount(t, concurrentEngineBuilds)
	type build struct {
		c      closure
		tag    string
		env    []string
		argv   []string
		result result
	}
	var builds []*build
	for i := range 2 * n {
		b := &build{c: nixClosure(t, "--argstr", "appVersion", fmt.Sprintf("engine-%d", i))}
		if i%2 == 0 {
			b.tag = fmt.Sprintf("storepack-e2e/concurrent-engine:docker-%d", i)
			df := writeFile(t, b.c.dir, "app.storepack", manifest(b.c.dir+"/result", b.c.dir+"/path-info.json"))
			b.env = []string{"DOCKER_BUILDKIT=1"}
			b.argv = []string{bed.docker, "build", "--progress=plain", "-f", df, "-t", b.tag, "/"}
		} else {
			b.tag = fmt.Sprintf("storepack-e2e/concurrent-engine:plugin-%d", i)
			df := writeFile(t, b.c.dir, "app.storepack", manifest("./result", "path-info.json"))
			b.env = append([]string{"XDG_CACHE_HOME=" + t.TempDir()}, engineEnv...)
			b.argv = []string{"docker", "storepack", "build", "--progress=plain", "--previous", "", "-f", df, "-t", b.tag, b.c.dir}
		}
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", b.tag) })
		builds = append(builds, b)
	}
	var wg sync.WaitGroup
	for _, b := range builds {
		wg.Go(func() { b.result = cmd(b.env, b.argv[0], b.argv[1:]...) })
	}
	wg.Wait()
	for _, b := range builds {
		if b.result.err != nil {
			t.Errorf("%s failed:\n%s", b.tag, b.result)
			continue
		}
		saved := filepath.Join(t.TempDir(), "image.tar")
		must(t, nil, bed.docker, "save", "-o", saved, b.tag)
		checkImage(t, readArchive(t, saved), b.c, time.Unix(1, 0))
	}
}
