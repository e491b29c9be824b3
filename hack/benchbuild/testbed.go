package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// bed is a test bed that hack/testbed.sh started for this run alone.
type bed struct {
	repo     string
	dir      string
	env      []string // this process's environment with the test bed's exports
	vars     map[string]string
	docker   string // Debian's Docker 20.10 client
	registry string // host:port
	plugin   string // this run's copy of bin/docker-storepack
	baseline string // this run's copy of -baseline's binary; "": none
	daemons  []int  // dockerd and buildkitd: the builders' processes descend from them
	log      io.Writer
	stops    []func() // stop what the harness started beside the bed, before it goes down
}

// startBed installs the tools if needed (a no-op when done), starts a
// test bed under dir, and installs the plugin and the frontend image into
// it. The caller runs down even when startBed fails.
func startBed(ctx context.Context, repo, dir, binDir, baseline string, log io.Writer) (*bed, error) {
	b := &bed{repo: repo, dir: dir, log: log}
	testbed := filepath.Join(repo, "hack", "testbed.sh")
	for _, args := range [][]string{{"install"}, {"up", dir}} {
		fmt.Fprintf(log, "benchbuild: hack/testbed.sh %s\n", strings.Join(args, " "))
		if _, err := b.run(ctx, nil, testbed, args...); err != nil {
			return b, err
		}
	}
	out, err := exec.CommandContext(ctx, "bash", "-c", `set -a; source "$1"; env -0`, "bash", filepath.Join(dir, "env")).Output()
	if err != nil {
		return b, fmt.Errorf("source %s/env: %w", dir, err)
	}
	b.vars = map[string]string{}
	for kv := range strings.SplitSeq(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			b.vars[k] = v
			b.env = append(b.env, kv)
		}
	}
	b.docker, b.registry = b.vars["STOREPACK_DOCKER"], b.vars["STOREPACK_REGISTRY"]
	if b.docker == "" || b.registry == "" {
		return b, fmt.Errorf("%s/env lacks STOREPACK_DOCKER or STOREPACK_REGISTRY", dir)
	}
	for _, name := range []string{"dockerd", "buildkitd"} {
		data, err := os.ReadFile(filepath.Join(dir, "pids", name+".pid"))
		if err != nil {
			return b, fmt.Errorf("the test bed's %s: %w", name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return b, fmt.Errorf("the test bed's %s pid: %w", name, err)
		}
		b.daemons = append(b.daemons, pid)
	}

	// As the e2e suite does: the plugin and the frontend image from this
	// working tree; the frontend in the engine's image store (where
	// `# syntax=storepack` finds it) and in the registry (where buildkitd's
	// docker.io mirror finds it).
	fmt.Fprintln(log, "benchbuild: make build frontend-image")
	frontend := b.registry + "/library/storepack:latest"
	for _, s := range [][]string{
		{"make", "-C", repo, "--no-print-directory", "build"},
		{"make", "-C", repo, "--no-print-directory", "frontend-image", "DOCKER=" + b.docker},
		{b.docker, "tag", "storepack:latest", frontend},
		{b.docker, "push", frontend},
	} {
		if _, err := b.run(ctx, nil, s[0], s[1:]...); err != nil {
			return b, err
		}
	}
	// A copy of our own, so that a rebuild of bin/ during the run changes
	// nothing here; installed where `docker storepack` finds it too.
	data, err := os.ReadFile(filepath.Join(repo, "bin", "docker-storepack"))
	if err != nil {
		return b, err
	}
	b.plugin = filepath.Join(binDir, "docker-storepack")
	for _, p := range []string{b.plugin, filepath.Join(b.vars["DOCKER_CONFIG"], "cli-plugins", "docker-storepack")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return b, err
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			return b, err
		}
	}
	if baseline != "" {
		data, err := os.ReadFile(baseline)
		if err != nil {
			return b, fmt.Errorf("-baseline: %w", err)
		}
		b.baseline = filepath.Join(binDir, "docker-storepack-baseline")
		if err := os.WriteFile(b.baseline, data, 0o755); err != nil {
			return b, err
		}
	}
	return b, nil
}

// down stops the test bed; it runs with its own time limit, also after an
// interrupt.
func (b *bed) down() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, stop := range b.stops {
		stop()
	}
	fmt.Fprintf(b.log, "benchbuild: hack/testbed.sh down %s\n", b.dir)
	_, err := b.run(ctx, nil, filepath.Join(b.repo, "hack", "testbed.sh"), "down", b.dir)
	return err
}

// logs prints the daemons' logs, for a failed run.
func (b *bed) logs() {
	c := exec.Command(filepath.Join(b.repo, "hack", "testbed.sh"), "logs", b.dir)
	c.Stdout, c.Stderr = b.log, b.log
	_ = c.Run()
}

// result is a finished command.
type result struct {
	out     string // stdout and stderr interleaved
	elapsed time.Duration
}

// run runs a command with the test bed's environment plus env, and fails
// with its output when it fails.
func (b *bed) run(ctx context.Context, env []string, name string, args ...string) (result, error) {
	return b.runTo(ctx, env, nil, name, args...)
}

// runTo is run with the command's standard output going to stdout, and
// only its standard error in the result; nil stdout: run's.
func (b *bed) runTo(ctx context.Context, env []string, stdout io.Writer, name string, args ...string) (result, error) {
	c := exec.CommandContext(ctx, b.lookPath(name), args...)
	c.Env = append(append(os.Environ(), b.env...), env...)
	var buf bytes.Buffer
	c.Stdout, c.Stderr = cmp.Or[io.Writer](stdout, &buf), &buf
	c.WaitDelay = 10 * time.Second
	start := time.Now()
	err := c.Run()
	r := result{out: buf.String(), elapsed: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(r.out, 60))
	}
	return r, nil
}

// lookPath finds a command on the test bed's PATH (its tools first), which
// exec would not search: it looks at this process's PATH.
func (b *bed) lookPath(name string) string {
	if strings.Contains(name, "/") || b.vars == nil {
		return name
	}
	for dir := range strings.SplitSeq(b.vars["PATH"], ":") {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Environments that select the plugin's builder as a user would: the
// engine's embedded BuildKit, or buildkitd through BUILDKIT_HOST.
var (
	engineEnv   = []string{"BUILDKIT_HOST=", "BUILDX_BUILDER="}
	buildkitEnv = []string{"BUILDX_BUILDER="}
)

// benchImagePrefix starts the name of every image this harness makes.
const benchImagePrefix = "bench-"

// resetEngine removes the harness's images from the engine and prunes its
// build cache: what a cold build starts from. The frontend image stays.
func (b *bed) resetEngine(ctx context.Context) error {
	r, err := b.run(ctx, nil, b.docker, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		return err
	}
	var refs []string
	for line := range strings.SplitSeq(r.out, "\n") {
		if strings.HasPrefix(line, benchImagePrefix) {
			refs = append(refs, line)
		}
	}
	if len(refs) > 0 {
		if _, err := b.run(ctx, nil, b.docker, append([]string{"rmi", "-f"}, refs...)...); err != nil {
			return err
		}
	}
	if _, err := b.run(ctx, nil, b.docker, "image", "prune", "-f"); err != nil {
		return err
	}
	_, err = b.run(ctx, nil, b.docker, "builder", "prune", "-af")
	return err
}

// resetBuildkitd prunes buildkitd's cache, the frontend image's included.
func (b *bed) resetBuildkitd(ctx context.Context) error {
	_, err := b.run(ctx, nil, "buildctl", "--addr", b.vars["BUILDKIT_HOST"], "prune", "--all")
	return err
}
