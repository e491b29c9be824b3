// Command reusebench measures what each layering strategy makes a registry
// receive over realistic release histories (see package corpus), and how
// long each takes to plan a 100,000-path closure. Run it from the module:
//
//	go run ./layering/internal/reusebench [-histories] [-no-timing] [-held-out N]
//
// Over a history, a layer is pushed when its exact set of store paths was in
// no earlier release's image; the first release pushes everything. The
// lower bound is one layer per path with no budget: then exactly the new
// paths are pushed, and no plan can push less, since a layer holding a new
// path is itself new. A strategy's overhead is what it pushes beyond that.
//
// "storepack+previous" is storepack given, for each release, the plan it
// made for the release before, as a build reading the previous image does.
//
// With -held-out N it also replays N histories rooted at other packages of
// the fixture (corpus.HeldOut), which no constant of the strategies was
// chosen on, and prints how storepack fares against auto on them, and
// storepack with the previous layout against storepack without. To
// calibrate those per-history counts it also compares auto with itself
// given one layer less: how often two plans one join apart each win.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/layering/internal/corpus"
)

// budgets are the layer budgets measured; 100 is the manifest's default.
var budgets = []int{20, 64, 100}

// timingPaths is the size of the closure planned for timing.
const timingPaths = 100_000

// variant is one row group of the table: a strategy, maybe fed the
// previous release's plan, maybe given fewer layers than the budget.
type variant struct {
	strategy     string
	withPrevious bool
	fewerLayers  int
}

func (v variant) String() string {
	switch {
	case v.withPrevious:
		return v.strategy + "+previous"
	case v.fewerLayers > 0:
		return fmt.Sprintf("%s at K−%d", v.strategy, v.fewerLayers)
	}
	return v.strategy
}

var (
	auto              = variant{strategy: "auto"}
	storepack         = variant{strategy: "storepack"}
	storepackPrevious = variant{strategy: "storepack", withPrevious: true}
	variants          = []variant{{strategy: "single"}, {strategy: "per-path"}, {strategy: "popularity"}, auto, storepack, storepackPrevious}

	// autoOneFewer calibrates the held-out comparisons: auto against
	// itself with one layer less, a plan that differs from auto's only
	// where one more join must be made.
	autoOneFewer = variant{strategy: "auto", fewerLayers: 1}

	// heldOutVariants are the variants the held-out table compares.
	heldOutVariants = []variant{auto, autoOneFewer, storepack, storepackPrevious}
)

// replayed is what replaying one history with one variant and budget gave.
type replayed struct {
	pushed            uint64 // bytes of layers no earlier release had
	layers, images    int
	smallest, largest uint64 // layer sizes
}

// results is everything the benchmark measured.
type results struct {
	histories []corpus.History
	bounds    []uint64                       // by history: what one layer per path pushes
	replays   map[variant]map[int][]replayed // by variant, budget and history
	planTimes map[variant]map[int]planTime   // nil if not measured
}

// planTime is how long planning the synthetic closure took, the best of a
// few runs: wall time, and CPU time (0 where not measured), which a busy
// machine does not inflate.
type planTime struct{ wall, cpu time.Duration }

func (t planTime) String() string {
	s := fmt.Sprintf("%.0f ms", t.wall.Seconds()*1000)
	if t.cpu > 0 {
		s += fmt.Sprintf(" (%.0f cpu)", t.cpu.Seconds()*1000)
	}
	return s
}

func main() {
	perHistory := flag.Bool("histories", false, "also print every variant's bytes pushed per history, as a ratio to the bound")
	skipTiming := flag.Bool("no-timing", false, "skip planning the 100,000-path closure")
	heldOut := flag.Int("held-out", 0, "also replay this many held-out histories and compare storepack with auto on them")
	flag.Parse()
	histories, err := corpus.Histories()
	if err != nil {
		fail(err)
	}
	r, err := measure(histories, variants, !*skipTiming)
	if err != nil {
		fail(err)
	}
	r.printCorpus(os.Stdout)
	r.printTable(os.Stdout)
	if *perHistory {
		r.printHistories(os.Stdout)
	}
	fmt.Println()
	for _, g := range r.goals() {
		fmt.Println(g)
	}
	if *heldOut > 0 {
		histories, err := corpus.HeldOut(*heldOut)
		if err != nil {
			fail(err)
		}
		held, err := measure(histories, heldOutVariants, false)
		if err != nil {
			fail(err)
		}
		fmt.Println()
		held.printHeldOut(os.Stdout)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "reusebench:", err)
	os.Exit(1)
}

// measure replays every history with each of variants at every budget and,
// if timing, times the plans of the synthetic closure.
func measure(histories []corpus.History, variants []variant, timing bool) (*results, error) {
	r := &results{histories: histories, bounds: make([]uint64, len(histories)), replays: make(map[variant]map[int][]replayed)}
	for h, history := range histories {
		bound, err := replay(history, variant{strategy: "per-path"}, math.MaxInt)
		if err != nil {
			return nil, err
		}
		r.bounds[h] = bound.pushed
		for _, v := range variants {
			if r.replays[v] == nil {
				r.replays[v] = make(map[int][]replayed)
			}
			for _, budget := range budgets {
				replayed, err := replay(history, v, budget)
				if err != nil {
					return nil, fmt.Errorf("%s, %s, budget %d: %w", history.Name, v, budget, err)
				}
				r.replays[v][budget] = append(r.replays[v][budget], replayed)
			}
		}
	}
	if timing {
		planTimes, err := timePlans()
		if err != nil {
			return nil, err
		}
		r.planTimes = planTimes
	}
	return r, nil
}

// replay plans every release of a history and counts what is pushed.
func replay(h corpus.History, v variant, budget int) (replayed, error) {
	r := replayed{smallest: math.MaxUint64}
	pushed := make(map[string]bool)
	var previous *layering.Plan
	for _, release := range h.Releases {
		opt := layering.Options{Strategy: v.strategy, MaxLayers: budget - v.fewerLayers}
		if v.withPrevious {
			opt.Previous = previous
		}
		plan, err := layering.NewPlan(release.Graph, opt)
		if err != nil {
			return replayed{}, err
		}
		for _, layer := range plan.Layers {
			if id := contentID(layer); !pushed[id] {
				pushed[id] = true
				r.pushed += layer.Size
			}
			r.smallest = min(r.smallest, layer.Size)
			r.largest = max(r.largest, layer.Size)
		}
		r.layers += len(plan.Layers)
		r.images++
		previous = &plan
	}
	return r, nil
}

// contentID identifies a layer by its exact set of store paths.
func contentID(layer layering.Layer) string {
	var b strings.Builder
	for _, p := range layer.Paths {
		b.WriteString(p.Hash)
		b.WriteString(p.Name)
	}
	return b.String()
}

// timePlans measures each variant planning the synthetic closure at each
// budget, best of timingRuns. The previous-layout variant gets the plan
// storepack made without one, as for an unchanged rebuild.
func timePlans() (map[variant]map[int]planTime, error) {
	const timingRuns = 3
	g, err := corpus.Synthetic(timingPaths, 1)
	if err != nil {
		return nil, err
	}
	times := make(map[variant]map[int]planTime)
	for _, v := range variants {
		times[v] = make(map[int]planTime)
		for _, budget := range budgets {
			opt := layering.Options{Strategy: v.strategy, MaxLayers: budget}
			if v.withPrevious {
				previous, err := layering.NewPlan(g, opt)
				if err != nil {
					return nil, err
				}
				opt.Previous = &previous
			}
			best := planTime{wall: math.MaxInt64, cpu: math.MaxInt64}
			for range timingRuns {
				runtime.GC() // not the previous run's garbage
				start := time.Now()
				startCPU, _ := cpuTime()
				if _, err := layering.NewPlan(g, opt); err != nil {
					return nil, fmt.Errorf("timing %s: %w", v, err)
				}
				endCPU, _ := cpuTime()
				best = planTime{wall: min(best.wall, time.Since(start)), cpu: min(best.cpu, endCPU-startCPU)}
			}
			times[v][budget] = best
		}
	}
	return times, nil
}

func (r *results) printCorpus(w io.Writer) {
	var parts []string
	for _, h := range r.histories {
		first, last := h.Releases[0].Graph.Len(), h.Releases[len(h.Releases)-1].Graph.Len()
		parts = append(parts, fmt.Sprintf("%s (%s, %d→%d paths)", h.Name, h.Root, first, last))
	}
	fmt.Fprintf(w, "corpus: %d histories of %d releases: %s\n\n", len(r.histories), len(r.histories[0].Releases), strings.Join(parts, ", "))
}

// printTable prints the one table of all strategies: bytes pushed over the
// whole corpus, as ratios to the lower bound and to auto, the overhead over
// the bound as a ratio to auto's, layers per image, the smallest and
// largest layer, and the time to plan the synthetic closure (wall time,
// and CPU time in parentheses).
func (r *results) printTable(w io.Writer) {
	bound := sum(r.bounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tK\tpushed MiB\t× bound\t× auto\toverhead ÷ auto's\tlayers/image\tsmallest\tlargest\tplan 100k\t")
	fmt.Fprintf(tw, "per-path\t∞\t%s\t1.000\t\t\t\t\t\t\t\n", mib(bound))
	for _, budget := range budgets {
		autoPushed := r.pushed(auto, budget)
		for _, v := range variants {
			layers, images := 0, 0
			smallest, largest := uint64(math.MaxUint64), uint64(0)
			for _, replayed := range r.replays[v][budget] {
				layers += replayed.layers
				images += replayed.images
				smallest = min(smallest, replayed.smallest)
				largest = max(largest, replayed.largest)
			}
			planTime := ""
			if r.planTimes != nil {
				planTime = r.planTimes[v][budget].String()
			}
			pushed := r.pushed(v, budget)
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.3f\t%.3f\t%.3f\t%.1f\t%s\t%s\t%s\t\n", v, budget, mib(pushed),
				ratio(pushed, bound), ratio(pushed, autoPushed), ratio(pushed-bound, autoPushed-bound),
				float64(layers)/float64(images), size(smallest), size(largest), planTime)
		}
	}
	tw.Flush()
}

// printHistories prints bytes pushed per history as a ratio to its bound.
func (r *results) printHistories(w io.Writer) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "history\tK\tbound MiB\t"
	for _, v := range variants {
		header += v.String() + "\t"
	}
	fmt.Fprintln(tw, header)
	for h, history := range r.histories {
		for _, budget := range budgets {
			line := fmt.Sprintf("%s\t%d\t%s\t", history.Name, budget, mib(r.bounds[h]))
			for _, v := range variants {
				line += fmt.Sprintf("%.3f\t", ratio(r.replays[v][budget][h].pushed, r.bounds[h]))
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
}

// printHeldOut prints, for storepack with and without the previous layout,
// its overhead over the bound as a ratio to auto's, and on how many
// histories, and by how much at most, it ships more than the variants it
// must never ship more than (see mustNotLose). A last row per budget
// calibrates those counts: on how many histories auto ships more than
// auto itself given one layer less.
func (r *results) printHeldOut(w io.Writer) {
	fewest, most := r.graphSizes()
	fmt.Fprintf(w, "held-out: %d histories of %d releases, %d to %d paths\n\n", len(r.histories), len(r.histories[0].Releases), fewest, most)
	bound := sum(r.bounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tK\toverhead ÷ auto's\tships more than\ton\tat most\t")
	rows := append(slices.Clip(mustNotLose), [2]variant{auto, autoOneFewer})
	for _, budget := range budgets {
		autoOverhead := r.pushed(auto, budget) - bound
		for _, pair := range rows {
			v, than := pair[0], pair[1]
			worst := 0.0
			losses := r.losses(v, than, budget)
			for _, h := range losses {
				worst = max(worst, ratio(r.replays[v][budget][h].pushed, r.replays[than][budget][h].pushed)-1)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.3f\t%s\t%d of %d\t%.2f%%\t\n", v, budget, ratio(r.pushed(v, budget)-bound, autoOverhead), than, len(losses), len(r.histories), 100*worst)
		}
	}
	tw.Flush()
}

// graphSizes returns the fewest and the most paths of any release.
func (r *results) graphSizes() (fewest, most int) {
	fewest = math.MaxInt
	for _, h := range r.histories {
		for _, release := range h.Releases {
			fewest, most = min(fewest, release.Graph.Len()), max(most, release.Graph.Len())
		}
	}
	return fewest, most
}

// pushed is what a variant pushed over the whole corpus at a budget.
func (r *results) pushed(v variant, budget int) uint64 {
	var total uint64
	for _, replayed := range r.replays[v][budget] {
		total += replayed.pushed
	}
	return total
}

// A goal is one acceptance goal of the layering issue, checked.
type goal struct {
	name   string
	met    bool
	detail string
}

func (g goal) String() string {
	verdict := "FAIL"
	if g.met {
		verdict = "PASS"
	}
	return fmt.Sprintf("%s %s: %s", verdict, g.name, g.detail)
}

// goals checks the goals for storepack, with and without the
// previous layout: overhead over the bound summed over the corpus at most
// half of auto's at K=20 and K=64, and at most auto's at K=100; no history
// and budget on which it ships more than auto; the previous layout never
// worse than none; no plan below the bound; and planning the synthetic
// closure in under a second.
func (r *results) goals() []goal {
	var goals []goal
	bound := sum(r.bounds)
	for _, v := range []variant{storepack, storepackPrevious} {
		for _, budget := range budgets {
			own, autos := r.pushed(v, budget)-bound, r.pushed(auto, budget)-bound
			limit, share := float64(autos)/2, "half of auto's"
			if budget == 100 {
				limit, share = float64(autos), "auto's"
			}
			goals = append(goals, goal{
				name:   fmt.Sprintf("%s K=%d overhead at most %s", v, budget, share),
				met:    float64(own) <= limit,
				detail: fmt.Sprintf("%s MiB against %s MiB (%.3f)", mib(own), mib(autos), ratio(own, autos)),
			})
		}
	}
	for _, pair := range mustNotLose {
		goals = append(goals, r.nowhereWorse(pair[0], pair[1]))
	}
	var below []string
	for _, v := range variants {
		for _, budget := range budgets {
			for h, replayed := range r.replays[v][budget] {
				if replayed.pushed < r.bounds[h] {
					below = append(below, fmt.Sprintf("%s %s K=%d", v, r.histories[h].Name, budget))
				}
			}
		}
	}
	goals = append(goals, goal{name: "one layer per path with no budget is a lower bound", met: len(below) == 0, detail: listed("below it", below)})
	if r.planTimes != nil {
		var slowest planTime
		for _, v := range []variant{storepack, storepackPrevious} {
			for _, budget := range budgets {
				slowest = planTime{wall: max(slowest.wall, r.planTimes[v][budget].wall), cpu: max(slowest.cpu, r.planTimes[v][budget].cpu)}
			}
		}
		goals = append(goals, goal{
			name:   fmt.Sprintf("storepack plans a %d-path closure in under a second", timingPaths),
			met:    slowest.wall < time.Second,
			detail: fmt.Sprintf("slowest %s", slowest),
		})
	}
	return goals
}

// mustNotLose pairs each variant with one it must ship no more than on any
// history and budget: storepack with auto, and the previous layout with
// none.
var mustNotLose = [][2]variant{{storepack, auto}, {storepackPrevious, auto}, {storepackPrevious, storepack}}

// nowhereWorse checks that v pushes no more than than on every history and
// budget.
func (r *results) nowhereWorse(v, than variant) goal {
	var worse []string
	for _, budget := range budgets {
		for _, h := range r.losses(v, than, budget) {
			own, other := r.replays[v][budget][h].pushed, r.replays[than][budget][h].pushed
			worse = append(worse, fmt.Sprintf("%s K=%d by %s MiB (%.2f%%)", r.histories[h].Name, budget, mib(own-other), 100*(ratio(own, other)-1)))
		}
	}
	return goal{name: fmt.Sprintf("%s ships no more than %s on any history and budget", v, than), met: len(worse) == 0, detail: listed("more on", worse)}
}

// losses returns the histories on which v pushes more than than at a
// budget.
func (r *results) losses(v, than variant, budget int) []int {
	var histories []int
	for h, replayed := range r.replays[v][budget] {
		if replayed.pushed > r.replays[than][budget][h].pushed {
			histories = append(histories, h)
		}
	}
	return histories
}

func listed(what string, items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return what + " " + strings.Join(items, ", ")
}

func sum(values []uint64) uint64 {
	var total uint64
	for _, v := range values {
		total += v
	}
	return total
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func mib(bytes uint64) string { return fmt.Sprintf("%.1f", float64(bytes)/(1<<20)) }

// size renders a layer size compactly.
func size(bytes uint64) string {
	switch {
	case bytes >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(bytes)/(1<<30))
	case bytes >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
	default:
		return fmt.Sprintf("%.0f KiB", float64(bytes)/(1<<10))
	}
}
