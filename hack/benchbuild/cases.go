package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

// bench is one run of the harness: the test bed, the closure, the shared
// layer plans and the rows of the table.
type bench struct {
	bed      *bed
	c        *closure
	work     string // scratch files of the builds
	logs     string // where each build's output is kept; "": nowhere
	manifest string // the storepack manifest, in the store root
	self     string // this binary, which streams the nixpkgs-style archive
	// plans[r] is the shared plan of release r: release 2's keeps release
	// 1's layers where that ships less, as the plugin does with -t.
	plans [2]layering.Plan
	// fresh is release 2's plan made without a previous plan: what a build
	// that knows no previous image makes.
	fresh      layering.Plan
	dockerfile dockerfileContext
	baseline   bool // the plugin's cases also run the bed's baseline binary
	// hostCache is the plugin's XDG_CACHE_HOME, so that its cache of layer
	// digests is the harness's to empty, not the user's.
	hostCache   string
	scaleoutOpt scaleoutOptions
	scale       *scaleout // made by the scale-out cases' first reset
}

// measurement is one build.
type measurement struct {
	seconds  float64
	sent     int64 // bytes sent to the builder; -1: not measured
	frontend int64 // peak RSS of the gateway frontend, KiB; 0: none ran
	helper   int64 // peak RSS of the frontend binary's in-builder commands, KiB
	plugin   int64 // peak RSS of the plugin, KiB
	layers   int   // layers of the image made; 0: not read
	note     string
	pushed   bool  // the build pushed to the registry
	uploaded int64 // blob bytes the registry received during the build, if pushed
	// digests is how the plugin learnt its store layers' digests on
	// buildkitd, "written/cached/previous"; "": it gave no layer whole.
	digests string
}

// A group is one tool on one builder: a cold build of release 1 after
// reset, then (if warm is set) a warm build of release 2 over it.
type group struct {
	id, label string
	warm      bool
	// fresh: release 2 alone, on a builder that its reset left with nothing
	// of release 1 (which only the registry holds).
	fresh bool
	// coldOf names the case whose cold runs the × cold column divides this
	// one's by; "": its own, for the warm row.
	coldOf string
	// floorOf names the case the × floor column divides by; "": floor.
	floorOf string
	reset   func(ctx context.Context, run int) error
	build   func(ctx context.Context, run, release int) (measurement, error)
}

// releases lists the releases a group builds in a run, in order; the
// reset comes before the first.
func (g group) releases() []int {
	switch {
	case g.fresh:
		return []int{1}
	case g.warm:
		return []int{0, 1}
	}
	return []int{0}
}

// kind names the row of release, and gives the release of the reference
// cases its ratios pair with: a fresh runner's starts from nothing, as a
// cold build does.
func (g group) kind(release int) (string, int) {
	switch {
	case g.id == "floor":
		return "", 0
	case g.fresh:
		return "fresh", 0
	}
	return [2]string{"cold", "warm"}[release], release
}

// coldReference is the case whose cold runs the × cold column divides the
// row of release by; "" where that would be the row itself.
func (g group) coldReference(release int) string {
	switch {
	case g.coldOf != "":
		return g.coldOf
	case release == 1:
		return g.id
	}
	return ""
}

func (b *bench) groups() []group {
	none := func(context.Context, int) error { return nil }
	engine := func(ctx context.Context, _ int) error { return b.bed.resetEngine(ctx) }
	buildkitd := func(ctx context.Context, _ int) error { return b.bed.resetBuildkitd(ctx) }
	pluginBuildkitd := func(ctx context.Context, _ int) error { return b.resetPlugin(ctx, b.bed.resetBuildkitd) }
	pluginEngine := func(ctx context.Context, _ int) error { return b.resetPlugin(ctx, b.bed.resetEngine) }
	groups := []group{
		{id: "floor", label: "floor: tar | sha256sum", reset: none, build: b.floor},
		{id: "nixpkgs", label: "nixpkgs-style stream | docker load (20.10)", warm: true, reset: engine, build: b.nixpkgs},
		{id: "dockerfile", label: "Dockerfile, COPY per layer (20.10)", warm: true, reset: engine, build: b.dockerfileBuild},
		{id: "dockerfile-oci", label: "Dockerfile, COPY per layer → OCI tar (buildkitd)", warm: true, reset: buildkitd, build: b.dockerfileOCI},
		{id: "frontend-engine", label: "storepack: docker build (20.10, Chain)", warm: true, reset: engine, build: b.frontendEngine},
		{id: "frontend-oci", label: "storepack: buildx → OCI tar (buildkitd, Merge)", warm: true, reset: buildkitd, build: b.frontendOCI},
		{id: "frontend-push", label: "storepack: buildx --push (buildkitd, Merge)", warm: true, reset: buildkitd, build: b.frontendPush},
	}
	plugins := []plugin{{id: "plugin", binary: func() string { return b.bed.plugin }}}
	if b.baseline {
		plugins = append(plugins, plugin{id: "plugin-baseline", binary: func() string { return b.bed.baseline }, label: ", baseline binary"})
	}
	for _, p := range plugins {
		groups = append(groups,
			group{id: p.with("engine"), label: "docker storepack build (20.10)" + p.label, warm: true, reset: pluginEngine, build: b.pluginEngine(p, "engine")},
			group{id: p.with("load"), label: "docker load of docker storepack's image from docker save (20.10, image removed first)" + p.label,
				coldOf: p.with("engine"), reset: b.loadReset(p), build: b.load(p)},
			group{id: p.with("oci"), label: "docker storepack build → OCI tar (buildkitd, Merge)" + p.label, warm: true, reset: pluginBuildkitd, build: b.pluginOCI(p, "oci")},
			group{id: p.with("host-cache"), label: "docker storepack build → OCI tar, builder pruned, host cache kept (buildkitd, Merge)" + p.label,
				coldOf: p.with("oci"), reset: b.hostCacheReset(p), build: b.pluginOCI(p, "host-cache")},
			group{id: p.with("push"), label: "docker storepack build --push (buildkitd, Merge)" + p.label, warm: true, reset: pluginBuildkitd, build: b.pluginPush(p)},
			group{id: p.with("fresh-runner"), label: "docker storepack build --push --previous release 1, fresh runner (buildkitd, Merge, no cache)" + p.label,
				fresh: true, coldOf: p.with("push"), reset: b.freshRunnerReset(p), build: b.freshRunner(p)},
		)
	}
	n := b.scaleoutOpt.closures
	return append(groups,
		group{id: "scaleout-read", label: fmt.Sprintf("floor of the %d scale-out closures: tar | sha256sum", n), floorOf: "scaleout-read", reset: b.resetScaleout, build: b.scaleoutFloor},
		group{id: "scaleout-1node", label: fmt.Sprintf("docker storepack build --push, %d closures, one per platform, on one node (buildkitd)", n),
			floorOf: "scaleout-read", reset: b.resetScaleout, build: b.scaleoutPush("one")},
		group{id: "scaleout-2nodes", label: fmt.Sprintf("docker storepack build --push, the same %d closures on two nodes (half the platforms each)", n),
			floorOf: "scaleout-read", coldOf: "scaleout-1node", reset: b.resetScaleout, build: b.scaleoutPush("two")},
	)
}

// A plugin is a docker-storepack binary the plugin's cases run: this
// tree's, or -baseline's.
type plugin struct {
	id     string
	label  string
	binary func() string // read when a build starts: the bed is up by then
}

// with names the case of this binary on a builder: plugin-oci,
// plugin-baseline-oci.
func (p plugin) with(builder string) string { return p.id + "-" + builder }

// floor reads the closure once and hashes it: no builder does less.
func (b *bench) floor(ctx context.Context, run, release int) (measurement, error) {
	return b.tarFloor(ctx, b.c.root, b.c.paths(release))
}

// tarFloor reads the store paths under root once and hashes them.
func (b *bench) tarFloor(ctx context.Context, root string, paths []store.Path) (measurement, error) {
	list := filepath.Join(b.work, "floor-paths")
	var names strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&names, "nix/store/%s\n", p.Base())
	}
	if err := os.WriteFile(list, []byte(names.String()), 0o644); err != nil {
		return measurement{}, err
	}
	r, err := b.bed.run(ctx, nil, "bash", "-c", `set -o pipefail; tar -C "$1" -cf - -T "$2" | sha256sum`, "bash", root, list)
	if err != nil {
		return measurement{}, err
	}
	return measurement{seconds: r.elapsed.Seconds(), sent: -1}, nil
}

// nixpkgs streams the image as dockerTools.streamLayeredImage's script
// does, into Docker 20.10's docker load.
func (b *bench) nixpkgs(ctx context.Context, run, release int) (measurement, error) {
	const tag = benchImagePrefix + "nixpkgs:latest"
	app := b.c.apps[release].String()
	conf := streamConf{
		StoreOnDisk: b.c.storeOnDisk,
		StoreDir:    storeDir,
		Links:       map[string]string{"bin": app + "/bin"},
		Tag:         tag,
		Entrypoint:  []string{"/bin/bench-app"},
		Env:         []string{"PATH=/bin"},
	}
	for _, l := range b.plans[release].Layers {
		var bases []string
		for _, p := range l.Paths {
			bases = append(bases, p.Base())
		}
		conf.Layers = append(conf.Layers, bases)
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return measurement{}, err
	}
	confFile := filepath.Join(b.work, "stream.json")
	if err := os.WriteFile(confFile, data, 0o644); err != nil {
		return measurement{}, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return measurement{}, err
	}
	stream := exec.CommandContext(ctx, b.self, "-stream-image", confFile)
	load := exec.CommandContext(ctx, b.bed.docker, "load")
	load.Env = append(os.Environ(), b.bed.env...)
	var streamErr, loadOut bytes.Buffer
	stream.Stdout, stream.Stderr = pw, &streamErr
	load.Stdin, load.Stdout, load.Stderr = pr, &loadOut, &loadOut
	start := time.Now()
	if err := stream.Start(); err != nil {
		pr.Close()
		pw.Close()
		return measurement{}, err
	}
	pw.Close()
	if err := load.Start(); err != nil {
		pr.Close()
		stream.Wait()
		return measurement{}, err
	}
	pr.Close()
	loadErr := load.Wait()
	streamErrored := stream.Wait()
	elapsed := time.Since(start)
	b.keepLog("nixpkgs", run, release, streamErr.String()+loadOut.String())
	if streamErrored != nil {
		return measurement{}, fmt.Errorf("the streaming script: %w\n%s", streamErrored, streamErr.String())
	}
	if loadErr != nil {
		return measurement{}, fmt.Errorf("docker load: %w\n%s", loadErr, loadOut.String())
	}
	m := measurement{seconds: elapsed.Seconds(), sent: -1}
	if _, n, ok := strings.Cut(streamErr.String(), "streamed "); ok {
		m.sent, _ = strconv.ParseInt(strings.Fields(n)[0], 10, 64)
	}
	info, err := b.bed.engineImage(ctx, tag)
	if err != nil {
		return m, err
	}
	m.layers = info.layers
	return m, nil
}

// dockerfileBuild builds the one-COPY-per-layer Dockerfile with Docker
// 20.10's BuildKit. Staging the context (hard links) is not timed.
func (b *bench) dockerfileBuild(ctx context.Context, run, release int) (measurement, error) {
	const tag = benchImagePrefix + "dockerfile:latest"
	return b.dockerfileCase(ctx, "dockerfile", run, release, func() (imageInfo, error) { return b.bed.engineImage(ctx, tag) },
		[]string{"DOCKER_BUILDKIT=1"}, b.bed.docker, "build", "--progress=plain", "-t", tag, b.dockerfile.dir)
}

// dockerfileOCI builds the one-COPY-per-layer Dockerfile with buildx on
// buildkitd to an uncompressed OCI archive: what BuildKit's own fastest
// path costs there, beside the frontend's and the plugin's.
func (b *bench) dockerfileOCI(ctx context.Context, run, release int) (measurement, error) {
	out := filepath.Join(b.work, "image-oci.tar")
	defer os.Remove(out)
	return b.dockerfileCase(ctx, "dockerfile-oci", run, release, func() (imageInfo, error) { return ociArchiveImage(out) },
		nil, "docker", "buildx", "build", "--builder", b.bed.vars["BUILDX_BUILDER"], "--progress=plain",
		"-o", "type=oci,compression=uncompressed,dest="+out, b.dockerfile.dir)
}

// dockerfileCase stages the Dockerfile's context for release, runs the
// build command and reads the image it made with read.
func (b *bench) dockerfileCase(ctx context.Context, id string, run, release int, read func() (imageInfo, error), env []string, name string, args ...string) (measurement, error) {
	if err := b.dockerfile.stage(b.c, b.plans[release], b.c.apps[release].String()); err != nil {
		return measurement{}, err
	}
	r, err := b.bed.run(ctx, env, name, args...)
	b.keepLog(id, run, release, r.out)
	if err != nil {
		return measurement{}, err
	}
	m := measurement{seconds: r.elapsed.Seconds(), sent: transferred(r.out)}
	info, err := read()
	if err != nil {
		return m, err
	}
	m.layers = info.layers
	return m, nil
}

// frontendEngine: `docker build` of the manifest on Docker 20.10, the
// store root as the main context.
func (b *bench) frontendEngine(ctx context.Context, run, release int) (measurement, error) {
	const tag = benchImagePrefix + "frontend-engine:latest"
	m, err := b.frontendBuild(ctx, "frontend-engine", run, release, []string{"DOCKER_BUILDKIT=1"}, b.bed.docker,
		"build", "--progress=plain", "-f", b.manifest, "-t", tag, b.c.root)
	if err != nil {
		return m, err
	}
	return m, b.checkImage(&m, func() (imageInfo, error) { return b.bed.engineImage(ctx, tag) }, b.freshPlan(release))
}

// frontendOCI: buildx on buildkitd, the store as the named context, to an
// uncompressed OCI archive (as the nixpkgs-style stream is uncompressed).
func (b *bench) frontendOCI(ctx context.Context, run, release int) (measurement, error) {
	out := filepath.Join(b.work, "image-oci.tar")
	defer os.Remove(out)
	m, err := b.frontendBuild(ctx, "frontend-oci", run, release, nil, "docker",
		"buildx", "build", "--builder", b.bed.vars["BUILDX_BUILDER"], "--progress=plain",
		"--build-context", "store="+b.c.storeOnDisk, "-f", b.manifest, "-o", "type=oci,compression=uncompressed,dest="+out, b.c.root)
	if err != nil {
		return m, err
	}
	return m, b.checkImage(&m, func() (imageInfo, error) { return ociArchiveImage(out) }, b.freshPlan(release))
}

// frontendPush: buildx on buildkitd, pushed to the registry (gzip, as
// users push), a new repository per run so that a cold push uploads all.
func (b *bench) frontendPush(ctx context.Context, run, release int) (measurement, error) {
	repo := fmt.Sprintf("%sfrontend-push-%d", benchImagePrefix, run)
	m, err := b.pushed(func() (measurement, error) {
		return b.frontendBuild(ctx, "frontend-push", run, release, nil, "docker",
			"buildx", "build", "--builder", b.bed.vars["BUILDX_BUILDER"], "--progress=plain",
			"--build-context", "store="+b.c.storeOnDisk, "-f", b.manifest, "--push", "-t", b.bed.registry+"/"+repo+":latest", b.c.root)
	})
	if err != nil {
		return m, err
	}
	return m, b.checkImage(&m, func() (imageInfo, error) { return b.bed.registryImage(ctx, repo, "latest") }, b.freshPlan(release))
}

// frontendBuild runs a build through the frontend image, sampling the
// frontend's memory while it runs.
func (b *bench) frontendBuild(ctx context.Context, id string, run, release int, env []string, name string, args ...string) (measurement, error) {
	s := startRSSSampler(b.bed.daemons)
	r, err := b.bed.run(ctx, env, name, args...)
	gateway, helper := s.finish()
	b.keepLog(id, run, release, r.out)
	if err != nil {
		return measurement{}, err
	}
	return measurement{seconds: r.elapsed.Seconds(), sent: transferred(r.out), frontend: gateway, helper: helper}, nil
}

// pluginEngine: docker storepack build on the engine's BuildKit, loaded
// into the engine; the tag names the previous release.
func (b *bench) pluginEngine(p plugin, kase string) func(ctx context.Context, run, release int) (measurement, error) {
	return func(ctx context.Context, run, release int) (measurement, error) {
		tag := engineTag(p, kase)
		m, err := b.pluginBuild(ctx, p, kase, run, release, engineEnv, "-t", tag)
		if err != nil {
			return m, err
		}
		return m, b.checkImage(&m, func() (imageInfo, error) { return b.bed.engineImage(ctx, tag) }, b.plans[release])
	}
}

// engineTag is the tag of a case's image in the engine.
func engineTag(p plugin, kase string) string { return benchImagePrefix + p.with(kase) + ":latest" }

// savedImage is where the load case keeps the plugin's image, saved once.
func (b *bench) savedImage(p plugin) string { return filepath.Join(b.work, p.with("load")+".tar") }

// loadReset has the plugin build release 1 into the engine and saves the
// image, on the first run only; then it removes the image, as a cold reset
// does: docker load is to find none of its layers.
func (b *bench) loadReset(p plugin) func(ctx context.Context, run int) error {
	return func(ctx context.Context, run int) error {
		if _, err := os.Stat(b.savedImage(p)); errors.Is(err, fs.ErrNotExist) {
			if err := b.bed.resetEngine(ctx); err != nil {
				return err
			}
			if err := b.c.setRelease(0); err != nil {
				return err
			}
			if _, err := b.pluginEngine(p, "load-setup")(ctx, run, 0); err != nil {
				return err
			}
			if _, err := b.bed.run(ctx, nil, b.bed.docker, "save", "-o", b.savedImage(p), engineTag(p, "load-setup")); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		return b.bed.resetEngine(ctx)
	}
}

// load times docker load of the saved image: the engine's own cost of
// taking in this image, with nothing to build.
func (b *bench) load(p plugin) func(ctx context.Context, run, release int) (measurement, error) {
	return func(ctx context.Context, run, release int) (measurement, error) {
		r, err := b.bed.run(ctx, nil, b.bed.docker, "load", "-i", b.savedImage(p))
		b.keepLog(p.with("load"), run, release, r.out)
		if err != nil {
			return measurement{}, err
		}
		m := measurement{seconds: r.elapsed.Seconds(), sent: -1}
		return m, b.checkImage(&m, func() (imageInfo, error) { return b.bed.engineImage(ctx, engineTag(p, "load-setup")) }, b.plans[release])
	}
}

// pluginOCI: docker storepack build on buildkitd to an uncompressed OCI
// archive; with no image to read, release 2 is planned afresh.
func (b *bench) pluginOCI(p plugin, kase string) func(ctx context.Context, run, release int) (measurement, error) {
	return func(ctx context.Context, run, release int) (measurement, error) {
		out := filepath.Join(b.work, "image-oci.tar")
		defer os.Remove(out)
		m, err := b.pluginBuild(ctx, p, kase, run, release, buildkitEnv, "-o", "type=oci,compression=uncompressed,dest="+out)
		if err != nil {
			return m, err
		}
		return m, b.checkImage(&m, func() (imageInfo, error) { return ociArchiveImage(out) }, b.freshPlan(release))
	}
}

// hostCacheReset has the plugin build release 1 once, which leaves the
// digests of its layers in the host cache, then prunes the builder's
// cache alone: a new builder on a host that built the image before.
func (b *bench) hostCacheReset(p plugin) func(ctx context.Context, run int) error {
	return func(ctx context.Context, run int) error {
		return b.builtBefore(ctx, true, func() error {
			_, err := b.pluginOCI(p, "host-cache-setup")(ctx, run, 0)
			return err
		})
	}
}

// builtBefore starts buildkitd and the host cache empty, has build make
// release 1, then prunes the builder's cache, and empties the host cache
// unless keepHostCache: what a runner keeps of a build before.
func (b *bench) builtBefore(ctx context.Context, keepHostCache bool, build func() error) error {
	if err := b.resetPlugin(ctx, b.bed.resetBuildkitd); err != nil {
		return err
	}
	if err := b.c.setRelease(0); err != nil {
		return err
	}
	if err := build(); err != nil {
		return err
	}
	if keepHostCache {
		return b.bed.resetBuildkitd(ctx)
	}
	return b.resetPlugin(ctx, b.bed.resetBuildkitd)
}

// pluginPush: docker storepack build on buildkitd, pushed; the tag names
// the previous release in the registry.
func (b *bench) pluginPush(p plugin) func(ctx context.Context, run, release int) (measurement, error) {
	return func(ctx context.Context, run, release int) (measurement, error) {
		return b.pluginPushBuild(ctx, p, "push", run, release, b.pushRepo(p, "push", run), "latest")
	}
}

// freshRunnerReset pushes release 1 as the plugin's cold push does, then
// empties the builder's cache and the host's: a runner that never built
// the image, whose previous release is only in the registry.
func (b *bench) freshRunnerReset(p plugin) func(ctx context.Context, run int) error {
	return func(ctx context.Context, run int) error {
		return b.builtBefore(ctx, false, func() error {
			_, err := b.pluginPushBuild(ctx, p, "fresh-runner-setup", run, 0, b.pushRepo(p, "fresh-runner", run), "1")
			return err
		})
	}
}

// freshRunner pushes release 2 on that runner, naming release 1 with
// --previous (a new tag names no previous image).
func (b *bench) freshRunner(p plugin) func(ctx context.Context, run, release int) (measurement, error) {
	return func(ctx context.Context, run, release int) (measurement, error) {
		repo := b.pushRepo(p, "fresh-runner", run)
		return b.pluginPushBuild(ctx, p, "fresh-runner", run, release, repo, "2", "--previous", b.bed.registry+"/"+repo+":1")
	}
}

// pushRepo is the registry repository of a case's run, new for each run
// so that a cold push uploads everything.
func (b *bench) pushRepo(p plugin, kase string, run int) string {
	return fmt.Sprintf("%s%s-%d", benchImagePrefix, p.with(kase), run)
}

// pluginPushBuild pushes the plugin's build of release to repo:tag,
// recording the bytes uploaded and the image's plan.
func (b *bench) pluginPushBuild(ctx context.Context, p plugin, kase string, run, release int, repo, tag string, args ...string) (measurement, error) {
	m, err := b.pushed(func() (measurement, error) {
		return b.pluginBuild(ctx, p, kase, run, release, buildkitEnv, append(args, "--push", "-t", b.bed.registry+"/"+repo+":"+tag)...)
	})
	if err != nil {
		return m, err
	}
	return m, b.checkImage(&m, func() (imageInfo, error) { return b.bed.registryImage(ctx, repo, tag) }, b.plans[release])
}

// pluginBuild runs a plugin binary itself (what `docker storepack` runs)
// through -report-rss, which reports its peak RSS; kase names its log.
func (b *bench) pluginBuild(ctx context.Context, p plugin, kase string, run, release int, env []string, args ...string) (measurement, error) {
	return b.pluginBuildOf(ctx, p, kase, run, release, env, b.c.root, b.manifest, args...)
}

// pluginBuildOf is pluginBuild of another manifest, in the store root and
// context root.
func (b *bench) pluginBuildOf(ctx context.Context, p plugin, kase string, run, release int, env []string, root, manifest string, args ...string) (measurement, error) {
	rss := filepath.Join(b.work, "plugin-rss")
	os.Remove(rss)
	env = append(slices.Clip(env), "XDG_CACHE_HOME="+b.hostCache) // env may be engineEnv: never write into it
	args = append([]string{"-report-rss", rss, p.binary(), "storepack", "build", "--progress=plain", "--store-root", root, "-f", manifest}, args...)
	s := startRSSSampler(b.bed.daemons)
	r, err := b.bed.run(ctx, env, b.self, append(args, root)...)
	gateway, helper := s.finish()
	b.keepLog(p.with(kase), run, release, r.out)
	if err != nil {
		return measurement{}, err
	}
	return measurement{seconds: r.elapsed.Seconds(), sent: transferred(r.out), frontend: gateway, helper: helper, plugin: peakRSS(rss),
		digests: digestPass(r.out)}, nil
}

// digestPattern matches the plugin's progress line that says how it
// learnt the digests of the store layers it gives the builder whole.
var digestPattern = regexp.MustCompile(`(\d+) written on the host to learn them, (\d+) from the host's cache of layer digests, (\d+) from the previous image`)

// digestPass is that line's counts as "written/cached/previous", summed
// over the platforms of the build, "" if the progress has none (a builder
// that copies the layers).
func digestPass(progress string) string {
	all := digestPattern.FindAllStringSubmatch(progress, -1)
	if all == nil {
		return ""
	}
	var sum [3]int
	for _, m := range all {
		for i := range sum {
			n, _ := strconv.Atoi(m[i+1])
			sum[i] += n
		}
	}
	return fmt.Sprintf("%d/%d/%d", sum[0], sum[1], sum[2])
}

// resetPlugin resets the builder or engine the plugin builds with and
// empties its host cache of layer digests: else a cold build would skip
// the digest pass.
func (b *bench) resetPlugin(ctx context.Context, resetBuilder func(context.Context) error) error {
	if err := resetBuilder(ctx); err != nil {
		return err
	}
	if err := os.RemoveAll(b.hostCache); err != nil {
		return err
	}
	return os.Mkdir(b.hostCache, 0o755)
}

// freshPlan is the plan a build without a previous image makes.
func (b *bench) freshPlan(release int) layering.Plan {
	if release == 0 {
		return b.plans[0]
	}
	return b.fresh
}

// checkImage reads the layer count of the image built and notes where its
// recorded plan differs from the one expected.
func (b *bench) checkImage(m *measurement, read func() (imageInfo, error), want layering.Plan) error {
	info, err := read()
	if err != nil {
		return err
	}
	m.layers = info.layers
	m.note = planNote(info, want)
	return nil
}

// keepLog writes a build's output under -logs.
func (b *bench) keepLog(id string, run, release int, out string) {
	if b.logs == "" {
		return
	}
	kind := [2]string{"cold", "warm"}[release]
	name := filepath.Join(b.logs, fmt.Sprintf("%s-run%d-%s.log", id, run, kind))
	if err := os.WriteFile(name, []byte(out), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "benchbuild: keep the log: %v\n", err)
	}
}

// transferPattern matches a transfer's progress in BuildKit's plain
// output, such as "#5 transferring store: 2.05MB 0.1s done".
var transferPattern = regexp.MustCompile(`(?m)^#(\d+) transferring [^:]+: ([0-9.]+[kMGT]?B)`)

// transferred sums the last size each transfer of a build reports: the
// bytes of context sent to the builder. -1 when none is reported.
func transferred(progress string) int64 {
	last := map[string]int64{}
	for _, m := range transferPattern.FindAllStringSubmatch(progress, -1) {
		if n, err := units.FromHumanSize(m[2]); err == nil {
			last[m[1]] = n
		}
	}
	if len(last) == 0 {
		return -1
	}
	var sum int64
	for _, n := range last {
		sum += n
	}
	return sum
}
