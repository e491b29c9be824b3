//go:build e2e

// Package e2e drives storepack against real engines: Debian's Docker Engine
// 20.10 (the Chain path), buildkitd through buildx (the Merge path), a
// registry and Nix-built store closures. TestMain starts them all under one
// temporary directory with hack/testbed.sh and stops them at the end.
//
//	go test -tags e2e ./e2e/
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bed is the running test bed.
var bed struct {
	repo     string // repository root
	dir      string // everything the test bed started lives here
	registry string // host:port of the local registry
	docker   string // Debian's docker client, for Docker 20.10's BuildKit
	frontend string // the frontend image in the registry
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (code int, err error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return 1, err
	}
	bed.repo = repo
	dir, err := os.MkdirTemp("", "storepack-e2e-")
	if err != nil {
		return 1, err
	}
	bed.dir = dir
	testbed := filepath.Join(repo, "hack", "testbed.sh")
	defer func() {
		if code != 0 {
			cmd := exec.Command(testbed, "logs", dir)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			_ = cmd.Run()
		}
		cmd := exec.Command(testbed, "down", dir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if derr := cmd.Run(); derr != nil && err == nil {
			err = fmt.Errorf("testbed down: %w", derr)
		}
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = rerr
		}
	}()
	for _, args := range [][]string{{"install"}, {"up", dir}} {
		cmd := exec.Command(testbed, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 1, fmt.Errorf("testbed %s: %w", args[0], err)
		}
	}
	if err := loadEnv(filepath.Join(dir, "env")); err != nil {
		return 1, err
	}
	bed.registry = os.Getenv("STOREPACK_REGISTRY")
	bed.docker = os.Getenv("STOREPACK_DOCKER")
	if err := installFrontend(); err != nil {
		return 1, err
	}
	if err := loadFrontendIntoEngines(); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

// loadEnv applies the test bed's env file (bash export lines) to this process.
func loadEnv(file string) error {
	out, err := exec.Command("bash", "-c", `set -a; source "$1"; env -0`, "bash", file).Output()
	if err != nil {
		return fmt.Errorf("source %s: %w", file, err)
	}
	for _, kv := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			os.Setenv(k, v)
		}
	}
	return nil
}

// installFrontend builds the frontend image into the test engine (where
// `# syntax=storepack` finds it in the local image store) and pushes it to
// the registry, which buildkitd mirrors docker.io to.
func installFrontend() error {
	steps := [][]string{
		{"make", "-C", bed.repo, "--no-print-directory", "build"},
		{"make", "-C", bed.repo, "--no-print-directory", "frontend-image", "DOCKER=" + bed.docker},
	}
	bed.frontend = bed.registry + "/library/storepack:latest"
	steps = append(steps,
		[]string{bed.docker, "tag", "storepack:latest", bed.frontend},
		[]string{bed.docker, "push", bed.frontend},
	)
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

// result is a finished command.
type result struct {
	out  string // stdout and stderr, interleaved
	err  error
	args []string
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\n%s", strings.Join(r.args, " "), r.out)
}

// Every command of a test is bounded, so that a hang fails that test, with
// its name, instead of the whole suite at go test's timeout: a container's
// program must exit within containerBound; anything else (a build of a big
// closure, a Nix build under qemu) within commandBound.
const (
	containerBound = 2 * time.Minute
	commandBound   = 15 * time.Minute
)

// boundedCmd is a command that is killed, with its process group (a plugin
// is the docker CLI's child), when it has not exited within its bound.
type boundedCmd struct {
	*exec.Cmd
	ctx    context.Context
	cancel context.CancelFunc
	bound  time.Duration
}

// boundedCommand is name args with the test bed's environment plus env,
// bounded by bound.
func boundedCommand(bound time.Duration, env []string, name string, args ...string) boundedCmd {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	c := exec.CommandContext(ctx, name, args...)
	c.Env = append(os.Environ(), env...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	// A killed process's children may still hold its output open.
	c.WaitDelay = 5 * time.Second
	return boundedCmd{Cmd: c, ctx: ctx, cancel: cancel, bound: bound}
}

// containerCommand is argv, a command that runs a container (docker run or
// docker storepack run: a "run" word, then its options), bounded by
// containerBound. The container gets a label of its own so that, when the
// bound passes, it is removed as the client is killed: a hung program
// leaves nothing running.
func containerCommand(env []string, argv ...string) boundedCmd {
	return containerCommandWithin(containerBound, env, argv...)
}

func containerCommandWithin(bound time.Duration, env []string, argv ...string) boundedCmd {
	at := slices.Index(argv, "run") + 1
	if at == 0 {
		panic(fmt.Sprintf("containerCommand: %q runs no container", argv))
	}
	nonce := make([]byte, 8)
	rand.Read(nonce)
	label := "dev.storepack.e2e=" + hex.EncodeToString(nonce)
	argv = slices.Insert(slices.Clone(argv), at, "--label", label)
	c := boundedCommand(bound, env, argv[0], argv[1:]...)
	kill := c.Cancel
	c.Cancel = func() error {
		err := kill()
		if ids := strings.Fields(cmd(nil, bed.docker, "ps", "-a", "-q", "--filter", "label="+label).out); len(ids) > 0 {
			cmd(nil, bed.docker, append([]string{"rm", "-f"}, ids...)...)
		}
		return err
	}
	return c
}

// Wait waits for the command and releases its bound; the error says when
// the bound killed it.
func (c boundedCmd) Wait() error {
	defer c.cancel()
	err := c.Cmd.Wait()
	if c.ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("still running after %s, killed: %v", c.bound, err)
	}
	return err
}

// Run starts the command and waits for it.
func (c boundedCmd) Run() error {
	if err := c.Start(); err != nil {
		c.cancel()
		return err
	}
	return c.Wait()
}

// cmd runs a command with the test bed's environment plus env.
func cmd(env []string, name string, args ...string) result {
	return cmdWithin(commandBound, env, name, args...)
}

// cmdWithin is cmd bounded by bound.
func cmdWithin(bound time.Duration, env []string, name string, args ...string) result {
	c := boundedCommand(bound, env, name, args...)
	var buf bytes.Buffer
	c.Stdout, c.Stderr = &buf, &buf
	err := c.Run()
	return result{out: buf.String(), err: err, args: append([]string{name}, args...)}
}

// dockerRun runs `docker run ARGS` on Docker 20.10, bounded by
// containerBound, and returns its stdout.
func dockerRun(t *testing.T, args ...string) string {
	t.Helper()
	c := containerCommand(nil, append([]string{bed.docker, "run"}, args...)...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		t.Fatalf("docker run %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// must runs a command and fails the test if it fails.
func must(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	r := cmd(env, name, args...)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r)
	}
	return r.out
}

// engineBuild runs `docker build` on Docker 20.10's own BuildKit.
func engineBuild(t *testing.T, args ...string) result {
	t.Helper()
	return cmd([]string{"DOCKER_BUILDKIT=1", "BUILDKIT_PROGRESS=plain"}, bed.docker, append([]string{"build", "--progress=plain"}, args...)...)
}

// buildxBuild runs `docker buildx build` on the test bed's buildkitd.
func buildxBuild(t *testing.T, args ...string) result {
	t.Helper()
	return cmd(nil, "docker", append([]string{"buildx", "build", "--builder", os.Getenv("BUILDX_BUILDER"), "--progress=plain"}, args...)...)
}

// checkNotTagged fails t when tag names an image in the engine (after a
// build that should have failed), and removes it for the tests after.
func checkNotTagged(t *testing.T, tag string) {
	t.Helper()
	if cmd(nil, bed.docker, "image", "inspect", tag).err == nil {
		t.Errorf("%s was tagged", tag)
		cmd(nil, bed.docker, "rmi", "-f", tag)
	}
}

// writeFile writes a test file and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestContainerBound: a container whose program does not exit fails its
// command at the bound, through docker run and docker storepack run, and is
// removed with its client.
func TestContainerBound(t *testing.T) {
	installPlugin(t)
	image := os.Getenv("TESTBED_BUSYBOX_IMAGE")
	for name, argv := range map[string][]string{
		"docker run":           {bed.docker, "run", "--rm", image, "sleep", "600"},
		"docker storepack run": {"docker", "storepack", "run", image, "sleep", "600"},
	} {
		t.Run(name, func(t *testing.T) {
			const bound = 5 * time.Second
			c := containerCommandWithin(bound, engineEnv, argv...)
			var out bytes.Buffer
			c.Stdout, c.Stderr = &out, &out
			start := time.Now()
			err := c.Run()
			if err == nil || !strings.Contains(err.Error(), "still running after 5s, killed") {
				t.Errorf("error %v, want the bound's\n%s", err, out.String())
			}
			if took := time.Since(start); took > bound+c.WaitDelay+30*time.Second {
				t.Errorf("returned after %s", took)
			}
			label := c.Args[slices.Index(c.Args, "--label")+1]
			if ids := strings.TrimSpace(must(t, nil, bed.docker, "ps", "-a", "-q", "--filter", "label="+label)); ids != "" {
				t.Errorf("containers left: %s", ids)
				cmd(nil, bed.docker, "rm", "-f", ids)
			}
		})
	}
}
