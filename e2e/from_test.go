//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// fromManifest is the test application on a base image: no LINK /bin (the
// base has its /bin), the program named by a variable for the base's sh.
func fromManifest(base, result, graph string, extra ...string) string {
	return strings.Join(append([]string{
		"# syntax=storepack",
		"FROM " + base,
		"CLOSURE " + result,
		"GRAPH " + graph,
		"ENV PROGRAM=${ROOT}/bin/hello",
	}, extra...), "\n") + "\n"
}

// imageConfigOf is the engine's view of an image: its layers and config.
type imageConfigOf struct {
	RootFS struct{ Layers []string }
	Config struct{ Env []string }
}

func inspectImage(t *testing.T, ref string) imageConfigOf {
	t.Helper()
	var img []imageConfigOf
	if err := json.Unmarshal([]byte(must(t, nil, bed.docker, "image", "inspect", ref)), &img); err != nil || len(img) != 1 {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return img[0]
}

// TestFromBase builds a Nix closure on busybox with `docker build` on Docker
// 20.10 (Chain, the base from the engine's images) and with the plugin on
// buildkitd (Merge, the base from the registry): the base's layers come
// first with their digests, its PATH survives, its shell runs the closure,
// and its layers count against LAYERS --max.
func TestFromBase(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	engineBase := inspectImage(t, os.Getenv("TESTBED_BUSYBOX_IMAGE"))
	baseLayers := engineBase.RootFS.Layers
	basePath := ""
	for _, kv := range engineBase.Config.Env {
		if strings.HasPrefix(kv, "PATH=") {
			basePath = kv
		}
	}
	const budget = 3
	for _, b := range bothBuilders(t) {
		t.Run(b.name, func(t *testing.T) {
			b.use(t)
			result, graph := b.paths(c)
			tag := b.build(t, c, "from", fromManifest(b.busybox(), result, graph, fmt.Sprintf("LAYERS --max=%d", budget)))
			img := inspectImage(t, tag)
			if n := len(img.RootFS.Layers); n <= len(baseLayers) || n > budget {
				t.Errorf("%d layers with a %d-layer base and LAYERS --max=%d", n, len(baseLayers), budget)
			} else if !slices.Equal(img.RootFS.Layers[:len(baseLayers)], baseLayers) {
				t.Errorf("layers %v do not start with the base's %v", img.RootFS.Layers, baseLayers)
			}
			if !slices.Contains(img.Config.Env, basePath) {
				t.Errorf("env %q lost the base's %s", img.Config.Env, basePath)
			}
			out := dockerRun(t, "--rm", tag, "sh", "-c", `ls /nix/store && "$PROGRAM"`)
			if !strings.Contains(out, c.root.Base()) || !strings.HasSuffix(strings.TrimSpace(out), greeting) {
				t.Errorf("sh -c 'ls /nix/store && $PROGRAM' printed %q, want the store listed and %q", out, greeting)
			}
		})
	}
}

// TestFromPlan: `docker storepack plan` lists a FROM image's layers first
// (read from each engine of the bed), and plans the store layers in what
// they leave of the budget.
func TestFromPlan(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	base := os.Getenv("TESTBED_BUSYBOX_IMAGE")
	df := writeFile(t, c.dir, "from.storepack", fromManifest(base, "./result", "path-info.json", "LAYERS --max=3 --strategy=per-path"))
	runOnEngines(t, engineTest{"plan", func(t *testing.T, _ engine) { testFromPlan(t, base, df) }})
}

func testFromPlan(t *testing.T, base, df string) {
	baseLayers := inspectImage(t, base).RootFS.Layers
	stdout, _ := mustPluginEnv(t, engineEnv, "plan", "--format", "json", df)
	var plan struct {
		Base struct {
			Ref     string
			DiffIDs []string
		}
		Layers []json.RawMessage
	}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("plan --format json: %v\n%s", err, stdout)
	}
	if plan.Base.Ref != base || !slices.Equal(plan.Base.DiffIDs, baseLayers) || len(plan.Layers) != 3-len(baseLayers) {
		t.Errorf("plan: base %+v, %d store layers; want %s with %v and %d store layers", plan.Base, len(plan.Layers), base, baseLayers, 3-len(baseLayers))
	}
	table, _ := mustPluginEnv(t, engineEnv, "plan", df)
	if rows := strings.Split(strings.TrimSpace(table), "\n"); len(rows) != 1+len(baseLayers)+len(plan.Layers) || !strings.HasPrefix(rows[1], "base ") || !strings.Contains(rows[1], baseLayers[0]) {
		t.Errorf("plan table:\n%s\nwant the base's layers first", table)
	}
}

// TestFromMissing: a FROM image that exists nowhere is an error naming the
// manifest's line, on each engine of the bed, and nothing is tagged.
func TestFromMissing(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	base := bed.registry + "/storepack-e2e/no-such-base:1"
	tag := "storepack-e2e/from:missing"
	runOnEngines(t, engineTest{"missing base", func(t *testing.T, _ engine) {
		for _, b := range []struct {
			name  string
			build func(t *testing.T) (string, error)
		}{
			{"docker build", func(t *testing.T) (string, error) {
				df := writeFile(t, c.dir, "from.storepack", fromManifest(base, c.dir+"/result", c.dir+"/path-info.json"))
				r := engineBuild(t, "-f", df, "-t", tag, "/")
				return r.out, r.err
			}},
			{"plugin", func(t *testing.T) (string, error) {
				df := writeFile(t, c.dir, "from.storepack", fromManifest(base, "./result", "path-info.json"))
				_, stderr, err := runPluginEnv(engineEnv, "build", "-f", df, "-t", tag, c.dir)
				return stderr, err
			}},
		} {
			t.Run(b.name, func(t *testing.T) {
				out, err := b.build(t)
				if err == nil || !strings.Contains(out, "from.storepack:2") || !strings.Contains(out, "FROM "+base+": ") {
					t.Errorf("err %v, output:\n%s\nwant the line and the base named", err, out)
				}
				checkNotTagged(t, tag)
			})
		}
	}})
}
