//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestBuildInterrupted: SIGINT to `docker storepack build` on buildkitd
// while it writes store layers on the host (its digest pass), while it
// sends the image to the engine (--load) and while it pushes (to a
// registry that takes no upload, which holds the push until the client
// gives up): the build fails, leaves no result (archive, tag in the engine
// or the registry), no temporary file or directory and no half-written
// entry of the host's cache of layer digests, and the same build then
// makes the image of an uninterrupted build at once. Each stage is reached
// by watching the progress.
func TestBuildInterrupted(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	big := bigStorePath(t, 29)
	df := writeFile(t, c.dir, "big.storepack", "# syntax=storepack\nCLOSURE "+big+"\n")
	referenceFile := filepath.Join(t.TempDir(), "reference.tar")
	mustPluginEnv(t, append([]string{"XDG_CACHE_HOME=" + t.TempDir()}, buildkitEnv...), "build", "-f", df, "-o", "type=oci,dest="+referenceFile, c.dir)
	reference := readArchive(t, referenceFile).diffIDs()
	out := t.TempDir()
	const repo = "storepack-e2e/interrupted"

	for _, tc := range []struct {
		stage string
		line  string // the progress line that says the stage runs
		// args are build's arguments for its result name; made is the
		// diffIDs of the image the build of name left, if any.
		args func(t *testing.T, name string) []string
		made func(t *testing.T, name string) ([]string, bool)
	}{{
		stage: "writing layers on the host",
		line:  "[storepack] digests of",
		args: func(_ *testing.T, name string) []string {
			return []string{"-o", "type=oci,dest=" + filepath.Join(out, name+".tar")}
		},
		made: func(t *testing.T, name string) ([]string, bool) {
			file := filepath.Join(out, name+".tar")
			if _, err := os.Stat(file); err != nil {
				return nil, false
			}
			return readArchive(t, file).diffIDs(), true
		},
	}, {
		stage: "loading",
		line:  "write the image on the host and load it",
		args: func(t *testing.T, name string) []string {
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", repo+":load-"+name) })
			return []string{"-t", repo + ":load-" + name, "--load"}
		},
		made: func(t *testing.T, name string) ([]string, bool) {
			if cmd(nil, bed.docker, "image", "inspect", repo+":load-"+name).err != nil {
				return nil, false
			}
			return inspectImage(t, repo+":load-"+name).RootFS.Layers, true
		},
	}, {
		stage: "pushing",
		line:  "write the image on the host and push it",
		args: func(t *testing.T, name string) []string {
			registry := bed.registry
			if name == "interrupted" {
				registry = newFaultProxy(t, stallUploads).addr
			}
			return []string{"-t", registry + "/" + repo + ":push-" + name, "--push"}
		},
		made: func(t *testing.T, name string) ([]string, bool) {
			if !registryHas(t, repo, "push-"+name) {
				return nil, false
			}
			var ids []string
			for _, d := range readImages(t, bed.registry+"/"+repo, "push-"+name)[0].config.RootFS.DiffIDs {
				ids = append(ids, d.String())
			}
			return ids, true
		},
	}} {
		t.Run(tc.stage, func(t *testing.T) {
			tmp, cacheHome := t.TempDir(), t.TempDir()
			env := append([]string{"TMPDIR=" + tmp, "XDG_CACHE_HOME=" + cacheHome}, buildkitEnv...)
			args := append([]string{"storepack", "build", "--progress=plain", "--previous", "", "-f", df}, tc.args(t, "interrupted")...)
			run := boundedCommand(commandBound, env, "docker", append(args, c.dir)...)
			seen, reached, err := signalAt(t, run, tc.line, syscall.SIGINT, nil)
			switch {
			case !reached:
				t.Fatalf("the build never showed %q: %v\n%s", tc.line, err, seen)
			case err == nil:
				t.Errorf("an interrupted build exited 0:\n%s", seen)
			case strings.Contains(err.Error(), "still running after"):
				t.Fatalf("the interrupted build did not end: %v\n%s", err, seen)
			}
			if _, left := tc.made(t, "interrupted"); left {
				t.Errorf("the interrupted build left its result:\n%s", seen)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
			checkCacheEntries(t, cacheHome)

			mustPluginEnv(t, env, append(append([]string{"build", "--previous", "", "-f", df}, tc.args(t, "again")...), c.dir)...)
			if got, ok := tc.made(t, "again"); !ok || !slices.Equal(got, reference) {
				t.Errorf("the build after made %v (%v), an uninterrupted build %v", got, ok, reference)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("temporary files left by the build after: %v", left)
			}
		})
	}
}

// signalAt starts run, reads its progress (stderr) until a line holds
// line, sends sig to the process target picks from run's (nil: run's
// own), reads the rest and waits. It returns the progress seen, whether
// the line came (else no signal was sent) and run's error.
func signalAt(t *testing.T, run boundedCmd, line string, sig syscall.Signal, target func(pid int) int) (progress string, reached bool, err error) {
	t.Helper()
	stderr, err := run.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	lines := bufio.NewScanner(stderr)
	for !reached && lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
		reached = strings.Contains(lines.Text(), line)
	}
	if reached {
		pid := run.Process.Pid
		if target != nil {
			pid = target(pid)
		}
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
	}
	rest, _ := io.ReadAll(stderr)
	seen.Write(rest)
	return seen.String(), reached, run.Wait()
}

// checkCacheEntries fails t when the host's cache of layer digests in
// cacheHome holds a damaged entry or a temporary file.
func checkCacheEntries(t *testing.T, cacheHome string) {
	t.Helper()
	dir := filepath.Join(cacheHome, "storepack", "layers")
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary cache files left: %v", tmp)
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, e := range entries {
		var entry struct{ Key, DiffID, Sum string }
		data, err := os.ReadFile(e)
		if err != nil || json.Unmarshal(data, &entry) != nil || !strings.HasSuffix(e, strings.TrimPrefix(entry.Key, "sha256:")+".json") || entry.DiffID == "" || entry.Sum == "" {
			t.Errorf("a damaged cache entry: %s: %q", e, data)
		}
	}
}
