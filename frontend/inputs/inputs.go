// Package inputs resolves what a manifest names (its roots, its GRAPH
// files, the platforms its closures are built for) into one closure graph
// per target platform. The caller does the I/O through a Source: the
// frontend through the BuildKit gateway, the CLI plugin on the host.
package inputs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// Source gives access to the build context and the store. What a call
// brings into the builder comes back in its result, for the conversion to
// pass on: no call depends on another having been made.
type Source interface {
	// Context returns the build context, holding at least the named files
	// (GRAPH files and root symlinks, relative to the context root).
	Context(ctx context.Context, names []string) (Files, error)
	// Store returns the store directory holding at least paths, or a
	// *MissingPathError naming one it lacks (with a path that references
	// it, when graph is given).
	Store(ctx context.Context, paths []store.Path, graph *store.Graph) (StoreFiles, error)
	// Discover finds the closure of roots by scanning the store, for
	// platform p, which has no GRAPH; held is what Store brought the roots
	// in with.
	Discover(ctx context.Context, p ocispecs.Platform, roots []store.Path, held Transfers) (Discovery, error)
}

// Transfers are store paths the builder holds already, each part with the
// Paths it holds, for the layers to copy from rather than transfer again:
// the frontend's transfers of the roots and of a discovery's rounds. The
// host's source transfers each layer's paths itself and holds none.
type Transfers struct {
	Parts []layerllb.Part
	Where string // the store they came from, as a user knows it
}

// StoreFiles are the store's files and the transfers that brought them.
type StoreFiles struct {
	Files
	Transfers
}

// Discovery is a closure found by scanning, and the transfers that
// brought its store paths into the builder.
type Discovery struct {
	Graph *store.Graph
	Transfers
}

// Inputs is what the build context gives a manifest, read once for every
// target platform.
type Inputs struct {
	src      Source
	closures []closureInput // in manifest order
	graphs   []graphInput
	roots    Transfers // where the builder holds the roots
}

type closureInput struct {
	manifest.RootSet
	platform *ocispecs.Platform // from --platform; nil: untagged
	roots    []store.Path
	built    *ocispecs.Platform // from the roots' ELF files; nil: none found
}

type graphInput struct {
	manifest.Graph
	platform *ocispecs.Platform
	graph    *store.Graph
	sum      digest.Digest // of the file
}

// Read resolves every CLOSURE's roots, loads every GRAPH, and tells from
// their ELF files which platform each closure's roots are built for.
func Read(ctx context.Context, m *manifest.Spec, src Source) (*Inputs, error) {
	in := &Inputs{src: src}
	// Read every context file the manifest names in one transfer.
	var names []string
	for _, g := range m.Graphs {
		rel, err := ContextPath(g.File)
		if err != nil {
			return nil, parser.WithLocation(err, g.Location)
		}
		names = append(names, rel)
	}
	for _, c := range m.Closures {
		for _, r := range c.Roots {
			if !isStorePath(m.StoreDir, r) {
				rel, err := ContextPath(r)
				if err != nil {
					return nil, parser.WithLocation(err, c.Location)
				}
				names = append(names, rel)
			}
		}
	}
	files, err := src.Context(ctx, names)
	if err != nil {
		return nil, err
	}

	var allRoots []store.Path
	for _, c := range m.Closures {
		ci := closureInput{RootSet: c}
		if ci.platform, err = optionalPlatform(c.Platform); err != nil {
			return nil, parser.WithLocation(err, c.Location)
		}
		for _, r := range c.Roots {
			root, err := resolveRoot(ctx, files, m.StoreDir, r)
			if err != nil {
				return nil, parser.WithLocation(err, c.Location)
			}
			ci.roots = append(ci.roots, root)
		}
		allRoots = append(allRoots, ci.roots...)
		in.closures = append(in.closures, ci)
	}

	for _, g := range m.Graphs {
		gi := graphInput{Graph: g}
		if gi.platform, err = optionalPlatform(g.Platform); err != nil {
			return nil, parser.WithLocation(err, g.Location)
		}
		rel, _ := ContextPath(g.File)
		if gi.sum, gi.graph, err = loadGraph(ctx, files, rel, g.File); err != nil {
			return nil, parser.WithLocation(err, g.Location)
		}
		if dir := gi.graph.StoreDir(); dir != m.StoreDir {
			return nil, parser.WithLocation(fmt.Errorf("GRAPH %s: its paths are in %s, but the store directory is %s (set it with STORE)", g.File, dir, m.StoreDir), g.Location)
		}
		in.graphs = append(in.graphs, gi)
	}

	// The roots alone tell the platform; the closures follow per platform.
	storeFiles, err := src.Store(ctx, allRoots, nil)
	var missing *MissingPathError
	if errors.As(err, &missing) {
		for _, ci := range in.closures {
			if slices.Contains(ci.roots, missing.Path) {
				return nil, parser.WithLocation(fmt.Errorf("root %s is not in %s", missing.Path, missing.Where), ci.Location)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	in.roots = storeFiles.Transfers
	for i := range in.closures {
		ci := &in.closures[i]
		built, file, err := detectPlatform(ctx, storeFiles, ci.roots)
		if err != nil {
			return nil, parser.WithLocation(err, ci.Location)
		}
		ci.built = built
		if built != nil && ci.platform != nil && !runsOn(*built, *ci.platform) {
			return nil, parser.WithLocation(fmt.Errorf("CLOSURE --platform=%s: its binaries are built for %s (%s)", ci.Platform, platforms.Format(*built), file), ci.Location)
		}
	}
	return in, nil
}

// loadGraph reads the GRAPH file at rel in the context (name in the
// manifest) as it streams by, for its graph and the digest of its content.
func loadGraph(ctx context.Context, files Files, rel, name string) (digest.Digest, *store.Graph, error) {
	f, err := files.Open(ctx, rel)
	if err != nil {
		return "", nil, fmt.Errorf("GRAPH %s: cannot read it from the build context: %w", name, err)
	}
	defer f.Close()
	digester := digest.Canonical.Digester()
	r := &recordedErr{r: io.TeeReader(f, digester.Hash())}
	g, err := store.Load(name, r)
	if err == nil {
		// Load reads every format to its end; were one to stop early, the
		// digest must still be of the whole file.
		_, err = io.Copy(io.Discard, r)
	}
	switch {
	case r.err != nil:
		return "", nil, fmt.Errorf("GRAPH %s: cannot read it from the build context: %w", name, r.err)
	case err != nil:
		return "", nil, err
	}
	return digester.Digest(), g, nil
}

// recordedErr keeps the error of reading r other than its end, to tell a
// file that cannot be read from one whose content is wrong.
type recordedErr struct {
	r   io.Reader
	err error
}

func (r *recordedErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Key identifies what the inputs were read from: every CLOSURE's roots,
// resolved, and every GRAPH file's content, each with its platform. Store
// paths never change once they exist, so equal keys mean equal closures.
func (in *Inputs) Key() digest.Digest {
	var b strings.Builder
	for _, c := range in.closures {
		fmt.Fprintf(&b, "CLOSURE %q %q", c.Platform, c.Name)
		for _, r := range c.roots {
			fmt.Fprintf(&b, " %q", r.String())
		}
		b.WriteByte('\n')
	}
	for _, g := range in.graphs {
		fmt.Fprintf(&b, "GRAPH %q %s\n", g.Platform, g.sum)
	}
	return digest.FromString(b.String())
}

// PlatformClosure is one platform's closure and the values of its root
// variables.
type PlatformClosure struct {
	Platform ocispecs.Platform
	Roots    []store.Path
	Vars     map[string]string // manifest.RootVariable and every CLOSURE --name
	Graph    *store.Graph
	Location manifest.Location // of the first CLOSURE
	// Graphs are the GRAPH files the closure was read from, in manifest
	// order; none for a discovered closure.
	Graphs []GraphFile

	// Discovered is true when no GRAPH applied and the Source found the
	// closure by reading every file of it.
	Discovered bool
	// Transfers hold store paths of the closure in the builder already:
	// the roots, or every path of a discovered closure.
	Transfers Transfers
}

// GraphFile is a GRAPH file by its content's digest.
type GraphFile struct {
	File   string        `json:"file"`
	Digest digest.Digest `json:"digest"`
}

// ForPlatform selects the closures and graphs for p and computes the
// closure; without a GRAPH for p, the Source discovers it.
func (in *Inputs) ForPlatform(ctx context.Context, p ocispecs.Platform) (*PlatformClosure, error) {
	c := &PlatformClosure{Platform: p, Vars: map[string]string{}}
	var rootLocs []manifest.Location // the CLOSURE of each root
	var builtFor []string
	for _, ci := range in.closures {
		applies := ci.platform == nil && (ci.built == nil || runsOn(*ci.built, p)) ||
			ci.platform != nil && platforms.OnlyStrict(p).Match(*ci.platform)
		if !applies {
			if ci.built != nil {
				builtFor = append(builtFor, ci.Roots[0]+" is built for "+platforms.Format(*ci.built))
			}
			continue
		}
		if len(c.Roots) == 0 {
			c.Vars[manifest.RootVariable] = ci.roots[0].String()
			c.Location = ci.Location
		}
		if ci.Name != "" {
			if _, dup := c.Vars[ci.Name]; dup {
				return nil, parser.WithLocation(fmt.Errorf("two CLOSUREs named %s apply to %s", ci.Name, platforms.Format(p)), ci.Location)
			}
			c.Vars[ci.Name] = ci.roots[0].String()
		}
		for range ci.roots {
			rootLocs = append(rootLocs, ci.Location)
		}
		c.Roots = append(c.Roots, ci.roots...)
	}
	if len(c.Roots) == 0 {
		msg := "no CLOSURE for platform " + platforms.Format(p)
		if len(builtFor) > 0 {
			msg += ": " + strings.Join(builtFor, "; ")
		}
		return nil, errors.New(msg)
	}

	var graphs []*store.Graph
	var first *graphInput
	for i, g := range in.graphs {
		if g.platform != nil && !platforms.OnlyStrict(p).Match(*g.platform) {
			continue
		}
		if first == nil {
			first = &in.graphs[i]
		}
		c.Graphs = append(c.Graphs, GraphFile{File: g.File, Digest: g.sum})
		graphs = append(graphs, g.graph)
	}
	if first == nil {
		found, err := in.src.Discover(ctx, c.Platform, c.Roots, in.roots)
		if err != nil {
			return nil, parser.WithLocation(err, c.Location)
		}
		if c.Graph, err = found.Graph.Closure(c.Roots...); err != nil {
			return nil, err
		}
		c.Discovered, c.Transfers = true, found.Transfers
		return c, nil
	}
	c.Transfers = in.roots
	graph, err := merge(graphs)
	if err != nil {
		return nil, parser.WithLocation(err, first.Location)
	}
	for i, root := range c.Roots {
		if _, ok := graph.Info(root); !ok {
			return nil, parser.WithLocation(fmt.Errorf("root %s is not in the GRAPH files", root), rootLocs[i])
		}
	}
	if c.Graph, err = graph.Closure(c.Roots...); err != nil {
		return nil, err
	}
	return c, nil
}

// merge returns the graph of every path of graphs, which must agree where
// they share one; one graph is its own merge, not a copy of it: a GRAPH of
// 100,000 paths is held once.
func merge(graphs []*store.Graph) (*store.Graph, error) {
	if len(graphs) == 1 {
		return graphs[0], nil
	}
	var infos []store.Info
	for _, g := range graphs {
		for _, path := range g.Paths() {
			info, _ := g.Info(path)
			infos = append(infos, info)
		}
	}
	return store.NewGraph(infos)
}

func optionalPlatform(spec string) (*ocispecs.Platform, error) {
	if spec == "" {
		return nil, nil
	}
	p, err := ParsePlatform(spec)
	return &p, err
}

// isStorePath tells a root given as a store path from a context path.
func isStorePath(storeDir, root string) bool {
	return strings.HasPrefix(root, storeDir+"/")
}

// resolveRoot turns a root into its store path: a store path (or a path
// inside one) as is, a context symlink by its target.
func resolveRoot(ctx context.Context, files Files, storeDir, root string) (store.Path, error) {
	target := root
	if !isStorePath(storeDir, root) {
		rel, _ := ContextPath(root)
		e, err := files.Lookup(ctx, rel)
		if err != nil {
			return store.Path{}, fmt.Errorf("root %s: %w", root, err)
		}
		if e == nil {
			return store.Path{}, fmt.Errorf("root %s is not in the build context", root)
		}
		if e.Mode&fs.ModeSymlink == 0 {
			return store.Path{}, fmt.Errorf("root %s is not a symlink into the store (such as nix-build's ./result) nor a store path", root)
		}
		target = e.Linkname
		if !path.IsAbs(target) || !isStorePath(storeDir, target) {
			return store.Path{}, fmt.Errorf("root %s points to %s, which is outside the store %s", root, target, storeDir)
		}
	}
	p, _, err := store.SplitSubPath(path.Clean(target))
	if err != nil {
		return store.Path{}, fmt.Errorf("root %s: %w", root, err)
	}
	if p.Dir != storeDir {
		return store.Path{}, fmt.Errorf("root %s is outside the store %s", root, storeDir)
	}
	return p, nil
}

// MissingPathError is a store path the store lacks.
type MissingPathError struct {
	Path     store.Path
	Referrer *store.Path // a path that references it, when known
	Where    string      // the store, as a user knows it
}

func (e *MissingPathError) Error() string {
	msg := "store path " + e.Path.String() + " is not in " + e.Where
	if e.Referrer != nil {
		msg += " (it is referenced by " + e.Referrer.String() + ")"
	}
	return msg
}

// CheckPresent returns a *MissingPathError for the first path the store
// directory lacks.
func CheckPresent(ctx context.Context, storeFiles Files, paths []store.Path, graph *store.Graph, where string) error {
	if len(paths) > maxLookups {
		_, err := checkListed(ctx, storeFiles, paths, graph, where)
		return err
	}
	for _, p := range paths {
		switch e, err := storeFiles.Lookup(ctx, p.Base()); {
		case err != nil:
			return fmt.Errorf("look for %s in %s: %w", p, where, err)
		case e == nil:
			return missingPath(p, graph, where)
		}
	}
	return nil
}

// CheckOnly is CheckPresent of a directory that must hold paths and
// nothing else, such as a transfer of them that a layer copies whole; an
// entry beside them is an error that names it.
func CheckOnly(ctx context.Context, storeFiles Files, paths []store.Path, graph *store.Graph, where string) error {
	names, err := checkListed(ctx, storeFiles, paths, graph, where)
	if err != nil || len(names) == len(paths) {
		return err
	}
	asked := make(map[string]bool, len(paths))
	for _, p := range paths {
		asked[p.Base()] = true
	}
	for _, name := range names {
		if !asked[name] {
			return fmt.Errorf("%s holds %s beside the store paths asked for", where, name)
		}
	}
	return fmt.Errorf("%s holds %d entries for %d store paths", where, len(names), len(paths))
}

// checkListed lists the store directory, sorted, and returns a
// *MissingPathError for the first path it lacks.
func checkListed(ctx context.Context, storeFiles Files, paths []store.Path, graph *store.Graph, where string) ([]string, error) {
	names, err := storeFiles.ReadNames(ctx, "")
	if err != nil && !IsNotExist(err) {
		return nil, fmt.Errorf("list the store in %s: %w", where, err)
	}
	slices.Sort(names)
	for _, p := range paths {
		if _, found := slices.BinarySearchFunc(names, p, compareBase); !found {
			return nil, missingPath(p, graph, where)
		}
	}
	return names, nil
}

// missingPath is the *MissingPathError of p, naming a path of graph that
// references it.
func missingPath(p store.Path, graph *store.Graph, where string) error {
	missing := &MissingPathError{Path: p, Where: where}
	if graph != nil {
		if refs := graph.Referrers(p); len(refs) > 0 {
			missing.Referrer = &refs[0]
		}
	}
	return missing
}

// maxLookups is how many store paths CheckPresent looks up one by one
// rather than listing the store, which may hold 100,000 entries.
const maxLookups = 16

// compareBase orders a directory entry's name against p's base name,
// Hash-Name, without building it.
func compareBase(name string, p store.Path) int {
	hash, rest := name[:min(len(name), len(p.Hash))], name[min(len(name), len(p.Hash)):]
	if c := strings.Compare(hash, p.Hash); c != 0 {
		return c
	}
	if rest == "" {
		return -1 // a prefix of Hash-Name
	}
	if c := cmp.Compare(rest[0], '-'); c != 0 {
		return c
	}
	return strings.Compare(rest[1:], p.Name)
}

// CheckNarSize compares the NAR size measured of p in the store (where)
// with the closure's graph, which tells a store that is not the one the
// graph describes. A graph without sizes matches any.
func (c *PlatformClosure) CheckNarSize(p store.Path, measured uint64, where string) error {
	if size, _, _ := c.Graph.NAR(p); size != 0 && measured != size {
		return fmt.Errorf("store path %s in %s is not the one the GRAPH describes: its NAR is %d bytes, the GRAPH says %d", p, where, measured, size)
	}
	return nil
}

// ContextPath turns a manifest file path into a path relative to the
// context root, refusing paths that leave the context.
func ContextPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("%s: paths may not leave the build context (..)", p)
		}
	}
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		return "", fmt.Errorf("%s: names the context root, not a file", p)
	}
	return rel, nil
}
