//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rootlessUser is the unprivileged user hack/testbed.sh install creates,
// with subordinate ids, for rootless Podman.
const rootlessUser = "storepack-rootless"

// rootless is Podman run as rootlessUser, with its storage, runtime and
// config dirs of its own under dir, and a PATH that holds storepack (the
// plugin binary named storepack), Podman and what Podman runs, and no
// docker.
type rootless struct {
	dir      string
	uid, gid int
	env      []string
}

// newRootless sets up a rootless Podman for t, emptied and removed when t
// ends.
func newRootless(t *testing.T) *rootless {
	t.Helper()
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		t.Fatalf("no user %s (run: hack/testbed.sh install): %v", rootlessUser, err)
	}
	r := &rootless{}
	r.uid, _ = strconv.Atoi(u.Uid)
	r.gid, _ = strconv.Atoi(u.Gid)
	if r.dir, err = os.MkdirTemp("", "storepack-podman-"); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(r.dir, "bin")
	for _, d := range []string{"bin", "home", "data", "config", "run", "tmp"} {
		if err := os.Mkdir(filepath.Join(r.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"podman", "newuidmap", "newgidmap", "slirp4netns", "fuse-overlayfs", "fusermount3", "runc"} {
		if err := os.Symlink("/usr/bin/"+name, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	plugin, err := os.ReadFile(filepath.Join(bed.repo, "bin", "docker-storepack"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "storepack"), plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, nil, "chown", "-R", u.Uid+":"+u.Gid, r.dir)
	if err := os.Chmod(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.env = []string{"HOME=" + filepath.Join(r.dir, "home"), "USER=" + rootlessUser, "PATH=" + bin,
		"XDG_DATA_HOME=" + filepath.Join(r.dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(r.dir, "config"),
		"XDG_RUNTIME_DIR=" + filepath.Join(r.dir, "run"), "TMPDIR=" + filepath.Join(r.dir, "tmp")}
	t.Cleanup(func() {
		r.cmd(nil, "podman", "rm", "--all", "--force", "--time", "0")
		r.cmd(nil, "podman", "system", "reset", "--force")
		// Podman's pause process holds the user namespace of this state.
		if pid, err := os.ReadFile(filepath.Join(r.dir, "run", "libpod", "tmp", "pause.pid")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
		}
		if left, _ := os.ReadDir(filepath.Join(r.dir, "tmp")); len(left) > 0 {
			t.Errorf("left in TMPDIR: %v", left)
		}
		os.RemoveAll(r.dir)
	})
	return r
}

// command is argv as the rootless user, with r's environment plus env
// only, bounded by bound.
func (r *rootless) command(bound time.Duration, env []string, argv ...string) boundedCmd {
	args := append([]string{"-u", rootlessUser, "--", "env", "-i"}, r.env...)
	args = append(append(args, env...), argv...)
	return boundedCommand(bound, nil, "runuser", args...)
}

// cmd runs argv as the rootless user.
func (r *rootless) cmd(env []string, argv ...string) (stdout, stderr string, code int, err error) {
	c := r.command(commandBound, env, argv...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err = c.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		code, err = exit.ExitCode(), nil
	}
	return out.String(), errOut.String(), code, err
}

// must runs argv as the rootless user and fails t unless it exits 0.
func (r *rootless) must(t *testing.T, env []string, argv ...string) string {
	t.Helper()
	out, errOut, code, err := r.cmd(env, argv...)
	if err != nil || code != 0 {
		t.Fatalf("%s: exit %d, %v\n%s%s", strings.Join(argv, " "), code, err, out, errOut)
	}
	return out
}

// run runs `storepack run ARGS` as the rootless user, bounded as a
// container's program.
func (r *rootless) run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return r.runInput(t, env, nil, args...)
}

// runInput is run with standard input.
func (r *rootless) runInput(t *testing.T, env []string, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	c := r.command(containerBound, env, append([]string{"storepack", "run"}, args...)...)
	c.Stdin = stdin
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("storepack run %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), code
}

// images lists the IDs of the images Podman holds.
func (r *rootless) images(t *testing.T) []string {
	t.Helper()
	ids := strings.Fields(r.must(t, nil, "podman", "images", "--all", "--quiet", "--no-trunc"))
	slices.Sort(ids)
	return ids
}

// imageChanges lists Podman's image events between two times that change
// its images (a load, a tag, a removal): podman run itself writes a "pull"
// event for the local image it resolves, which is left out.
func (r *rootless) imageChanges(t *testing.T, since, until time.Time) []string {
	t.Helper()
	out := r.must(t, nil, "podman", "events", "--stream=false", "--filter", "type=image", "--format", "{{.Status}} {{.ID}}",
		"--since", strconv.FormatInt(since.Unix(), 10), "--until", strconv.FormatInt(until.Unix()+1, 10))
	var changes []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if status, _, _ := strings.Cut(line, " "); line != "" && status != "pull" {
			changes = append(changes, line)
		}
	}
	return changes
}

// inspect is Podman's view of an image.
type podmanImage struct {
	ID           string `json:"Id"`
	Os           string
	Architecture string
	RootFS       struct{ Layers []string }
}

func (r *rootless) inspect(t *testing.T, ref string) podmanImage {
	t.Helper()
	var list []podmanImage
	if err := json.Unmarshal([]byte(r.must(t, nil, "podman", "image", "inspect", "--format", "json", ref)), &list); err != nil || len(list) != 1 {
		t.Fatalf("podman image inspect %s: %v", ref, err)
	}
	return list[0]
}

// readableBy makes dir and its parent (a test's temp dir) readable by
// every user, so that the rootless user reads the closure's result link.
func readableBy(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// buildkitFor lets the rootless user reach the test bed's buildkitd and
// returns its BUILDKIT_HOST.
func buildkitFor(t *testing.T, r *rootless) string {
	t.Helper()
	host := os.Getenv("BUILDKIT_HOST")
	sock := strings.TrimPrefix(host, "unix://")
	if err := os.Chmod(bed.dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sock, 0, r.gid); err != nil {
		t.Fatal(err)
	}
	return host
}

// podmanClosure is a rootless Podman for t and the test closure, readable
// by its user.
func podmanClosure(t *testing.T) (*rootless, closure) {
	t.Helper()
	r := newRootless(t)
	c := nixClosure(t)
	readableBy(t, c.dir)
	return r, c
}

// TestPodmanRun: as an unprivileged user with rootless Podman and no
// docker and no builder, `storepack run ./result` writes the image on the
// host, loads it into Podman and runs it: the program's output and exit code, a published port
// that answers, a volume whose files the user owns; a second run of the
// same result neither builds nor loads, and needs no builder.
func TestPodmanRun(t *testing.T) {
	r, c := podmanClosure(t)
	result, bb := filepath.Join(c.dir, "result"), busyboxOf(t, c)

	out, progress, code := r.run(t, nil, "--progress=plain", result)
	if code != 0 || strings.TrimSpace(out) != greeting {
		t.Fatalf("run printed %q, exit %d, want %q\n%s", out, code, greeting, progress)
	}
	if !strings.Contains(progress, "write the image on the host and load it into the engine (no builder needed)") {
		t.Errorf("the first run did not write the image on the host:\n%s", progress)
	}
	id := r.inspect(t, runTag).ID

	// No builder named: a build would fail.
	since := time.Now()
	out, progress, code = r.run(t, nil, result)
	until := time.Now()
	if code != 0 || strings.TrimSpace(out) != greeting {
		t.Fatalf("second run printed %q, exit %d\n%s", out, code, progress)
	}
	if strings.Contains(progress, "building with") {
		t.Errorf("the second run built again:\n%s", progress)
	}
	if events := r.imageChanges(t, since, until); len(events) > 0 {
		t.Errorf("the second run changed Podman's images: %v", events)
	}
	if now := r.inspect(t, runTag).ID; now != id {
		t.Errorf("the image changed from %s to %s", id, now)
	}

	for _, tc := range append(containerCases(t, c, r.dir), []runCase{
		// Unlike docker, podman run does not create a -w directory.
		{name: "user and workdir", args: []string{"-u", "1000:1000", "-w", c.root.String() + "/bin", "--entrypoint", bb, result, "sh", "-c", bb + " id -u; " + bb + " pwd"}, stdout: "1000\n" + c.root.String() + "/bin"},
		{name: "files owned by root in the container", args: []string{"--entrypoint", bb, result, "stat", "-c", "%u:%g %Y", c.root.String()}, stdout: "0:0 1"},
	}...) {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := r.runInput(t, tc.env, strings.NewReader(tc.stdin), tc.args...)
			if code != tc.code || strings.TrimSpace(out) != tc.stdout || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, stderr with %q", code, out, errOut, tc.code, tc.stdout, tc.stderr)
			}
		})
	}

	t.Run("volume", func(t *testing.T) {
		vol := filepath.Join(r.dir, "vol")
		r.must(t, nil, "/usr/bin/mkdir", vol)
		if out, errOut, code := r.run(t, nil, "-v", vol+":/out", "--entrypoint", bb, result, "sh", "-c", "echo written > /out/f"); code != 0 {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
		fi, err := os.Stat(filepath.Join(vol, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != r.uid || int(st.Gid) != r.gid {
			t.Errorf("the file is owned by %d:%d, want %s's %d:%d", st.Uid, st.Gid, rootlessUser, r.uid, r.gid)
		}
	})

	t.Run("published port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		www := pathNamed(t, c, "greeting-data") + "/share"
		out, errOut, code := r.run(t, nil, "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port),
			"--entrypoint", bb, result, "httpd", "-f", "-p", "8080", "-h", www)
		if code != 0 {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
		t.Cleanup(func() { r.cmd(nil, "podman", "rm", "--force", "--time", "0", "web") })
		body, err := getWhenReady(fmt.Sprintf("http://127.0.0.1:%d/greeting.txt", port))
		if err != nil {
			t.Fatal(err)
		}
		if want := readFile(t, www+"/greeting.txt"); body != want {
			t.Errorf("the port answered %q, want %q", body, want)
		}
	})
}

// TestPodmanSignals: a signal to `storepack run` (podman run, once the
// image is there) reaches the container's program, whose exit code is the
// run's, and --rm leaves no container.
func TestPodmanSignals(t *testing.T) {
	r, c := podmanClosure(t)
	result, bb := filepath.Join(c.dir, "result"), busyboxOf(t, c)
	loop := `trap "echo got INT; exit 130" INT; trap "echo got TERM; exit 143" TERM; echo started; while :; do ` + bb + ` sleep 1; done`
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{{syscall.SIGINT, "INT", 130}, {syscall.SIGTERM, "TERM", 143}} {
		t.Run(tc.name, func(t *testing.T) {
			run := r.command(containerBound, nil, "storepack", "run", "--entrypoint", bb, result, "sh", "-c", loop)
			stdout, stderr := startContainer(t, run)
			// runuser's child: storepack, which became podman.
			out := strings.TrimSpace(must(t, nil, "pgrep", "-P", strconv.Itoa(run.Process.Pid), "-x", "podman"))
			pid, err := strconv.Atoi(out)
			if err != nil {
				t.Fatalf("no podman process under runuser (%d): %q", run.Process.Pid, out)
			}
			if err := syscall.Kill(pid, tc.sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stdout)
			err = run.Wait()
			if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != tc.code {
				t.Errorf("the run ended with %v, want exit %d\n%s", err, tc.code, stderr.String())
			}
			if !strings.Contains(string(rest), "got "+tc.name) {
				t.Errorf("the container did not get SIG%s: %q\n%s", tc.name, rest, stderr.String())
			}
			if left := strings.TrimSpace(r.must(t, nil, "podman", "ps", "--all", "--quiet")); left != "" {
				t.Errorf("containers left: %s", left)
			}
		})
	}
}

// TestPodmanErrors: with neither Podman nor a docker engine, and when a
// manifest with RUN has no BuildKit daemon (none named, or it does not
// answer), run and load say so in one line and Podman holds no new image.
func TestPodmanErrors(t *testing.T) {
	r, c := podmanClosure(t)
	result := filepath.Join(c.dir, "result")
	withRun := writeFile(t, c.dir, "with-run.storepack", fromManifest(bed.registry+"/library/busybox:latest", "./result", "path-info.json", "RUN true"))
	archive := filepath.Join(r.dir, "image.tar")
	r.must(t, nil, "podman", "pull", "--quiet", "--tls-verify=false", bed.registry+"/library/busybox:latest")
	r.must(t, nil, "podman", "save", "--quiet", "--format", "oci-archive", "-o", archive, bed.registry+"/library/busybox:latest")
	r.must(t, nil, "podman", "rmi", "--all")
	// The default docker socket, which the user may not reach either.
	noEngine := []string{"PATH=" + filepath.Join(r.dir, "nothing")}
	for _, tc := range []struct {
		name string
		env  []string
		argv []string
		code int
		want string
	}{
		{"run: no podman, no docker", noEngine, []string{filepath.Join(r.dir, "bin", "storepack"), "run", result}, 125, "no container engine: no docker engine answers at unix://"},
		{"load: no podman, no docker", noEngine, []string{filepath.Join(r.dir, "bin", "storepack"), "load", archive}, 1, "and podman is not on PATH; start dockerd, or install Podman"},
		{"run: RUN, BuildKit not answering", []string{"BUILDKIT_HOST=unix://" + filepath.Join(r.dir, "none.sock")}, []string{"storepack", "run", withRun}, 125, `cannot reach the builder "unix://`},
		{"run: RUN with no BuildKit", nil, []string{"storepack", "run", withRun}, 125, "this manifest has FROM, COPY or RUN, which need a BuildKit daemon to build for Podman, and none is named: start buildkitd"},
		{"run: an unknown runtime", []string{"STOREPACK_RUNTIME=lxc"}, []string{"storepack", "run", result}, 125, "STOREPACK_RUNTIME=lxc: want docker or podman"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.images(t)
			out, errOut, code, err := r.cmd(tc.env, tc.argv...)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n"); out != "" || len(lines) != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("stdout %q, stderr %q; want one line with %q", out, errOut, tc.want)
			}
			if after := r.images(t); !slices.Equal(before, after) {
				t.Errorf("Podman's images changed from %v to %v", before, after)
			}
		})
	}
}

// TestPodmanLoad: `storepack load --runtime podman` of a four-platform OCI
// archive loads the host's platform, and --platform linux/arm/v7 an image
// that runs under qemu; Podman gets the image the docker engine gets from
// the same archive: the same ID and layer digests.
func TestPodmanLoad(t *testing.T) {
	installPlugin(t)
	r := newRootless(t)
	dir := multiarchClosures(t, "podman")
	mf := multiarchManifest(t, dir, "LINK /bin -> bin", `ENTRYPOINT ["/bin/hello"]`)
	oci := filepath.Join(r.dir, "multi.tar")
	mustPluginEnv(t, buildkitEnv, "build", "-q", "-f", mf, "--platform", strings.Join(systemPlatforms(), ","),
		"-o", "type=oci,dest="+oci+",name=storepack-e2e/podman:archive", dir)
	if err := os.Chmod(oci, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		tag, arch string
		args      []string
	}{
		{"storepack-e2e/podman:host", "amd64", nil},
		{"storepack-e2e/podman:arm", "arm", []string{"--platform", "linux/arm/v7"}},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			r.must(t, nil, append(append([]string{"storepack", "load", "--runtime", "podman", "-t", tc.tag}, tc.args...), oci)...)
			if img := r.inspect(t, tc.tag); img.Os+"/"+img.Architecture != "linux/"+tc.arch {
				t.Errorf("%s is %s/%s, want linux/%s", tc.tag, img.Os, img.Architecture, tc.arch)
			}
			out, errOut, code := r.run(t, nil, append(tc.args, tc.tag)...)
			if code != 0 || !strings.Contains(out, "arch="+tc.arch+"\n") || !strings.Contains(out, greeting) {
				t.Errorf("run %s: exit %d, printed %q, want arch=%s and %q\n%s", tc.tag, code, out, tc.arch, greeting, errOut)
			}
			// The Docker path, from the same archive.
			docker := "storepack-e2e/podman-docker:" + tc.arch
			loadOK(t, nil, append(append([]string{"-t", docker}, tc.args...), oci)...)
			t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", docker) })
			id := strings.TrimSpace(must(t, nil, bed.docker, "image", "inspect", "-f", "{{.Id}}", docker))
			if img := r.inspect(t, tc.tag); "sha256:"+img.ID != id {
				t.Errorf("Podman's image is sha256:%s, the engine's %s", img.ID, id)
			} else if want := inspectImage(t, docker).RootFS.Layers; !slices.Equal(img.RootFS.Layers, want) {
				t.Errorf("Podman's layers\n%s\nthe engine's\n%s", strings.Join(img.RootFS.Layers, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestPodmanManifests: manifests built by the rootless user run under
// rootless Podman: one with FROM and RUN, built through buildkitd, with
// the RUN's changes; one with ACCOUNT, written on the host, which runs as
// that non-root user, at home in the directory it owns.
func TestPodmanManifests(t *testing.T) {
	r, c := podmanClosure(t)
	bb := busyboxOf(t, c)
	buildkit := []string{"BUILDKIT_HOST=" + buildkitFor(t, r)}
	for _, tc := range []struct {
		name, text    string
		opts, command []string
		want          string
	}{
		{"run", fromManifest(bed.registry+"/library/busybox:latest", "./result", "path-info.json", `RUN touch /marker && echo "$PROGRAM" > /program`),
			nil, []string{"sh", "-c", "cat /program; ls /marker"}, c.root.String() + "/bin/hello\n/marker\n"},
		{"account", manifest("./result", "path-info.json", "ACCOUNT --uid=1001 app"),
			[]string{"--entrypoint", bb}, []string{"sh", "-c", bb + " id -un; " + bb + " id -u; " + bb + " touch /home/app/f && echo wrote"}, "app\n1001\nwrote\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mf := writeFile(t, c.dir, tc.name+".storepack", tc.text)
			args := append(append(append([]string{"--progress=plain"}, tc.opts...), mf), tc.command...)
			out, errOut, code := r.run(t, buildkit, args...)
			if code != 0 || out != tc.want {
				t.Errorf("exit %d, printed %q, want %q\n%s", code, out, tc.want, errOut)
			}
		})
	}
}
