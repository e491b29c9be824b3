package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/storepack/storepack/store"
)

// scaleoutPlatforms are the platforms the scale-out cases give their
// closures, one each; the first half goes to the first node of the
// two-node builder, the rest to the second.
var scaleoutPlatforms = []string{"linux/amd64", "linux/arm/v7", "linux/386", "linux/mips64le"}

// scaleoutOptions size the scale-out cases: closures closures (one per
// platform) of about mib MiB each.
type scaleoutOptions struct {
	closures int
	mib      int
}

// scaleout is the scale-out cases' closures and builders, made at their
// first reset: N closures of their own (seeds 1..N, so that no two share a
// store path) in one store root, one per platform in one manifest with a
// COPY (so that a builder writes the images, not the plugin alone), and
// two buildx remote builders: one node (the bed's buildkitd, declaring
// every platform), and two nodes (the bed's buildkitd and a buildkitd of
// the harness's own, each declaring half).
type scaleout struct {
	root      string
	manifest  string
	platforms []string
	paths     []store.Path // every store path of the N closures
	secondLog string
	secondAdr string
	// builder names the buildx builders: "one" and "two" (nodes).
	builder map[string]string
}

const scaleoutManifestTail = `COPY scaleout.conf /etc/scaleout.conf
LINK /bin -> bin
ENTRYPOINT ["/bin/bench-app"]
`

// prepareScaleout lays out the closures and starts the second node, once.
func (b *bench) prepareScaleout(ctx context.Context) error {
	if b.scale != nil {
		return nil
	}
	n := b.scaleoutOpt.closures
	s := &scaleout{root: filepath.Join(filepath.Dir(b.work), "scaleout"), platforms: scaleoutPlatforms[:n], builder: map[string]string{}}
	var m strings.Builder
	m.WriteString("# syntax=storepack\n")
	start := time.Now()
	var nar uint64
	for i, p := range s.platforms {
		// The application's files are text, not /usr/bin's programs: the
		// plugin reads a root's binaries for their platform, and refuses
		// amd64 programs as CLOSURE --platform=linux/arm/v7.
		opt := closureOptions{seed: uint64(i + 1), targetBytes: int64(b.scaleoutOpt.mib) << 20, targetPaths: 40, maxPackage: 8 << 20, appBytes: 64 << 10, appDir: "/usr/share/common-licenses"}
		c, err := newClosure(ctx, s.root, opt, b.bed.log)
		if err != nil {
			return fmt.Errorf("scale-out closure %d: %w", i+1, err)
		}
		var graph bytes.Buffer
		if err := store.WritePathInfoJSON(&graph, c.graphs[0]); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.root, fmt.Sprintf("graph-%d.json", i+1)), graph.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.Symlink(c.apps[0].String(), filepath.Join(s.root, fmt.Sprintf("result-%d", i+1))); err != nil {
			return err
		}
		fmt.Fprintf(&m, "CLOSURE --platform=%s ./result-%d\nGRAPH --platform=%s graph-%d.json\n", p, i+1, p, i+1)
		s.paths = append(s.paths, c.paths(0)...)
		nar += c.narBytes[0]
	}
	m.WriteString(scaleoutManifestTail)
	s.manifest = filepath.Join(s.root, "scaleout.storepack")
	if err := os.WriteFile(s.manifest, []byte(m.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.root, "scaleout.conf"), []byte("copied by each node\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(b.bed.log, "benchbuild: scale-out: %d closures, %d store paths, %.1f MiB (NAR), laid out in %.1fs\n",
		n, len(s.paths), float64(nar)/(1<<20), time.Since(start).Seconds())
	b.scale = s
	if err := b.startSecondNode(ctx); err != nil {
		return err
	}
	first := b.bed.vars["BUILDKIT_HOST"]
	half := (n + 1) / 2
	for _, bl := range []struct {
		name  string
		nodes [][2]string // address, platforms
	}{
		{"one", [][2]string{{first, strings.Join(s.platforms, ",")}}},
		{"two", [][2]string{{first, strings.Join(s.platforms[:half], ",")}, {s.secondAdr, strings.Join(s.platforms[half:], ",")}}},
	} {
		name := "bench-scaleout-" + bl.name
		for i, node := range bl.nodes {
			args := []string{"buildx", "create", "--name", name, "--driver", "remote", "--node", fmt.Sprintf("%s-%d", name, i+1), "--platform", node[1]}
			if i > 0 {
				args = append(args, "--append")
			}
			if _, err := b.bed.run(ctx, nil, "docker", append(args, node[0])...); err != nil {
				return err
			}
		}
		s.builder[bl.name] = name
	}
	return nil
}

// startSecondNode starts the two-node builder's second buildkitd, set up
// as the bed's (snapshotter, registry), with a root of its own.
func (b *bench) startSecondNode(ctx context.Context) error {
	s := b.scale
	dir := filepath.Join(filepath.Dir(b.work), "node2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	snap := b.bed.vars["TESTBED_BUILDKIT_SNAPSHOTTER"]
	conf := fmt.Sprintf("root = %q\n[worker.oci]\n  enabled = true\n  snapshotter = %q\n[worker.containerd]\n  enabled = false\n[registry.\"docker.io\"]\n  mirrors = [%q]\n[registry.%q]\n  http = true\n",
		filepath.Join(dir, "root"), snap, b.bed.registry, b.bed.registry)
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.toml"), []byte(conf), 0o644); err != nil {
		return err
	}
	s.secondAdr, s.secondLog = "unix://"+filepath.Join(dir, "buildkitd.sock"), filepath.Join(dir, "buildkitd.log")
	logw, err := os.Create(s.secondLog)
	if err != nil {
		return err
	}
	c := exec.Command(b.bed.lookPath("buildkitd"), "--config", filepath.Join(dir, "buildkitd.toml"), "--addr", s.secondAdr,
		"--oci-worker-snapshotter="+snap, "--containerd-worker=false", "--otel-socket-path", filepath.Join(dir, "otel.sock"))
	c.Stdout, c.Stderr = logw, logw
	c.Env = append(os.Environ(), b.bed.env...)
	if err := c.Start(); err != nil {
		logw.Close()
		return err
	}
	b.bed.stops = append(b.bed.stops, func() {
		c.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { c.Wait(); logw.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			c.Process.Kill()
			<-done
		}
	})
	// Bounded: buildkitd answers within seconds here.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := b.bed.run(ctx, nil, "buildctl", "--addr", s.secondAdr, "debug", "workers"); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(s.secondLog)
			return fmt.Errorf("the second buildkitd did not answer within 2 minutes:\n%s", tail(string(data), 40))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// resetScaleout lays out what the cases need (once), prunes both nodes
// and empties the plugin's host cache of layer digests: a cold build.
func (b *bench) resetScaleout(ctx context.Context, _ int) error {
	if err := b.prepareScaleout(ctx); err != nil {
		return err
	}
	if _, err := b.bed.run(ctx, nil, "buildctl", "--addr", b.scale.secondAdr, "prune", "--all"); err != nil {
		return err
	}
	return b.resetPlugin(ctx, b.bed.resetBuildkitd)
}

// scaleoutFloor reads the N closures once and hashes them.
func (b *bench) scaleoutFloor(ctx context.Context, run, release int) (measurement, error) {
	return b.tarFloor(ctx, b.scale.root, b.scale.paths)
}

// scaleoutPush pushes the N closures' images, each platform's solved on
// the node the builder gives it, to a repository of the run's own (so
// that the registry holds none of their blobs).
func (b *bench) scaleoutPush(nodes string) func(ctx context.Context, run, release int) (measurement, error) {
	return func(ctx context.Context, run, release int) (measurement, error) {
		p := plugin{id: "plugin", binary: func() string { return b.bed.plugin }}
		repo := fmt.Sprintf("bench/scaleout-%s-run%d", nodes, run)
		return b.pushed(func() (measurement, error) {
			return b.pluginBuildOf(ctx, p, "scaleout-"+nodes, run, release, nil, b.scale.root, b.scale.manifest,
				"--builder", b.scale.builder[nodes], "--platform", strings.Join(b.scale.platforms, ","), "--push", "-t", b.bed.registry+"/"+repo+":latest")
		})
	}
}
