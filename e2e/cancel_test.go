//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
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
	c, df := bigBuild(t, 29)
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

// bigBuild installs the plugin and returns the test closure and, in its
// directory, the manifest of a big store path of its own (bigStorePath's
// seed): a build of it is still running when a test interrupts it.
func bigBuild(t *testing.T, seed int) (closure, string) {
	t.Helper()
	installPlugin(t)
	c := nixClosure(t)
	big := bigStorePath(t, seed)
	return c, writeFile(t, c.dir, "big.storepack", "# syntax=storepack\nCLOSURE "+big+"\n")
}

// signalAt starts run, reads its progress (stderr) until a line holds
// line, sends sig to the process target picks from run's (nil: run's
// own), reads the rest and waits. It returns the progress seen, whether
// the line came (else no signal was sent) and run's error.
func signalAt(t *testing.T, run boundedCmd, line string, sig syscall.Signal, target func(pid int) int) (progress string, reached bool, err error) {
	t.Helper()
	finish, reached := startUntil(t, run, line)
	if reached {
		pid := run.Process.Pid
		if target != nil {
			pid = target(pid)
		}
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
	}
	progress, err = finish()
	return progress, reached, err
}

// startUntil starts run and reads its progress (stderr) until a line holds
// line, or to its end. It returns whether the line came, and finish, which
// reads the rest, waits for run and returns all the progress and run's
// error.
func startUntil(t *testing.T, run boundedCmd, line string) (finish func() (string, error), reached bool) {
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
	return func() (string, error) {
		rest, _ := io.ReadAll(stderr)
		seen.Write(rest)
		return seen.String(), run.Wait()
	}, reached
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

// TestKilledPluginSwept: a plugin killed (SIGKILL) during a build leaves
// its temporary directory, which the next run of the plugin removes; the
// directory of a build running beside it, stalled in its push, stays whole,
// and goes when that build ends. Each stage is reached by watching the
// progress.
func TestKilledPluginSwept(t *testing.T) {
	c, df := bigBuild(t, 37)
	tmp := t.TempDir()
	env := append([]string{"TMPDIR=" + tmp, "XDG_CACHE_HOME=" + t.TempDir()}, buildkitEnv...)

	// Killed during its digest pass.
	var killed int
	run := boundedCommand(commandBound, env, "docker", "storepack", "build", "--progress=plain", "--previous", "", "-f", df, "-o", "type=oci,dest="+filepath.Join(t.TempDir(), "image.tar"), c.dir)
	progress, reached, _ := signalAt(t, run, "[storepack] digests of", syscall.SIGKILL, func(docker int) int {
		killed = pluginPid(t, docker)
		return killed
	})
	if !reached {
		t.Fatalf("no digest pass to kill:\n%s", progress)
	}
	if left := runDirsOf(t, tmp, killed); len(left) != 1 {
		t.Fatalf("the killed plugin (%d) left %v, want its one directory", killed, left)
	}

	// Beside it, a build whose push stalls, watched until it pushes.
	stalled := newFaultProxy(t, stallUploads).addr
	live := boundedCommand(commandBound, env, "docker", "storepack", "build", "--progress=plain", "--previous", "", "-f", df, "-t", stalled+"/storepack-e2e/swept:1", "--push", c.dir)
	finish, reached := startUntil(t, live, "write the image on the host and push it")
	if !reached {
		progress, err := finish()
		t.Fatalf("the build beside never pushed: %v\n%s", err, progress)
	}
	livePid := pluginPid(t, live.Process.Pid)
	liveDirs := runDirsOf(t, tmp, livePid)
	if len(liveDirs) != 1 {
		t.Fatalf("the live plugin (%d) has %v, want its one directory", livePid, liveDirs)
	}
	before := must(t, nil, "find", liveDirs[0])

	// The next run sweeps.
	mustPluginEnv(t, env, "version")
	if left := runDirsOf(t, tmp, killed); len(left) > 0 {
		t.Errorf("the killed plugin's directory was not removed: %v", left)
	}
	after, err := os.ReadDir(liveDirs[0])
	if err != nil || len(after) == 0 {
		t.Errorf("the live build's directory %s was swept: %v (%v); it held:\n%s", liveDirs[0], after, err, before)
	}

	if err := syscall.Kill(live.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if progress, err := finish(); err == nil || strings.Contains(err.Error(), "still running after") {
		t.Errorf("the interrupted build beside: %v\n%s", err, progress)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// runDirsOf lists the temporary directories in tmp of the plugin process
// pid (rundir's storepack-<pid>-*).
func runDirsOf(t *testing.T, tmp string, pid int) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(tmp, fmt.Sprintf("storepack-%d-*", pid)))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}
