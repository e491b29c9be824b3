//go:build e2e

package e2e

import (
	"os"
	"testing"
)

// builder is where a manifest test builds: `docker build` on an engine of
// the test bed (the frontend image, the host's / as the context: Merge on
// Docker 28's containerd store, Chain on the others) or the plugin on buildkitd (Merge, the
// closure's directory as the context, pushed to the test bed's registry
// and pulled into Docker 20.10).
type builder struct {
	name   string
	engine bool
	on     engine // the engine docker build runs on
	// buildx: the frontend image through `docker buildx build` on
	// buildkitd (Merge), built like the plugin's.
	buildx bool
}

// buildxBuilder is the frontend where it merges, for the features that
// differ there from docker build on Docker 20.10.
var buildxBuilder = builder{name: "buildx on buildkitd", buildx: true}

// bothBuilders is docker build on each engine of the bed (the engine
// matrix, named "docker build/engine=NAME"), then the plugin on buildkitd.
func bothBuilders(t *testing.T) []builder {
	t.Helper()
	es, err := bedEngines()
	if err != nil {
		t.Fatal(err)
	}
	var bs []builder
	for _, e := range es {
		bs = append(bs, builder{name: "docker build/engine=" + e.name, engine: true, on: e})
	}
	return append(bs, builder{name: "plugin on buildkitd"})
}

// use points the subtest's docker commands at the builder's engine.
func (b builder) use(t *testing.T) {
	if b.engine {
		t.Setenv("DOCKER_HOST", b.on.host)
	}
}

// merges: the builder's BuildKit has MergeOp.
func (b builder) merges() bool { return !b.engine || b.on.merges() }

// paths returns the manifest's paths of c's result and graph, as the
// builder's context sees them.
func (b builder) paths(c closure) (result, graph string) {
	if b.engine {
		return c.dir + "/result", c.dir + "/path-info.json"
	}
	return "./result", "path-info.json"
}

// busybox is the test bed's busybox image as the builder reads it: from
// the engine, or from the registry.
func (b builder) busybox() string {
	if b.engine {
		return os.Getenv("TESTBED_BUSYBOX_IMAGE")
	}
	return bed.registry + "/library/busybox:latest"
}

// build builds the manifest text of c's directory as name, tagged, and
// returns the tag of the image in the engine, removed when t ends.
func (b builder) build(t *testing.T, c closure, name, text string) string {
	t.Helper()
	df := writeFile(t, c.dir, name+".storepack", text)
	var tag string
	if b.engine {
		tag = "storepack-e2e/" + name + ":engine"
		if r := engineBuild(t, "-f", df, "-t", tag, "/"); r.err != nil {
			t.Fatalf("build failed:\n%s", r)
		}
	} else {
		tag = bed.registry + "/storepack-e2e/" + name + ":pushed"
		if b.buildx {
			if r := buildxBuild(t, "-f", df, "--build-context", "store=/nix/store", "-t", tag, "--push", c.dir); r.err != nil {
				t.Fatalf("build failed:\n%s", r)
			}
		} else {
			mustPluginEnv(t, buildkitEnv, "build", "--progress=plain", "-f", df, "-t", tag, "--push", c.dir)
		}
		must(t, nil, bed.docker, "pull", tag)
	}
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", tag) })
	return tag
}

// prune empties the builder's cache.
func (b builder) prune(t *testing.T) {
	t.Helper()
	if b.engine {
		must(t, nil, bed.docker, "builder", "prune", "--all", "--force")
	} else {
		must(t, nil, "docker", "buildx", "prune", "--builder", os.Getenv("BUILDX_BUILDER"), "--all", "--force")
	}
}
