package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	bkclient "github.com/moby/buildkit/client"
)

// scaleBench is one run of the scale benchmark (-synthetic): the generated
// closure built by the plugin and the frontend, beside a floor.
type scaleBench struct {
	bed *bed
	s   *synthetic
	// frontend is the closure the frontend builds: the same paths and
	// references, its bytes -synthetic-frontend-gib (the store crosses the
	// session and is written into buildkitd whole, sparse files dense).
	frontend  *synthetic
	self      string
	work      string
	logs      string
	hostCache string // the plugin's XDG_CACHE_HOME
}

// scaleMeasurement is one run of a scale case.
type scaleMeasurement struct {
	total float64 // seconds, the whole command
	// ready is the seconds until the first step that writes started, the
	// plugin's digest pass or the image's write, less the builder's steps
	// before it (planning plus conversion), from the progress; -1: not
	// measured.
	ready float64
	// steps is the seconds of the builder's steps before the first write
	// (the frontend's transfers and check); -1: the command has none.
	steps float64
	// digests is the seconds of the plugin's digest pass, which writes
	// the layers it knows no digest of (cold), before the image's write;
	// -1: none.
	digests float64
	// cpu is the gateway frontend's CPU seconds (its planning, conversion
	// and messages; it waits on the builder otherwise); -1: no frontend.
	cpu      float64
	own      int64 // peak RSS of the command measured, KiB (floor, plugin)
	frontend int64 // peak RSS of the gateway frontend, KiB
	helper   int64 // peak RSS of the frontend's in-builder commands, KiB
	written  int64 // bytes of the image on standard output; -1: none
	// failed is the last line of a failed build's error ("": it
	// succeeded): the table says a case fails rather than stopping.
	failed string
}

type scaleCase struct {
	id, label, kind string
	reset           func(ctx context.Context) error
	measure         func(ctx context.Context, log string) (scaleMeasurement, error)
}

func (b *scaleBench) cases() []scaleCase {
	none := func(context.Context) error { return nil }
	cold := func(ctx context.Context) error {
		if err := os.RemoveAll(b.hostCache); err != nil {
			return err
		}
		return os.Mkdir(b.hostCache, 0o755)
	}
	buildkitd := func(ctx context.Context) error { return b.bed.resetBuildkitd(ctx) }
	return []scaleCase{
		{id: "scale-floor", label: "floor: lstat of every store entry, GRAPH read", reset: none, measure: b.floor},
		{id: "scale-plan", label: "docker storepack plan", reset: none, measure: b.plan},
		{id: "scale-plugin", label: "docker storepack build → OCI tar on stdout (no builder)", kind: "cold", reset: cold, measure: b.pluginOCI},
		{id: "scale-plugin", label: "docker storepack build → OCI tar on stdout (no builder)", kind: "warm", reset: none, measure: b.pluginOCI},
		{id: "scale-frontend", label: "storepack: buildx → OCI tar on stdout (buildkitd; the frontend's closure)", kind: "cold", reset: buildkitd, measure: b.frontendOCI},
		{id: "scale-client-walk", label: fmt.Sprintf("client's walk for one transfer of %d paths (fsutil's filter)", clientWalkPaths), reset: none, measure: b.clientWalk(clientWalkPaths, false)},
		{id: "scale-client-walk-set", label: fmt.Sprintf("client's walk for one transfer of %d paths (a set of names)", clientWalkPaths), reset: none, measure: b.clientWalk(clientWalkPaths, true)},
		{id: "scale-client-walk-closure", label: "client's walk for one transfer of the closure (a set of names)", reset: none, measure: b.clientWalk(0, true)},
	}
}

// clientWalkPaths are the paths of a transfer the client's walk is
// measured for: an average layer's of 100,000 paths in the manifest's 100.
const clientWalkPaths = 1000

// clientWalk runs clientWalk as its own process: the client's side of one
// of the frontend's transfers of n paths (0: the whole closure), which
// buildx or buildctl walks with the include patterns as given (indexed:
// with a set of names).
func (b *scaleBench) clientWalk(n int, indexed bool) func(context.Context, string) (scaleMeasurement, error) {
	return func(ctx context.Context, log string) (scaleMeasurement, error) {
		how := "filter"
		if indexed {
			how = "indexed"
		}
		r, err := b.bed.run(ctx, nil, b.self, "-scale-client-walk", b.s.root, strconv.Itoa(cmp.Or(min(n, b.s.graph.Len()), b.s.graph.Len())), how)
		b.keepLog(log, r.out)
		return scaleMeasurement{total: r.elapsed.Seconds(), ready: -1, steps: -1, digests: -1, cpu: -1, written: -1}, err
	}
}

// scaleCases measures the scale cases on the bed, interleaving the runs.
func scaleCases(ctx context.Context, opt options, bd *bed, tmp, self string, log io.Writer, loadStart string) error {
	s, err := openSynthetic(ctx, opt.synthetic, log)
	if err != nil {
		return fmt.Errorf("the generated closure: %w", err)
	}
	b := &scaleBench{bed: bd, s: s, self: self, work: filepath.Join(tmp, "work"), logs: opt.logs, hostCache: filepath.Join(tmp, "host-cache")}
	for _, d := range []string{b.work, b.hostCache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var cases []scaleCase
	for _, c := range b.cases() {
		if opt.only.MatchString(c.id) {
			cases = append(cases, c)
		}
	}
	b.frontend = s
	if fopt := frontendSynthetic(opt); fopt.bytes != opt.synthetic.bytes && opt.only.MatchString("scale-frontend") {
		if b.frontend, err = openSynthetic(ctx, fopt, log); err != nil {
			return fmt.Errorf("the frontend's generated closure: %w", err)
		}
	}
	// One untimed walk first, so that no case of run 1 pays alone for
	// reading the store's inodes from disk.
	if _, err := bd.run(ctx, nil, self, "-scale-floor", s.root); err != nil {
		return err
	}
	results := make([][]scaleMeasurement, len(cases))
	for run := 1; run <= opt.runs; run++ {
		for i, c := range cases {
			if err := c.reset(ctx); err != nil {
				return fmt.Errorf("%s: reset: %w", c.id, err)
			}
			m, err := c.measure(ctx, strings.TrimSuffix(fmt.Sprintf("%s-run%d-%s", c.id, run, c.kind), "-"))
			if err != nil && (ctx.Err() != nil || c.id == "scale-floor") {
				return fmt.Errorf("%s %s, run %d: %w", c.id, c.kind, run, err)
			}
			if err != nil {
				m = scaleMeasurement{failed: lastLine(err.Error())}
				fmt.Fprintf(log, "benchbuild: run %d/%d %-16s %-5s FAILED: %v\n", run, opt.runs, c.id, c.kind, err)
			}
			results[i] = append(results[i], m)
			if m.failed != "" {
				continue
			}
			fmt.Fprintf(log, "benchbuild: run %d/%d %-16s %-5s %7.2fs  ready %s  builder steps %s  frontend CPU %s  digests %s  RSS %s / frontend %s\n", run, opt.runs, c.id, c.kind,
				m.total, secondsText(m.ready), secondsText(m.steps), secondsText(m.cpu), secondsText(m.digests), kibText(m.own), kibText(m.frontend))
		}
	}
	scaleReport(os.Stdout, opt, b, cases, results, loadStart, loadAverage())
	return nil
}

// frontendSynthetic is the frontend's closure: opt's, with the frontend's
// bytes.
func frontendSynthetic(opt options) syntheticOptions {
	f := opt.synthetic
	f.bytes = min(opt.syntheticFrontendBytes, opt.synthetic.bytes)
	return f
}

// floor runs syntheticFloor as its own process, its peak RSS measured.
func (b *scaleBench) floor(ctx context.Context, log string) (scaleMeasurement, error) {
	rss := filepath.Join(b.work, "floor-rss")
	r, err := b.bed.run(ctx, nil, b.self, "-report-rss", rss, b.self, "-scale-floor", b.s.root)
	b.keepLog(log, r.out)
	if err != nil {
		return scaleMeasurement{}, err
	}
	return scaleMeasurement{total: r.elapsed.Seconds(), ready: -1, steps: -1, digests: -1, cpu: -1, own: peakRSS(rss), written: -1}, nil
}

// plan runs docker storepack plan of the manifest: planning alone.
func (b *scaleBench) plan(ctx context.Context, log string) (scaleMeasurement, error) {
	return b.plugin(ctx, log, false, "plan", "--store-root", b.s.root, b.s.manifest)
}

// pluginOCI builds the image to an uncompressed OCI archive on standard
// output, which the plugin writes on the host without a builder.
func (b *scaleBench) pluginOCI(ctx context.Context, log string) (scaleMeasurement, error) {
	return b.plugin(ctx, log, true, "build", "--progress=rawjson", "--store-root", b.s.root, "-f", b.s.manifest,
		"-o", "type=oci,compression=uncompressed,dest=-", b.s.root)
}

// plugin runs the plugin binary (what `docker storepack` runs) through
// -report-rss; with progress, the time to its first export step is read
// from the rawjson progress on its standard error.
func (b *scaleBench) plugin(ctx context.Context, log string, progress bool, args ...string) (scaleMeasurement, error) {
	rss := filepath.Join(b.work, "plugin-rss")
	os.Remove(rss)
	env := append(slices.Clip(buildkitEnv), "XDG_CACHE_HOME="+b.hostCache)
	out := countingWriter{w: io.Discard}
	start := time.Now()
	r, err := b.bed.runTo(ctx, env, &out, b.self, append([]string{"-report-rss", rss, b.bed.plugin, "storepack"}, args...)...)
	b.keepLog(log, r.out)
	if err != nil {
		return scaleMeasurement{}, err
	}
	m := scaleMeasurement{total: r.elapsed.Seconds(), ready: -1, steps: -1, digests: -1, cpu: -1, own: peakRSS(rss), written: -1}
	if progress {
		m.written = out.n
		t, err := readyAfter(r.out, start)
		if err != nil {
			return m, err
		}
		// The plugin writes on the host: its steps are its own work.
		m.ready, m.digests = t.ready, t.digests
	}
	return m, nil
}

// frontendOCI builds the manifest with buildx through the frontend image
// on the bed's buildkitd, the store as the named context (transferred
// through the session: part of the conversion), to an uncompressed OCI
// archive on standard output.
func (b *scaleBench) frontendOCI(ctx context.Context, log string) (scaleMeasurement, error) {
	out := countingWriter{w: io.Discard}
	s := startRSSSampler(b.bed.daemons)
	start := time.Now()
	r, err := b.bed.runTo(ctx, nil, &out, "docker", "buildx", "build", "--builder", b.bed.vars["BUILDX_BUILDER"], "--progress=rawjson",
		"--build-context", "store="+b.frontend.storeOnDisk, "-f", b.frontend.manifest, "-o", "type=oci,compression=uncompressed,dest=-", b.frontend.root)
	gateway, helper := s.finish()
	b.keepLog(log, r.out)
	if err != nil {
		return scaleMeasurement{}, err
	}
	t, err := readyAfter(r.out, start)
	return scaleMeasurement{total: r.elapsed.Seconds(), ready: t.ready - t.steps, steps: t.steps, digests: t.digests, cpu: s.gatewayCPU(),
		frontend: gateway, helper: helper, written: out.n}, err
}

// progressTimes are the times a command's rawjson progress gives, in
// seconds.
type progressTimes struct {
	// ready is from the command's start to the first step that writes: the
	// plugin's digest pass or the image's export or write (planning and
	// conversion, before a byte of the image is written).
	ready float64
	// digests is the plugin's digest passes, -1 if there is none.
	digests float64
	// steps is how much of ready some step covers: for a build through
	// the frontend, the builder's work (the frontend's transfers of the
	// store, its in-builder check); the rest is the frontend's own.
	steps float64
}

// readyAfter reads BuildKit's rawjson progress (one SolveStatus a line;
// other lines, such as buildx's own, are skipped) of a command started at
// start.
func readyAfter(progress string, start time.Time) (progressTimes, error) {
	var first time.Time
	type span struct{ started, completed time.Time }
	vertices := map[string]*span{}
	passes := map[string]bool{} // the digest passes, one per platform
	sc := bufio.NewScanner(strings.NewReader(progress))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var st bkclient.SolveStatus
		if json.Unmarshal(sc.Bytes(), &st) != nil {
			continue
		}
		for _, v := range st.Vertexes {
			digest := strings.HasPrefix(v.Name, digestStep)
			if v.Started != nil && (digest || exportStep(v.Name)) && (first.IsZero() || v.Started.Before(first)) {
				first = *v.Started
			}
			passes[v.Digest.String()] = passes[v.Digest.String()] || digest
			vx := vertices[v.Digest.String()]
			if vx == nil {
				vx = &span{}
				vertices[v.Digest.String()] = vx
			}
			if v.Started != nil {
				vx.started = *v.Started
			}
			if v.Completed != nil {
				vx.completed = *v.Completed
			}
		}
	}
	if err := sc.Err(); err != nil {
		return progressTimes{}, err
	}
	if first.IsZero() {
		return progressTimes{}, fmt.Errorf("no export step in the progress:\n%s", tail(progress, 20))
	}
	t := progressTimes{ready: first.Sub(start).Seconds(), digests: -1}
	var before []span // the steps' spans up to the first write
	for dgst, vx := range vertices {
		if passes[dgst] {
			if vx.started.IsZero() || vx.completed.IsZero() {
				return progressTimes{}, fmt.Errorf("a digest pass without its start or end in the progress:\n%s", tail(progress, 20))
			}
			t.digests = max(t.digests, 0) + vx.completed.Sub(vx.started).Seconds()
		}
		if vx.started.IsZero() || !vx.started.Before(first) {
			continue
		}
		end := first
		if !vx.completed.IsZero() && vx.completed.Before(first) {
			end = vx.completed
		}
		from := vx.started
		if from.Before(start) {
			from = start
		}
		before = append(before, span{from, end})
	}
	slices.SortFunc(before, func(a, b span) int { return a.started.Compare(b.started) })
	var covered time.Duration
	var reach time.Time // the end of the steps merged so far
	for _, sp := range before {
		if !sp.completed.After(reach) {
			continue
		}
		from := sp.started
		if from.Before(reach) {
			from = reach
		}
		covered += sp.completed.Sub(from)
		reach = sp.completed
	}
	t.steps = covered.Seconds()
	return t, nil
}

// digestStep starts the name of the plugin's step that writes every layer
// whose digest it does not know, before it writes the image.
const digestStep = "[storepack] digests of "

// exportStep tells the steps that write the image: BuildKit's exporter's
// and the plugin's own when it writes the image on the host.
func exportStep(name string) bool {
	return strings.HasPrefix(name, "exporting ") || strings.HasPrefix(name, "[storepack] write the image on the host")
}

// keepLog writes a command's output under -logs as name.log.
func (b *scaleBench) keepLog(name, out string) {
	if b.logs == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(b.logs, name+".log"), []byte(out), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "benchbuild: keep the log: %v\n", err)
	}
}

func secondsText(s float64) string {
	if s < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", s)
}

// scaleReport prints the scale table: each case's times and peak RSS
// beside the floor's of the same runs.
func scaleReport(w io.Writer, opt options, b *scaleBench, cases []scaleCase, results [][]scaleMeasurement, loadStart, loadEnd string) {
	var floor []float64
	for i, c := range cases {
		if c.id == "scale-floor" {
			for _, m := range results[i] {
				floor = append(floor, m.total)
			}
		}
	}
	fmt.Fprintf(w, "\n$ %s\n", commandLine())
	fmt.Fprintf(w, "generated closure: %d store paths, %.1f GiB (NAR; sparse files), seed %d, %d shared libraries, %d paths holding the bytes; in %s\n",
		b.s.graph.Len(), float64(b.s.narBytes)/(1<<30), opt.synthetic.seed, sharedLibraries, sparsePaths, b.s.root)
	if b.frontend != b.s {
		fmt.Fprintf(w, "the frontend's closure: the same %d store paths and references, %.1f GiB (-synthetic-frontend-gib), in %s\n",
			b.frontend.graph.Len(), float64(b.frontend.narBytes)/(1<<30), b.frontend.root)
	}
	fmt.Fprintf(w, "runs: %d of each, interleaved; load average %s at the start, %s at the end; %d CPUs\n\n", opt.runs, loadStart, loadEnd, runtime.NumCPU())
	rows := [][]string{{"case", "", "median s", "min–max s", "× floor", "plan+conversion s", "× floor", "builder steps s", "frontend CPU s", "digest pass s", "written", "own RSS", "frontend RSS", "helper RSS"}}
	var failures []string
	for i, c := range cases {
		var ms []scaleMeasurement
		for run, m := range results[i] {
			if m.failed != "" {
				failures = append(failures, fmt.Sprintf("%s %s, run %d: %s", c.id, c.kind, run+1, m.failed))
				continue
			}
			ms = append(ms, m)
		}
		if len(ms) == 0 {
			rows = append(rows, []string{c.label, c.kind, "failed", "–", "–", "–", "–", "–", "–", "–", "–", "–", "–", "–"})
			continue
		}
		total := make([]measurement, len(ms))
		ready := make([]measurement, len(ms))
		for k, m := range ms {
			total[k].seconds, ready[k].seconds = m.total, m.ready
		}
		lo, hi := slices.MinFunc(total, bySeconds).seconds, slices.MaxFunc(total, bySeconds).seconds
		readyText, readyRatio, stepsText, cpuText, digestsText := "–", "–", "–", "–", "–"
		if ms[0].ready >= 0 {
			readyText = spread(ms, func(m scaleMeasurement) int64 { return int64(math.Round(m.ready * 1000)) }, millisText)
			readyRatio = pairedRatio(ready, floor)
		}
		if ms[0].steps >= 0 {
			stepsText = spread(ms, func(m scaleMeasurement) int64 { return int64(math.Round(m.steps * 1000)) }, millisText)
		}
		if ms[0].cpu >= 0 {
			cpuText = spread(ms, func(m scaleMeasurement) int64 { return int64(math.Round(m.cpu * 1000)) }, millisText)
		}
		if ms[0].digests >= 0 {
			digestsText = spread(ms, func(m scaleMeasurement) int64 { return int64(math.Round(m.digests * 1000)) }, millisText)
		}
		rows = append(rows, []string{
			c.label, c.kind,
			spread(ms, func(m scaleMeasurement) int64 { return int64(math.Round(m.total * 1000)) }, millisText),
			fmt.Sprintf("%.2f–%.2f", lo, hi),
			pairedRatio(total, floor),
			readyText, readyRatio, stepsText, cpuText, digestsText,
			spread(ms, func(m scaleMeasurement) int64 { return m.written }, bytesText),
			spread(ms, func(m scaleMeasurement) int64 { return m.own }, kibText),
			spread(ms, func(m scaleMeasurement) int64 { return m.frontend }, kibText),
			spread(ms, func(m scaleMeasurement) int64 { return m.helper }, kibText),
		})
	}
	printTable(w, rows)
	fmt.Fprintln(w, `
floor: this binary walks the store (an lstat of every entry) and reads the GRAPH with the store package, as its own
  process: what any builder does at the least before it writes a byte. × floor: each run's time over the floor's in the
  same run, the median ratio (and the range).
plan+conversion: from the command's start to the start of the first step that writes (BuildKit's "exporting ...",
  the plugin's "[storepack] digests of ..." or "[storepack] write the image on the host ..."), from the rawjson
  progress, less the builder's steps before it. builder steps: the time before that write that the builder's steps
  cover, merged (for the frontend: its transfers of the store through the session, its in-builder check, its image's
  pull); "–": the plugin writes on the host, its steps its own. frontend CPU: the gateway frontend's CPU time, user and
  system, from /proc at its last sample (its own planning, conversion and messages; it waits on the builder otherwise).
digest pass: the plugin's "[storepack] digests of ..." step, which writes each layer whose digest its host cache
  does not know, to learn it, before the image's write (cold); "–": the command has none.
written: the bytes of the OCI archive on standard output, discarded. own RSS: peak (ru_maxrss) of the floor's or the
  plugin's process; frontend RSS: of the gateway frontend in buildkitd; helper RSS: of its in-builder commands.
cold: the plugin's host cache of layer digests empty (the frontend: buildkitd's cache pruned); warm: right after cold.
client's walk: this binary, as its own process, walks the store as buildx's session does for one of the frontend's
  transfers (1,000 of the closure's paths, spread over it, as include patterns, through the fsutil buildx is built with), and the
  same with the names in a set instead, and the whole closure so: each include pattern is matched against every
  entry of the store (and of the paths sent), so a transfer's walk grows with the store times its patterns.`)
	if len(failures) > 0 {
		fmt.Fprintln(w, "\nfailed builds (not in the figures above):")
		for _, f := range failures {
			fmt.Fprintln(w, "  "+f)
		}
	}
}

func bySeconds(a, b measurement) int { return cmp.Compare(a.seconds, b.seconds) }

func millisText(n int64) string { return fmt.Sprintf("%.2f", float64(n)/1000) }

// lastLine is the last non-empty line of s: a failed command's error.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
