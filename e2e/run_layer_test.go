//go:build e2e

package e2e

import (
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRunInstruction builds a Nix closure on busybox with RUN through
// `docker build` on each engine (Chain on Docker 20.10 and on Docker 28's
// classic store, where the frontend binary finds the changes; Merge on its
// containerd store), through the plugin on
// buildkitd (Merge; the plugin's own binary finds them) and through the
// frontend on buildkitd (Merge): the
// commands' changes are in the image, every entry of the layer has the
// fixed time, and a build with the cache pruned gives the same layers.
// Where the builder merges, the RUN also removes a file of the base and
// replaces a directory of a store path with a file, as the image shows.
func TestRunInstruction(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	run := `RUN chown -R 1000 /data && touch /marker && echo "$PROGRAM" > /program`
	for _, b := range append(bothBuilders(t), buildxBuilder) {
		t.Run(b.name, func(t *testing.T) {
			b.use(t)
			result, graph := b.paths(c)
			removes := b.merges()
			extra := []string{"DIR /data", run}
			if removes {
				extra[1] += ` && rm /etc/group && rm -r "${PROGRAM%/bin/hello}/share/hello" && echo > "${PROGRAM%/bin/hello}/share/hello"`
			}
			text := fromManifest(b.busybox(), result, graph, extra...)
			tag := b.build(t, c, "run-layer", text)
			out := dockerRun(t, "--rm", tag, "sh", "-c", "stat -c %u /data; cat /program; ls /marker; "+
				`for f in /etc/group /etc/passwd "${PROGRAM%/bin/hello}/share/hello" "${PROGRAM%/bin/hello}/share/data"; do test -e "$f" && echo "$f"; done; `+
				`test -f "${PROGRAM%/bin/hello}/share/hello" && echo a file now; true`)
			kept := "/etc/passwd\n" + c.root.String() + "/share/hello\n" + c.root.String() + "/share/data\na file now\n"
			if !removes {
				kept = "/etc/group\n/etc/passwd\n" + c.root.String() + "/share/hello\n" + c.root.String() + "/share/data\n"
			}
			if want := "1000\n" + c.root.String() + "/bin/hello\n/marker\n" + kept; out != want {
				t.Errorf("the RUN's changes: %q, want %q", out, want)
			}
			first := inspectImage(t, tag).RootFS.Layers
			last := savedImage(t, tag).layers
			for _, h := range last[len(last)-1].entries {
				// runc's mount points are not the commands' changes.
				if name := strings.TrimSuffix(h.Name, "/"); name == "dev" || name == "proc" || name == "sys" {
					t.Errorf("the RUN layer holds %s, a mount point of the runtime", h.Name)
				}
				// A whiteout's time is the builder's (0 on buildkitd),
				// the same on every build, as the rebuild checks.
				if !h.ModTime.Equal(time.Unix(1, 0)) && !strings.HasPrefix(path.Base(h.Name), ".wh.") {
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
// file of a layer below on an engine's builder without MergeOp (Docker
// 20.10, Docker 28 on its classic store; their layers would record the
// removal with the time of the build), naming the file, and one
// that makes a fifo, naming it; nothing is tagged.
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
	// Where docker build cannot merge (Docker 20.10, Docker 28's classic
	// store), the error says so in one line.
	for _, b := range bothBuilders(t) {
		if !b.engine || b.merges() {
			continue
		}
		t.Run("a removal/"+b.name, func(t *testing.T) {
			b.use(t)
			df := writeFile(t, c.dir, "removes.storepack", fromManifest(os.Getenv("TESTBED_BUSYBOX_IMAGE"), c.dir+"/result", c.dir+"/path-info.json", "RUN rm /etc/group"))
			r := engineBuild(t, "-f", df, "-t", tag, "/")
			if want := "removes.storepack:6: RUN removed /etc/group, which the layers below hold: this builder (Docker Engine's own on its classic image store: no MergeOp)"; r.err == nil || !strings.Contains(r.out, want) {
				t.Errorf("err %v, output:\n%s\nwant a line with %q", r.err, r.out, want)
			}
			checkNotTagged(t, tag)
		})
	}
	t.Run("plugin on buildkitd, a fifo", func(t *testing.T) {
		df := writeFile(t, c.dir, "fifo.storepack", fromManifest(bed.registry+"/library/busybox:latest", "./result", "path-info.json", "RUN mkfifo /srv-fifo"))
		r := cmd(buildkitEnv, "docker", "storepack", "build", "--progress=plain", "-f", df, "-t", tag, c.dir)
		if r.err == nil || !strings.Contains(r.out, "fifo.storepack:6: RUN made /srv-fifo, a fifo") {
			t.Errorf("err %v, output:\n%s\nwant line 6 and the fifo named", r.err, r.out)
		}
		checkNotTagged(t, tag)
	})
}
