//go:build e2e

package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRunInstruction builds a Nix closure on busybox with RUN through
// `docker build` on Docker 20.10 (Chain; the frontend binary finds the
// changes) and through the plugin on buildkitd (Merge; the plugin's own
// binary finds them): the commands' changes are in the image, every entry
// of the layer has the fixed time, and a build with the cache pruned gives
// the same layers.
func TestRunInstruction(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	extra := []string{"DIR /data", `RUN chown -R 1000 /data && touch /marker && echo "$PROGRAM" > /program`}
	for _, b := range bothBuilders {
		t.Run(b.name, func(t *testing.T) {
			result, graph := b.paths(c)
			text := fromManifest(b.busybox(), result, graph, extra...)
			tag := b.build(t, c, "run-layer", text)
			out := stdoutOf(t, bed.docker, "run", "--rm", tag, "sh", "-c", "stat -c %u /data; cat /program; ls /marker")
			if want := "1000\n" + c.root.String() + "/bin/hello\n/marker\n"; out != want {
				t.Errorf("the RUN's changes: %q, want %q", out, want)
			}
			first := inspectImage(t, tag).RootFS.Layers
			last := savedImage(t, tag).layers
			for _, h := range last[len(last)-1].entries {
				if !h.ModTime.Equal(time.Unix(1, 0)) {
					t.Errorf("%s has mtime %v, want the fixed time", h.Name, h.ModTime)
				}
			}
			cmd(nil, bed.docker, "rmi", "-f", tag)
			b.prune(t)
			b.build(t, c, "run-layer", text)
			if again := inspectImage(t, tag).RootFS.Layers; !slices.Equal(again, first) {
				t.Errorf("rebuilt with the cache pruned: layers\n%s\nwant\n%s", strings.Join(again, "\n"), strings.Join(first, "\n"))
			}
		})
	}
}

// TestRunInstructionFails: a failing RUN is an error that names the
// manifest's line and the command's exit, and so is one that removes a
// file of a layer below (the layer is applied as a copy, which cannot
// remove), naming the file; nothing is tagged.
func TestRunInstructionFails(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	tag := "storepack-e2e/run-layer:fails"
	run := "RUN echo about to fail && exit 3"
	for _, b := range []struct {
		name  string
		build func() (string, error)
	}{
		{"docker build", func() (string, error) {
			df := writeFile(t, c.dir, "fails.storepack", fromManifest(os.Getenv("TESTBED_BUSYBOX_IMAGE"), c.dir+"/result", c.dir+"/path-info.json", run))
			r := engineBuild(t, "-f", df, "-t", tag, "/")
			return r.out, r.err
		}},
		{"plugin", func() (string, error) {
			df := writeFile(t, c.dir, "fails.storepack", fromManifest(os.Getenv("TESTBED_BUSYBOX_IMAGE"), "./result", "path-info.json", run))
			_, stderr, err := runPluginEnv(engineEnv, "build", "--progress=plain", "-f", df, "-t", tag, c.dir)
			return stderr, err
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			out, err := b.build()
			// The RUN is line 6, after the lines fromManifest writes.
			if err == nil || !strings.Contains(out, "fails.storepack:6") || !strings.Contains(out, "exit code: 3") {
				t.Errorf("err %v, output:\n%s\nwant the manifest's line 6 and exit code 3", err, out)
			}
			checkNotTagged(t, tag)
		})
	}
	for _, b := range bothBuilders {
		t.Run(b.name+", a removal", func(t *testing.T) {
			resultPath, graph := b.paths(c)
			df := writeFile(t, c.dir, "removes.storepack", fromManifest(b.busybox(), resultPath, graph, "RUN rm /etc/group"))
			var r result
			if b.engine {
				r = engineBuild(t, "-f", df, "-t", tag, "/")
			} else {
				r = cmd(buildkitEnv, "docker", "storepack", "build", "--progress=plain", "-f", df, "-t", tag, c.dir)
			}
			if r.err == nil || !strings.Contains(r.out, "RUN removed /etc/group") {
				t.Errorf("err %v, output:\n%s\nwant the removed file named", r.err, r.out)
			}
			checkNotTagged(t, tag)
		})
	}
}
