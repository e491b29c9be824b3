// Command benchbuild measures what it costs to turn a large, realistic Nix
// closure into a container image: the floor (tar | sha256sum), nixpkgs'
// streamLayeredImage approach and a one-COPY-per-layer Dockerfile with the
// same layer plan, and storepack through the frontend image and through
// the plugin on Docker 20.10 and on buildkitd, cold and after only the
// application changed; beside the plugin, docker load of its image, a new
// builder on a host that keeps its cache of layer digests, and a fresh
// runner pushing over the previous release; and N closures of their own
// pushed through a buildx builder of one node and of two (scale-out). It
// starts its own test bed (hack/testbed.sh) and stops it at the end.
// Measurements, never assertions.
//
//	go run ./hack/benchbuild [-runs N] [-quick] [-logs DIR]
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/storepack/storepack/layering"
)

type options struct {
	runs     int
	quick    bool
	only     *regexp.Regexp
	logs     string
	baseline string // another docker-storepack binary to measure beside this tree's
	// storepackLayers is the storepack builds' layer budget; the other
	// tools' plan is always cut for 100.
	storepackLayers int
	closure         closureOptions
	// synthetic: the scale cases on a generated closure instead.
	synthetic    syntheticOptions
	useSynthetic bool
	// syntheticFrontendBytes: the bytes of the frontend's closure.
	syntheticFrontendBytes int64
	scaleout               scaleoutOptions
}

func main() {
	// The nixpkgs-style streaming script runs as its own process.
	if len(os.Args) == 3 && os.Args[1] == "-stream-image" {
		if err := streamImage(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "stream-image:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 3 && os.Args[1] == "-report-rss" {
		os.Exit(reportRSS(os.Args[2], os.Args[3:]))
	}
	if len(os.Args) == 5 && os.Args[1] == "-scale-client-walk" {
		n, err := strconv.Atoi(os.Args[3])
		if err == nil {
			err = clientWalk(os.Args[2], n, os.Args[4] == "indexed")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "scale-client-walk:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "-scale-floor" {
		if err := syntheticFloor(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "scale-floor:", err)
			os.Exit(1)
		}
		return
	}
	var opt options
	var only string
	flag.IntVar(&opt.runs, "runs", 3, "builds of each case (the table gives the median and the range)")
	flag.BoolVar(&opt.quick, "quick", false, "a small closure and one run (unless -runs says), to exercise the harness")
	flag.Uint64Var(&opt.closure.seed, "seed", 1, "seed of the closure's layout")
	flag.StringVar(&only, "only", "", "measure only the cases whose id matches this regexp (floor, nixpkgs, dockerfile, dockerfile-oci, frontend-engine, frontend-oci, frontend-push, plugin-engine, plugin-load, plugin-oci, plugin-host-cache, plugin-push, plugin-fresh-runner, scaleout-read, scaleout-1node, scaleout-2nodes; with -baseline also plugin-baseline-engine, -load, -oci, -host-cache, -push, -fresh-runner)")
	flag.StringVar(&opt.logs, "logs", "", "keep every build's output in this directory")
	flag.StringVar(&opt.baseline, "baseline", "", "also measure this docker-storepack binary (e.g. an earlier commit's bin/docker-storepack) in the plugin's cases, interleaved, as rows ending -baseline")
	flag.IntVar(&opt.storepackLayers, "storepack-max-layers", 100, "the storepack builds' layer budget (LAYERS --max), the other tools keeping 100: what another budget costs or saves beside them")
	layout := flag.String("layout", "", "only lay out the closure in this new directory (release 1 as DIR/result and DIR/graph.json), for inspection; no test bed")
	flag.BoolVar(&opt.useSynthetic, "synthetic", false, "the scale cases instead (scale-floor, scale-plan, scale-plugin, scale-frontend, scale-client-walk, -set, -closure): a generated closure of -synthetic-paths store paths and -synthetic-gib GiB in sparse files")
	flag.IntVar(&opt.synthetic.paths, "synthetic-paths", 100000, "store paths of the generated closure")
	syntheticGiB := flag.Float64("synthetic-gib", 10, "NAR size of the generated closure in GiB, nearly all of it sparse")
	frontendGiB := flag.Float64("synthetic-frontend-gib", 1, "NAR size in GiB of the closure the frontend builds, with the same store paths and references: the frontend transfers every byte into buildkitd, dense (10: the plugin's whole closure)")
	flag.StringVar(&opt.synthetic.cache, "synthetic-cache", "", "where the generated closure is kept between runs (default: the user's cache directory/storepack/bench)")
	flag.IntVar(&opt.scaleout.closures, "scaleout-closures", len(scaleoutPlatforms), fmt.Sprintf("closures of the scale-out cases (scaleout-read, scaleout-1node, scaleout-2nodes), one per platform, 2 to %d", len(scaleoutPlatforms)))
	flag.IntVar(&opt.scaleout.mib, "scaleout-mib", 64, "MiB of package content of each scale-out closure")
	scale := flag.Int("scale", 1, "a closure this many times the usual bytes and store paths (2: how memory grows when the closure doubles)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "benchbuild: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	runsGiven := false
	flag.Visit(func(f *flag.Flag) { runsGiven = runsGiven || f.Name == "runs" })
	if *scale < 1 {
		fmt.Fprintln(os.Stderr, "benchbuild: -scale must be at least 1")
		os.Exit(2)
	}
	opt.closure.targetBytes, opt.closure.targetPaths, opt.closure.maxPackage, opt.closure.appBytes = int64(*scale)*480<<20, *scale*240, 96<<20, 2<<20
	if opt.quick {
		opt.closure.targetBytes, opt.closure.targetPaths, opt.closure.maxPackage = 64<<20, 120, 8<<20
		if !runsGiven {
			opt.runs = 1
		}
	}
	opt.synthetic.seed, opt.synthetic.bytes = opt.closure.seed, int64(*syntheticGiB*(1<<30))
	opt.syntheticFrontendBytes = int64(*frontendGiB * (1 << 30))
	if opt.synthetic.cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchbuild:", err)
			os.Exit(2)
		}
		opt.synthetic.cache = filepath.Join(dir, "storepack", "bench")
	}
	if opt.runs < 1 {
		fmt.Fprintln(os.Stderr, "benchbuild: -runs must be at least 1")
		os.Exit(2)
	}
	if opt.scaleout.closures < 2 || opt.scaleout.closures > len(scaleoutPlatforms) || opt.scaleout.mib < 1 {
		fmt.Fprintf(os.Stderr, "benchbuild: -scaleout-closures must be 2 to %d, -scaleout-mib at least 1\n", len(scaleoutPlatforms))
		os.Exit(2)
	}
	var err error
	if opt.only, err = regexp.Compile(only); err != nil {
		fmt.Fprintf(os.Stderr, "benchbuild: -only: %v\n", err)
		os.Exit(2)
	}
	ids := []string{}
	for _, g := range (&bench{baseline: opt.baseline != "", scaleoutOpt: opt.scaleout}).groups() {
		ids = append(ids, g.id)
	}
	if opt.useSynthetic {
		ids = ids[:0]
		for _, c := range (&scaleBench{}).cases() {
			ids = append(ids, c.id)
		}
	}
	if !slices.ContainsFunc(ids, opt.only.MatchString) {
		fmt.Fprintf(os.Stderr, "benchbuild: -only=%s matches no case\n", only)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case *layout != "" && opt.useSynthetic:
		var s *synthetic
		if s, err = openSynthetic(ctx, opt.synthetic, os.Stderr); err == nil {
			fmt.Printf("%s: %d store paths, %.1f GiB (NAR)\n", s.root, s.graph.Len(), float64(s.narBytes)/(1<<30))
		}
	case *layout != "":
		err = layoutOnly(ctx, *layout, opt)
	case opt.useSynthetic:
		err = withBed(ctx, opt, func(b *bed, tmp, self string, log io.Writer, loadStart string) error {
			return scaleCases(ctx, opt, b, tmp, self, log, loadStart)
		})
	default:
		err = run(ctx, opt)
	}
	if err != nil {
		if ctx.Err() != nil {
			// What was running was killed: its output says nothing more.
			first, _, _ := strings.Cut(err.Error(), "\n")
			err = fmt.Errorf("interrupted: %s", first)
		}
		fmt.Fprintln(os.Stderr, "benchbuild:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opt options) error {
	return withBed(ctx, opt, func(b *bed, tmp, self string, log io.Writer, loadStart string) error {
		return buildCases(ctx, opt, b, tmp, self, log, loadStart)
	})
}

// withBed starts a test bed in a new temporary directory, runs measure
// with it and stops it, removing the directory once the bed is down.
func withBed(ctx context.Context, opt options, measure func(b *bed, tmp, self string, log io.Writer, loadStart string) error) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("must run as root: the test bed starts Docker and buildkitd")
	}
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if opt.logs != "" {
		if err := os.MkdirAll(opt.logs, 0o755); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "storepack-bench-")
	if err != nil {
		return err
	}
	bedDir := filepath.Join(tmp, "bed")
	bedDown := false
	defer func() {
		// The test bed's directory may hold mounts until it is down: remove
		// it only then, and say where it is otherwise.
		if !bedDown {
			fmt.Fprintf(os.Stderr, "benchbuild: the test bed did not stop cleanly; left %s (run: hack/testbed.sh down %s)\n", tmp, bedDir)
			return
		}
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	log := os.Stderr
	loadStart := loadAverage()
	b, err := startBed(ctx, repo, bedDir, filepath.Join(tmp, "bin"), opt.baseline, log)
	defer func() {
		if err != nil && b != nil && ctx.Err() == nil {
			b.logs()
		}
		derr := b.down()
		bedDown = derr == nil
		if derr != nil && err == nil {
			err = derr
		}
	}()
	if err != nil {
		return err
	}
	return measure(b, tmp, self, log, loadStart)
}

// buildCases measures the image builds of the Debian-derived closure.
func buildCases(ctx context.Context, opt options, b *bed, tmp, self string, log io.Writer, loadStart string) error {
	start := time.Now()
	fmt.Fprintf(log, "benchbuild: laying out the closure (seed %d)\n", opt.closure.seed)
	c, err := newClosure(ctx, filepath.Join(tmp, "store"), opt.closure, log)
	if err != nil {
		return fmt.Errorf("the closure: %w", err)
	}
	fmt.Fprintf(log, "benchbuild: closure of %d paths, %.1f MiB, laid out and checked in %.1fs\n",
		c.graphs[0].Len(), float64(c.narBytes[0])/(1<<20), time.Since(start).Seconds())
	bn := &bench{bed: b, c: c, work: filepath.Join(tmp, "work"), logs: opt.logs, self: self,
		manifest: filepath.Join(c.root, "app.storepack"), baseline: opt.baseline != "", hostCache: filepath.Join(tmp, "host-cache"), scaleoutOpt: opt.scaleout}
	bn.dockerfile.dir = filepath.Join(tmp, "dockerfile")
	for _, d := range []string{bn.work, bn.dockerfile.dir, bn.hostCache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := bn.makePlans(); err != nil {
		return err
	}
	if err := os.WriteFile(bn.manifest, []byte(fmt.Sprintf(manifestText, opt.storepackLayers)), 0o644); err != nil {
		return err
	}

	var groups []group
	for _, g := range bn.groups() {
		if opt.only.MatchString(g.id) {
			groups = append(groups, g)
		}
	}
	results := map[string]*[2][]measurement{}
	for _, g := range groups {
		results[g.id] = &[2][]measurement{}
	}
	// Runs interleave the cases, so that a slow spell of the machine
	// spreads over all of them rather than falling on one.
	for run := 1; run <= opt.runs; run++ {
		for _, g := range groups {
			for i, release := range g.releases() {
				if i == 0 {
					if err := g.reset(ctx, run); err != nil {
						return fmt.Errorf("%s: reset: %w", g.id, err)
					}
				}
				if err := c.setRelease(release); err != nil {
					return err
				}
				m, err := g.build(ctx, run, release)
				if err != nil {
					return fmt.Errorf("%s, run %d, release %d: %w", g.id, run, release+1, err)
				}
				results[g.id][release] = append(results[g.id][release], m)
				kind, _ := g.kind(release)
				fmt.Fprintf(log, "benchbuild: run %d/%d %-24s %-5s %6.2fs  sent %s  uploaded %s\n", run, opt.runs, g.id,
					kind, m.seconds, bytesText(m.sent), bytesText(uploaded(m)))
			}
		}
	}
	report(os.Stdout, opt, bn, groups, results, loadStart, loadAverage())
	return nil
}

// layoutOnly lays out the closure in dir, which must not exist yet.
func layoutOnly(ctx context.Context, dir string, opt options) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	c, err := newClosure(ctx, dir, opt.closure, os.Stderr)
	if err != nil {
		return err
	}
	if err := c.setRelease(0); err != nil {
		return err
	}
	fmt.Printf("%s: %d store paths, %.1f MiB (NAR), application %s (%.1f MiB), laid out and checked in %.1fs\n",
		dir, c.graphs[0].Len(), float64(c.narBytes[0])/(1<<20), c.apps[0], float64(appSize(c, 0))/(1<<20), time.Since(start).Seconds())
	return nil
}

// manifestText is the storepack manifest of every storepack build, its
// budget left to fill in: at 100, the same image as the Dockerfile's and
// the streaming script's, 99 store layers and the customisation layer.
const manifestText = `# syntax=storepack
CLOSURE ./result
GRAPH graph.json
LAYERS --max=%d --strategy=storepack
LINK /bin -> bin
ENV PATH=/bin
ENTRYPOINT ["/bin/bench-app"]
`

// makePlans computes the shared layer plans with the project's layering:
// budget 100 with one customisation layer, so 99 store layers.
func (b *bench) makePlans() error {
	opt := layering.Options{Strategy: "storepack", MaxLayers: 99}
	var err error
	if b.plans[0], err = layering.NewPlan(b.c.graphs[0], opt); err != nil {
		return err
	}
	if b.fresh, err = layering.NewPlan(b.c.graphs[1], opt); err != nil {
		return err
	}
	opt.Previous = &b.plans[0]
	b.plans[1], err = layering.NewPlan(b.c.graphs[1], opt)
	return err
}

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/storepack/storepack\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from the storepack repository (no go.mod of github.com/storepack/storepack above the working directory)")
		}
		dir = parent
	}
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

// report prints the table: one row per tool, builder and cold or warm.
func report(w io.Writer, opt options, b *bench, groups []group, results map[string]*[2][]measurement, loadStart, loadEnd string) {
	median := func(ms []measurement) float64 {
		s := make([]float64, len(ms))
		for i, m := range ms {
			s[i] = m.seconds
		}
		slices.Sort(s)
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	// times is a reference case's seconds, run by run; nil if not measured.
	times := func(id string, release int) []float64 {
		r, ok := results[id]
		if !ok {
			return nil
		}
		var t []float64
		for _, m := range r[release] {
			t = append(t, m.seconds)
		}
		return t
	}
	c := b.c
	fmt.Fprintf(w, "\n$ %s\n", commandLine())
	fmt.Fprintf(w, "closure: %d store paths, %.1f MiB (NAR), from %s, seed %d; application %.1f MiB; the warm release changes only the application (new hash, same references)\n",
		c.graphs[0].Len(), float64(c.narBytes[0])/(1<<20), c.source, opt.closure.seed, float64(appSize(c, 0))/(1<<20))
	fmt.Fprintf(w, "layers: %d store layers (storepack strategy, budget 100 with the customisation layer), the same plan for every tool; release 2 keeps release 1's layers where that ships less (%s)\n",
		len(b.plans[0].Layers), samePlanText(b.plans[1], b.fresh))
	if opt.storepackLayers != 100 {
		fmt.Fprintf(w, "storepack builds: budget %d (-storepack-max-layers), the other tools 100\n", opt.storepackLayers)
	}
	if s := b.scale; s != nil {
		fmt.Fprintf(w, "scale-out: %d closures of their own (%d store paths in all, about %d MiB of package content each), one per platform (%s) in one manifest with a COPY; two nodes: %s and %s\n",
			len(s.platforms), len(s.paths), opt.scaleout.mib, strings.Join(s.platforms, ", "), strings.Join(s.platforms[:(len(s.platforms)+1)/2], ", "), strings.Join(s.platforms[(len(s.platforms)+1)/2:], ", "))
	}
	fmt.Fprintf(w, "runs: %d of each, interleaved; load average %s at the start, %s at the end; %d CPUs\n\n", opt.runs, loadStart, loadEnd, runtime.NumCPU())

	header := []string{"case", "", "median s", "min–max s", "× floor", "× nixpkgs", "× Dockerfile", "× cold", "sent", "uploaded", "digests w/c/p", "frontend RSS", "helper RSS", "plugin RSS", "layers"}
	rows := [][]string{header}
	var notes []string
	for _, g := range groups {
		for _, release := range g.releases() {
			ms := results[g.id][release]
			if len(ms) == 0 {
				continue
			}
			kind, ref := g.kind(release)
			cold := "–"
			if id := g.coldReference(release); id != "" {
				cold = pairedRatio(ms, times(id, 0))
			}
			med := median(ms)
			lo, hi := ms[0].seconds, ms[0].seconds
			for _, m := range ms {
				lo, hi = min(lo, m.seconds), max(hi, m.seconds)
			}
			rows = append(rows, []string{
				g.label, kind,
				fmt.Sprintf("%.2f", med),
				fmt.Sprintf("%.2f–%.2f", lo, hi),
				pairedRatio(ms, times(cmp.Or(g.floorOf, "floor"), 0)),
				pairedRatio(ms, times("nixpkgs", ref)),
				pairedRatio(ms, times("dockerfile", ref)),
				cold,
				spread(ms, func(m measurement) int64 { return m.sent }, bytesText),
				spread(ms, uploaded, bytesText),
				each(ms, func(m measurement) string { return m.digests }),
				spread(ms, func(m measurement) int64 { return m.frontend }, kibText),
				spread(ms, func(m measurement) int64 { return m.helper }, kibText),
				spread(ms, func(m measurement) int64 { return m.plugin }, kibText),
				spread(ms, func(m measurement) int64 { return int64(m.layers) }, func(n int64) string {
					if n <= 0 {
						return "–"
					}
					return fmt.Sprint(n)
				}),
			})
			for i, m := range ms {
				if m.note != "" {
					notes = append(notes, fmt.Sprintf("%s %s, run %d: %s", g.id, kind, i+1, m.note))
				}
			}
		}
	}
	printTable(w, rows)
	fmt.Fprintln(w, `
× floor, × nixpkgs, × Dockerfile: each run's time over the floor's, the nixpkgs-style pipeline's and the Dockerfile's on
  Docker 20.10 (of the same kind, cold or warm) in the same run, so that a machine slower in one run than in another
  cancels out; the median of those ratios, and their range when the runs differ.
× cold: each run's time over a cold build's in the same run, paired likewise: a warm row's own case's; docker load's,
  the plugin's cold build into 20.10; the host cache row's, the plugin's cold OCI tar; the fresh runner's, the plugin's
  cold --push.
docker load: the plugin's release 1 image, built into Docker 20.10 and saved with docker save once, loaded into the
  engine after the image is removed (as a cold build's is): the engine's own cost of taking in this image.
host cache kept: release 1 to an OCI tar after the plugin built it there once, the builder's cache pruned but not the
  plugin's host cache of layer digests (a new builder on a host that built the image before).
fresh runner: the registry holds release 1, pushed by the plugin; then the builder's cache is pruned and the plugin's
  host cache emptied, and release 2 is pushed with --previous release 1 (its × floor, × nixpkgs and × Dockerfile are
  over their cold builds: like them, it starts with nothing built).
sent: bytes of build context sent to the builder, summed over the "transferring" lines of BuildKit's plain progress
  (nixpkgs-style: the bytes streamed into docker load); a range when the runs differ.
uploaded: blob bytes the registry received during a --push build (the blobs whose uploads it completed, at their
  stored sizes, from its log); "–" where nothing is pushed.
digests w/c/p: of the store layers the plugin writes on the host or gives buildkitd whole, how many it wrote to learn their
  digests, found in its host cache of layer digests, and took from the previous image (its progress says).
frontend RSS: peak (VmHWM) of the gateway frontend process in the builder; helper RSS: of the frontend binary's
  in-builder commands (store checks); plugin RSS: of docker-storepack itself, the conversion running in it.
cold: images and the builder's cache removed first, and the plugin's host cache of layer digests (the registry: a new
  repository); warm: release 2 right after release 1.
OCI tar: uncompressed, as the nixpkgs-style stream is; --push: gzip, as users push. docker storepack rows run the plugin
  binary directly (what docker runs), the conversion in its process; 20.10 rows load the image into the engine.
scale-out: the scale-out closures' images pushed (gzip) to a new repository, on a buildx builder of one node (the bed's
  buildkitd, declaring every platform) and of two (that buildkitd and a second one, on the same machine, each declaring
  half the platforms; the plugin solves each node's platforms on it, at once); × floor over the read of those
  closures; the two nodes' × cold is over one node's in the same run.
The Dockerfile's context is staged with hard links beforehand, untimed; the nixpkgs-style script is this harness's own
rewrite of streamLayeredImage's (two passes per layer, uncompressed), in Go.`)
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nplans that differ from the shared plan:")
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
}

// uploaded is a build's bytes uploaded to the registry; -1 (shown "–")
// for a build that pushes nothing.
func uploaded(m measurement) int64 {
	if !m.pushed {
		return -1
	}
	return m.uploaded
}

func commandLine() string {
	args := append([]string{"go run ./hack/benchbuild"}, os.Args[1:]...)
	return strings.Join(args, " ")
}

func appSize(c *closure, release int) uint64 {
	info, _ := c.graphs[release].Info(c.apps[release])
	return info.NarSize
}

func samePlanText(withPrevious, fresh layering.Plan) string {
	for i := range withPrevious.Layers {
		if i >= len(fresh.Layers) || !slices.Equal(withPrevious.Layers[i].Paths, fresh.Layers[i].Paths) {
			return "differs from the plan made without the previous one"
		}
	}
	if len(withPrevious.Layers) != len(fresh.Layers) {
		return "differs from the plan made without the previous one"
	}
	return "here the same plan as without a previous image"
}

// pairedRatio divides each run's time by the reference's in the same run
// (runs are interleaved: run i of every case is measured before run i+1 of
// any) and gives the median ratio, with the range when the runs differ;
// "–" without a reference.
func pairedRatio(ms []measurement, ref []float64) string {
	if len(ref) != len(ms) {
		return "–"
	}
	r := make([]float64, len(ms))
	for i, m := range ms {
		if ref[i] <= 0 {
			return "–"
		}
		r[i] = m.seconds / ref[i]
	}
	slices.Sort(r)
	med := r[len(r)/2]
	if len(r)%2 == 0 {
		med = (r[len(r)/2-1] + r[len(r)/2]) / 2
	}
	text := fmt.Sprintf("%.2f", med)
	if lo, hi := fmt.Sprintf("%.2f", r[0]), fmt.Sprintf("%.2f", r[len(r)-1]); lo != hi {
		text += fmt.Sprintf(" (%s–%s)", lo, hi)
	}
	return text
}

// spread formats the median of a per-run figure, with its range when the
// runs differ.
func spread[M any](ms []M, get func(M) int64, format func(int64) string) string {
	v := make([]int64, len(ms))
	for i, m := range ms {
		v[i] = get(m)
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if format(v[0]) == format(v[len(v)-1]) {
		return format(med)
	}
	return fmt.Sprintf("%s (%s–%s)", format(med), format(v[0]), format(v[len(v)-1]))
}

// each gives a per-run text figure: one if the runs agree, each run's in
// order if not; "–" where none has it.
func each(ms []measurement, get func(measurement) string) string {
	var v []string
	for _, m := range ms {
		v = append(v, cmp.Or(get(m), "–"))
	}
	if len(slices.Compact(slices.Clone(v))) == 1 {
		return v[0]
	}
	return strings.Join(v, ", ")
}

func bytesText(n int64) string {
	switch {
	case n < 0:
		return "–"
	case n < 1<<20:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func kibText(n int64) string {
	if n <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<10))
}

// printTable aligns columns: text left, figures right.
func printTable(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, cell := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(cell)))
			if i < 2 {
				line.WriteString(cell + pad + "  ")
			} else {
				line.WriteString(pad + cell + "  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
	}
}
