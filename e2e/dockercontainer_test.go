//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerContainerBuilder builds on buildx builders of the
// docker-container driver, their buildkitd containers of the test bed's
// BuildKit image (TESTBED_BUILDKIT_IMAGE) on the Docker 28 engines, while
// DOCKER_HOST names Docker 20.10: the plugin reaches each node's container
// on the engine the node was created on. A builder of one node builds a
// manifest with FROM and RUN, pushes it, and loads it into 20.10; a builder
// of two nodes, one per engine and platform, builds both platforms with
// --push (checkMultiNode), and with one node stopped, the other's platform
// alone.
func TestDockerContainerBuilder(t *testing.T) {
	installPlugin(t)
	es, err := bedEngines()
	if err != nil {
		t.Fatal(err)
	}
	var engines []engine // Docker 28's: see TESTBED_BUILDKIT_IMAGE in hack/testbed.sh
	for _, e := range es {
		if strings.HasPrefix(e.name, "docker28-") {
			engines = append(engines, e)
		}
	}
	if len(engines) != 2 {
		t.Fatalf("TESTBED_ENGINES %q: want two Docker 28 engines", os.Getenv("TESTBED_ENGINES"))
	}
	dir := t.TempDir()
	config := writeFile(t, dir, "buildkitd.toml", fmt.Sprintf("[registry.%q]\n  http = true\n", bed.registry))

	t.Run("one node", func(t *testing.T) {
		builder := "storepack-dc-" + filepath.Base(dir)
		createContainerBuilder(t, builder, config, containerNode{name: builder + "-0", on: engines[0]})
		c := nixClosure(t)
		df := writeFile(t, c.dir, "dc.storepack", fromManifest(bed.registry+"/library/busybox:latest", "./result", "path-info.json", "RUN echo ran in the container > /ran"))
		tag := bed.registry + "/storepack-e2e/docker-container:1"
		_, stderr := mustPluginEnv(t, nil, "build", "--progress=plain", "--builder", builder, "-f", df, "-t", tag, "--push", c.dir)
		if want := fmt.Sprintf("building with %q instance using docker-container driver", builder); !strings.Contains(stderr, want) {
			t.Errorf("the build did not say %s:\n%s", want, stderr)
		}
		must(t, nil, bed.docker, "pull", "-q", tag)
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
		loaded := "storepack-e2e/docker-container:loaded"
		mustPluginEnv(t, nil, "build", "-q", "--builder", builder, "-f", df, "-t", loaded, "--load", c.dir)
		t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", loaded) })
		for _, image := range []string{tag, loaded} {
			if out := dockerRun(t, "--rm", "--entrypoint", "/bin/cat", image, "/ran"); out != "ran in the container\n" {
				t.Errorf("%s: cat /ran printed %q", image, out)
			}
		}
	})

	t.Run("two nodes", func(t *testing.T) {
		builder := "storepack-dcmulti-" + filepath.Base(dir)
		nodes := []multiNode{{name: "amd64", platform: "linux/amd64", arch: "amd64"}, {name: "armv7", platform: "linux/arm/v7", arch: "arm"}}
		var cns []containerNode
		for i, n := range nodes {
			cns = append(cns, containerNode{name: n.node(builder), on: engines[i], platform: n.platform})
		}
		createContainerBuilder(t, builder, config, cns...)
		for i := range nodes {
			host, container := cns[i].on.host, "buildx_buildkit_"+cns[i].name
			nodes[i].log = func(t *testing.T) string { return must(t, nil, bed.docker, "-H", host, "logs", container) }
			snapshotter := strings.TrimSpace(must(t, nil, bed.docker, "-H", host, "exec", container, "buildctl", "debug", "workers",
				"--format", `{{range .}}{{index .Labels "org.mobyproject.buildkit.worker.snapshotter"}}{{end}}`))
			nodes[i].holds = func(t *testing.T, blob string) bool {
				return cmd(nil, bed.docker, "-H", host, "cp", container+":/var/lib/buildkit/runc-"+snapshotter+"/content/blobs/sha256/"+blob, "-").err == nil
			}
		}
		mf, multiDir, repo := checkMultiNode(t, builder, "docker-container", nodes)
		t.Run("a stopped node holds up only its own platforms", func(t *testing.T) {
			stopped := builder + "/" + cns[1].name
			must(t, nil, bed.docker, "-H", cns[1].on.host, "stop", "buildx_buildkit_"+cns[1].name)
			_, stderr := mustPluginEnv(t, nil, "build", "--progress=plain", "--builder", builder, "--platform", "linux/amd64", "-f", mf, "-t", repo+":amd64-only", "--push", multiDir)
			if want := fmt.Sprintf("building with %q instance", builder+"/"+cns[0].name); !strings.Contains(stderr, want) {
				t.Errorf("want %s:\n%s", want, stderr)
			}
			tag := repo + ":while-stopped"
			_, stderr, err := runPluginEnv(nil, "build", "-q", "--builder", builder, "--platform", "linux/amd64,linux/arm/v7", "-f", mf, "-t", tag, "--push", multiDir)
			want := fmt.Sprintf("cannot reach the builder %q (docker-container driver)", stopped)
			hint := "(docker buildx inspect --bootstrap " + builder + " starts its containers)"
			if err == nil || !strings.Contains(stderr, want) || !strings.Contains(stderr, hint) {
				t.Errorf("err %v, stderr %q; want %q ... %q", err, stderr, want, hint)
			}
			if r := cmd(nil, bed.docker, "manifest", "inspect", "--insecure", tag); r.err == nil {
				t.Errorf("%s was pushed", tag)
			}
		})
	})
}

// containerNode is a node of a docker-container builder: its container's
// engine, and the platform it is declared for ("" for none).
type containerNode struct {
	name     string
	on       engine
	platform string
}

// createContainerBuilder creates the docker-container builder of nodes
// and starts them: the test bed's BuildKit image, the host's network (the
// registry is on its loopback), config as buildkitd.toml and debug
// logging, which names each push. When t ends the builder goes, and with it
// each node's container and state volume, which is checked.
func createContainerBuilder(t *testing.T, builder, config string, nodes ...containerNode) {
	t.Helper()
	t.Cleanup(func() {
		if r := cmd(nil, "docker", "buildx", "rm", builder); r.err != nil {
			t.Errorf("%s", r)
		}
		for _, n := range nodes {
			container := "buildx_buildkit_" + n.name
			left := must(t, nil, bed.docker, "-H", n.on.host, "ps", "-aq", "--filter", "name=^"+container+"$") +
				must(t, nil, bed.docker, "-H", n.on.host, "volume", "ls", "-q", "--filter", "name=^"+container+"_state$")
			if left != "" {
				t.Errorf("%s: the builder left %q behind", n.on.name, left)
			}
		}
	})
	for i, n := range nodes {
		args := []string{"buildx", "create", "--name", builder, "--node", n.name, "--driver", "docker-container",
			"--driver-opt", fmt.Sprintf("image=%s,network=host,cgroup-parent=%s/buildx", os.Getenv("TESTBED_BUILDKIT_IMAGE"), os.Getenv("TESTBED_CGROUP_PARENT")),
			"--buildkitd-config", config, "--buildkitd-flags=--debug", "--bootstrap"}
		if n.platform != "" {
			args = append(args, "--platform", n.platform)
		}
		if i > 0 {
			args = append(args, "--append")
		}
		must(t, nil, "docker", append(args, n.on.host)...)
	}
}
