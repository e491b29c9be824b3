//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storepack/storepack/internal/testdir"
)

// runTag is the image `docker storepack run` makes of the test closure.
const runTag = "storepack/hello:latest"

// pluginRun runs `docker storepack run ARGS` with stdin, env added to the
// test bed's, and returns its stdout, its stderr and its exit code.
func pluginRun(t *testing.T, env []string, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	c := containerCommand(env, append([]string{"docker", "storepack", "run"}, args...)...)
	c.Stdin = stdin
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("docker storepack run %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// runCase is a run of the test closure: its arguments, standard input and
// environment, and the exit code and output it must give.
type runCase struct {
	name   string
	args   []string
	stdin  string
	env    []string
	code   int
	stdout string
	stderr string
}

// containerCases are the runs of c's result whose exit codes and
// environment every engine must give as docker run does; dir holds an env
// file.
func containerCases(t *testing.T, c closure, dir string) []runCase {
	result, bb := filepath.Join(c.dir, "result"), busyboxOf(t, c)
	return []runCase{
		{name: "exit code", args: []string{"--entrypoint", bb, result, "sh", "-c", "exit 3"}, code: 3},
		{name: "missing command", args: []string{"--entrypoint", "/no/such/command", result}, code: 127, stderr: "/no/such/command"},
		{name: "not executable", args: []string{"--entrypoint", pathNamed(t, c, "greeting-data") + "/share/greeting.txt", result}, code: 126},
		{name: "env", args: []string{"-e", "FOO=foo", "--env-file", writeFile(t, dir, "env", "BAR=bar\n"), "--entrypoint", bb, result, "sh", "-c", "echo $FOO $BAR"}, stdout: "foo bar"},
		{name: "stdin", args: []string{"-i", "--entrypoint", bb, result, "cat"}, stdin: "from stdin\n", stdout: "from stdin"},
	}
}

// busyboxOf is the busybox binary of the test closure.
func busyboxOf(t *testing.T, c closure) string {
	return pathNamed(t, c, "busybox") + "/bin/busybox"
}

// imageEvents lists the engine's image events between two times.
func imageEvents(t *testing.T, since, until time.Time) []string {
	t.Helper()
	out := must(t, nil, bed.docker, "events", "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}",
		"--since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		"--until", fmt.Sprintf("%d.%09d", until.Unix(), until.Nanosecond()))
	return strings.Fields(strings.TrimSpace(out))
}

// noRunContainers fails when a container that a run made is left.
func noRunContainers(t *testing.T) {
	t.Helper()
	if out := must(t, nil, bed.docker, "ps", "-a", "-q", "--filter", "label=dev.storepack.run"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %s", out)
		cmd(nil, bed.docker, "rm", "-f", strings.TrimSpace(out))
	}
}

// TestRunRoots: `docker storepack run ./result` builds, loads and runs the
// closure like docker run; a second run of the same closure neither builds
// nor loads; the container's exit code is the plugin's.
func TestRunRoots(t *testing.T) {
	withoutFrontendImage(t)
	c := nixClosure(t)
	result := filepath.Join(c.dir, "result")
	bb := busyboxOf(t, c)
	cmd(nil, bed.docker, "rmi", "-f", runTag)
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", runTag); noRunContainers(t) })

	out, progress, code := pluginRun(t, engineEnv, nil, "--progress=plain", result)
	if code != 0 || strings.TrimSpace(out) != greeting {
		t.Fatalf("run printed %q, exit %d, want %q\n%s", out, code, greeting, progress)
	}
	if !strings.Contains(progress, `building with "default" instance using docker driver`) {
		t.Errorf("the first run did not build:\n%s", progress)
	}
	id := strings.TrimSpace(must(t, nil, bed.docker, "image", "inspect", "-f", "{{.Id}}", runTag))

	since := time.Now()
	out, progress, code = pluginRun(t, engineEnv, nil, result)
	until := time.Now()
	if code != 0 || strings.TrimSpace(out) != greeting {
		t.Fatalf("second run printed %q, exit %d\n%s", out, code, progress)
	}
	if strings.Contains(progress, "building with") || strings.Contains(progress, "write the image") {
		t.Errorf("the second run of the same closure built again:\n%s", progress)
	}
	if events := imageEvents(t, since, until); len(events) > 0 {
		t.Errorf("the second run changed the engine's images: %v", events)
	}
	if now := strings.TrimSpace(must(t, nil, bed.docker, "image", "inspect", "-f", "{{.Id}}", runTag)); now != id {
		t.Errorf("the image changed from %s to %s", id, now)
	}

	for _, tc := range append(containerCases(t, c, t.TempDir()), []runCase{
		{name: "arguments replace CMD", args: []string{"--entrypoint", bb, result, "echo", "a", "b"}, stdout: "a b"},
		{name: "user and workdir", args: []string{"-u", "1000:1000", "-w", "/tmp/work", "--entrypoint", bb, result, "sh", "-c", bb + " id -u; " + bb + " id -g; " + bb + " pwd"}, stdout: "1000\n1000\n/tmp/work"},
		{name: "no engine", args: []string{result}, env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, code: 125, stderr: "cannot reach the docker engine"},
		{name: "not a store path", args: []string{"./no-such-result"}, code: 125, stderr: "no-such-result"},
		{name: "missing store path", args: []string{"/nix/store/00000000000000000000000000000000-none"}, code: 125, stderr: "00000000000000000000000000000000-none"},
	}...) {
		t.Run(tc.name, func(t *testing.T) {
			env := append(append([]string{}, engineEnv...), tc.env...)
			stdout, stderr, code := pluginRun(t, env, strings.NewReader(tc.stdin), tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) || strings.TrimSpace(stdout) != tc.stdout {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.code == 125 && tc.stderr != "" && strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("storepack's failure takes more than one line:\n%s", stderr)
			}
			if tc.code == 3 {
				for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
					if line != "" && !strings.HasPrefix(line, "WARNING:") { // the engine's
						t.Errorf("a container's exit code made the plugin print %q", line)
					}
				}
			}
		})
	}
	noRunContainers(t)

	t.Run("volume", func(t *testing.T) {
		dir := t.TempDir()
		if _, stderr, code := pluginRun(t, engineEnv, nil, "-v", dir+":/out", "--entrypoint", bb, result, "sh", "-c", "echo written > /out/file"); code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if got := strings.TrimSpace(readFile(t, filepath.Join(dir, "file"))); got != "written" {
			t.Errorf("the host sees %q", got)
		}
	})

	t.Run("tty", func(t *testing.T) {
		// script gives the plugin a real pseudo-terminal.
		line := fmt.Sprintf("docker storepack run -t --entrypoint %s %s tty", bb, result)
		r := cmd(engineEnv, "script", "-qec", line, "/dev/null")
		if r.err != nil || !strings.Contains(r.out, "/dev/pts/") {
			t.Errorf("-t gave no terminal:\n%s", r)
		}
		if _, stderr, code := pluginRun(t, engineEnv, nil, "--entrypoint", bb, result, "tty"); code == 0 {
			t.Errorf("without -t the container has a terminal\n%s", stderr)
		}
	})

	t.Run("published port", func(t *testing.T) {
		data := pathNamed(t, c, "greeting-data") + "/share"
		stdout, stderr, code := pluginRun(t, engineEnv, nil, "-d", "-p", "127.0.0.1::8080", "--entrypoint", bb, result, "httpd", "-f", "-p", "8080", "-h", data)
		id := strings.TrimSpace(stdout)
		if code != 0 || id == "" {
			t.Fatalf("-d: exit %d, stdout %q\n%s", code, stdout, stderr)
		}
		t.Cleanup(func() { cmd(nil, bed.docker, "rm", "-f", id) })
		if state := strings.TrimSpace(must(t, nil, bed.docker, "inspect", "-f", "{{.State.Running}} {{.HostConfig.AutoRemove}}", id)); state != "true true" {
			t.Errorf("-d left the container %q (running, auto-remove), want it running and removed when it stops", state)
		}
		addr := strings.TrimSpace(strings.Split(must(t, nil, bed.docker, "port", id, "8080"), "\n")[0])
		body, err := getWhenReady("http://" + addr + "/greeting.txt")
		if err != nil || strings.TrimSpace(body) != greeting {
			t.Errorf("GET %s: %q, %v", addr, body, err)
		}
	})
}

// getWhenReady GETs url once the server in the container listens: a
// bounded poll, as the server starts after the container does.
func getWhenReady(url string) (string, error) {
	var err error
	for range 100 {
		var resp *http.Response
		if resp, err = http.Get(url); err == nil {
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return string(body), fmt.Errorf("%s", resp.Status)
			}
			return string(body), err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", err
}

// TestRunRebuild: after the application changed, run builds again, keeps
// every other layer, and replaces the image it made before; through a
// BuildKit daemon the image is loaded into the engine.
func TestRunRebuild(t *testing.T) {
	withoutFrontendImage(t)
	v1 := nixClosure(t, "--argstr", "appVersion", "run-1")
	v2 := nixClosure(t, "--argstr", "appVersion", "run-2")
	cmd(nil, bed.docker, "rmi", "-f", runTag)
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", runTag); noRunContainers(t) })
	// Through buildkitd, which hands the engine a docker archive to load
	// (builders differ in their tar headers, so both runs use one).
	if out, stderr, code := pluginRun(t, buildkitEnv, nil, "--max-layers", "3", filepath.Join(v1.dir, "result")); code != 0 || strings.TrimSpace(out) != greeting {
		t.Fatalf("exit %d, %q\n%s", code, out, stderr)
	}
	first := layerDiffIDs(t, runTag)
	oldID := strings.TrimSpace(must(t, nil, bed.docker, "image", "inspect", "-f", "{{.Id}}", runTag))

	since := time.Now()
	out, progress, code := pluginRun(t, buildkitEnv, nil, "--progress=plain", "--max-layers", "3", filepath.Join(v2.dir, "result"))
	until := time.Now()
	if code != 0 || strings.TrimSpace(out) != greeting {
		t.Fatalf("exit %d, %q\n%s", code, out, progress)
	}
	if want := "previous image " + runTag + " (linux/amd64): read its plan"; !strings.Contains(progress, want) {
		t.Errorf("the rebuild did not keep the previous image's layout:\n%s", progress)
	}
	events := strings.Join(imageEvents(t, since, until), " ")
	if !strings.Contains(events, "load") {
		t.Errorf("the image was not loaded into the engine: events %q", events)
	}
	checkKeptLayers(t, first, layerDiffIDs(t, runTag), v2.root)
	if r := cmd(nil, bed.docker, "image", "inspect", oldID); r.err == nil {
		t.Errorf("the replaced image %s is left in the engine", oldID)
	}
}

// TestRunManifestAndPlatform runs a manifest, an image by name, and a
// closure for a foreign platform under qemu.
func TestRunManifestAndPlatform(t *testing.T) {
	withoutFrontendImage(t)
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json", `CMD ["--version"]`, "ENV GREETING_FROM=manifest"))
	t.Cleanup(func() { removeRunImages(t); noRunContainers(t) })
	bb := busyboxOf(t, c)
	if out, stderr, code := pluginRun(t, engineEnv, nil, "--entrypoint", bb, df, "sh", "-c", "echo $GREETING_FROM"); code != 0 || strings.TrimSpace(out) != "manifest" {
		t.Errorf("manifest: exit %d, %q\n%s", code, out, stderr)
	}
	if out, stderr, code := pluginRun(t, engineEnv, nil, os.Getenv("TESTBED_BUSYBOX_IMAGE"), "echo", "an image"); code != 0 || strings.TrimSpace(out) != "an image" {
		t.Errorf("image: exit %d, %q\n%s", code, out, stderr)
	}

	dir := multiarchClosures(t, "run")
	out, stderr, code := pluginRun(t, engineEnv, nil, "--platform", "linux/mips64le", filepath.Join(dir, "result-mips64el-linux"))
	if code != 0 || !strings.Contains(out, "arch=mips64le") {
		t.Errorf("--platform linux/mips64le: exit %d, %q\n%s", code, out, stderr)
	}
}

// TestRunUnrunnablePlatform: `docker storepack run --platform P` on a host
// that runs no P programs says so in one line, exit 125, before building,
// loading or starting anything. s390x stands for such a platform: no test
// uses it, and its qemu entry is disabled for the test.
func TestRunUnrunnablePlatform(t *testing.T) {
	installPlugin(t)
	const entry = "/proc/sys/fs/binfmt_misc/qemu-s390x"
	if data, err := os.ReadFile(entry); err == nil && strings.HasPrefix(string(data), "enabled") {
		if err := os.WriteFile(entry, []byte("0"), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.WriteFile(entry, []byte("1"), 0) })
	}
	c := nixClosure(t)
	t.Cleanup(func() { removeRunImages(t); noRunContainers(t) })
	images := imageIDs(t)
	for name, input := range map[string]string{"a closure": filepath.Join(c.dir, "result"), "an image": os.Getenv("TESTBED_BUSYBOX_IMAGE")} {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := pluginRun(t, engineEnv, nil, "--platform", "linux/s390x", input, "true")
			if code != 125 {
				t.Errorf("exit %d, want 125\n%s%s", code, out, stderr)
			}
			msg := strings.TrimSpace(stderr)
			if !strings.Contains(msg, "this host runs no linux/s390x programs") || !strings.Contains(msg, "qemu-user-static") || strings.Contains(msg, "\n") {
				t.Errorf("stderr is not the one line naming the platform and the emulator to install:\n%s", stderr)
			}
		})
	}
	if after := imageIDs(t); !slices.Equal(after, images) {
		t.Errorf("images before %v, after %v", images, after)
	}
}

// TestRunInterrupted: SIGINT to `docker storepack run` stops the container
// and leaves none; SIGINT while the image is built leaves no image, no
// container and no temporary directory.
func TestRunInterrupted(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	result := filepath.Join(c.dir, "result")
	bb := busyboxOf(t, c)
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", runTag); noRunContainers(t) })
	loop := `trap "echo got INT; exit 130" INT; trap "echo got TERM; exit 143" TERM; echo started; while :; do ` + bb + ` sleep 1; done`

	for _, to := range []string{"docker", "plugin"} {
		t.Run("running, SIGINT to "+to, func(t *testing.T) {
			run := containerCommand(engineEnv, "docker", "storepack", "run", "--entrypoint", bb, result, "sh", "-c", loop)
			stdout, stderr := startContainer(t, run)
			target := run.Process.Pid
			if to == "plugin" {
				// The plugin is docker's child: a terminal's SIGINT reaches both.
				target = pluginPid(t, run.Process.Pid)
			}
			if err := syscall.Kill(target, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stdout)
			if err := run.Wait(); err == nil {
				t.Errorf("an interrupted run exited 0")
			}
			if !strings.Contains(string(rest), "got ") {
				t.Errorf("the container got no signal: %q\n%s", rest, stderr.String())
			}
			noRunContainers(t)
		})
	}

	t.Run("building", func(t *testing.T) {
		// The build is still running when the signal comes: the signal
		// follows the transfer's start.
		path := bigStorePath(t, 7)
		tmp := t.TempDir()
		run := containerCommand(append([]string{"TMPDIR=" + tmp}, engineEnv...), "docker", "storepack", "run", "--progress=plain", "--entrypoint", "/none", path)
		progress, err := run.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		var seen strings.Builder
		lines := bufio.NewScanner(progress)
		for lines.Scan() {
			seen.WriteString(lines.Text() + "\n")
			if strings.Contains(lines.Text(), "transfer layer 1/1") {
				break
			}
		}
		if err := syscall.Kill(run.Process.Pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(progress)
		seen.Write(rest)
		if err := run.Wait(); err == nil {
			t.Errorf("an interrupted build exited 0:\n%s", seen.String())
		}
		name := "storepack/bigdata:latest"
		if r := cmd(nil, bed.docker, "image", "inspect", name); r.err == nil {
			t.Errorf("%s was tagged although the build was interrupted:\n%s", name, seen.String())
			cmd(nil, bed.docker, "rmi", "-f", name)
		}
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
		noRunContainers(t)
	})
}

// removeRunImages removes every image that runs tagged.
// startContainer starts run and reads its standard output up to the line
// "started", which the container's program prints once it runs; the
// output that follows is left to read.
func startContainer(t *testing.T, run boundedCmd) (stdout io.Reader, stderr *bytes.Buffer) {
	t.Helper()
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = &bytes.Buffer{}
	run.Stderr = stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "started" {
		t.Fatalf("the container did not start: %q\n%s", lines.Text(), stderr.String())
	}
	return stdout, stderr
}

func removeRunImages(t *testing.T) {
	t.Helper()
	if ids := strings.Fields(must(t, nil, bed.docker, "images", "-q", "--filter", "reference=storepack/*")); len(ids) > 0 {
		cmd(nil, bed.docker, append([]string{"rmi", "-f"}, ids...)...)
	}
}

// pluginPid is the docker-storepack process that docker started as pid.
func pluginPid(t *testing.T, docker int) int {
	t.Helper()
	out := strings.TrimSpace(must(t, nil, "pgrep", "-P", fmt.Sprint(docker), "-f", "docker-storepack"))
	var pid int
	if _, err := fmt.Sscan(out, &pid); err != nil {
		t.Fatalf("no plugin process under docker (%d): %q", docker, out)
	}
	return pid
}

// TestRunGuixStore runs a Guix-style closure from a store kept under a
// directory (--store-root), found by scanning it: /gnu/store paths, no
// database, no GRAPH.
func TestRunGuixStore(t *testing.T) {
	installPlugin(t)
	t.Cleanup(func() { removeRunImages(t); noRunContainers(t) })
	g := guixClosure(t)
	root, busybox, data, app := g.root, g.busybox, g.data, g.app

	out, stderr, code := pluginRun(t, engineEnv, nil, "--store-root", root, filepath.Join(root, "result"))
	if code != 0 || strings.TrimSpace(out) != "hello from guix" {
		t.Fatalf("exit %d, %q\n%s", code, out, stderr)
	}
	const tag = "storepack/hello:latest"
	var plan struct {
		Layers []struct{ Paths []string } `json:"layers"`
	}
	if err := json.Unmarshal([]byte(must(t, nil, bed.docker, "image", "inspect", "-f", `{{index .Config.Labels "dev.storepack.plan"}}`, tag)), &plan); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, l := range plan.Layers {
		paths = append(paths, l.Paths...)
	}
	slices.Sort(paths)
	if want := []string{busybox, data, app}; !slices.Equal(paths, sortedCopy(want)) {
		t.Errorf("the image holds %v, want the closure %v", paths, want)
	}
}

// guixStore is a Guix-style closure in a store kept under root: result
// links to app, whose script runs busybox on data; another store path
// that nothing references lies beside them.
type guixStore struct{ root, busybox, data, app string }

func guixClosure(t *testing.T) guixStore {
	t.Helper()
	root := testdir.ForStore(t)
	path := func(hash, name string) string { return "/gnu/store/" + strings.Repeat(hash, 32) + "-" + name }
	g := guixStore{root: root, busybox: path("b", "busybox-1.36.1"), data: path("d", "greeting-1.0"), app: path("h", "hello-2.12.1")}
	write := func(p, content string, mode os.FileMode) {
		t.Helper()
		f := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox") // Debian's static busybox, from the test bed
	if err != nil {
		t.Fatal(err)
	}
	write(g.busybox+"/bin/busybox", string(bb), 0o555)
	write(g.data+"/share/greeting.txt", "hello from guix\n", 0o444)
	write(g.app+"/bin/hello", "#!"+g.busybox+"/bin/busybox sh\nexec "+g.busybox+"/bin/busybox cat "+g.data+"/share/greeting.txt\n", 0o555)
	write(path("x", "unrelated-1.0")+"/share/README", "not in the closure\n", 0o444)
	if err := os.Symlink(g.app, filepath.Join(root, "result")); err != nil {
		t.Fatal(err)
	}
	return g
}

// bigStorePath adds to the store a path named bigdata holding 256 MiB, big
// enough that a build or a digest of it is still running when a test
// interrupts it; seed makes its content, hence its store path, its own.
func bigStorePath(t *testing.T, seed int) string {
	t.Helper()
	big := filepath.Join(t.TempDir(), "bigdata")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 256<<20)
	for i := range data {
		data[i] = byte(i*seed + i>>9)
	}
	if err := os.WriteFile(filepath.Join(big, "blob"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(must(t, nil, "nix-store", "--add", big))
}
