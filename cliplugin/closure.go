package cliplugin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/storepack/storepack/store"
)

// This file turns ROOT arguments into a closure graph, for `graph` and for
// `plan` without a manifest: it finds the store paths the arguments name
// and loads the graph from where --from says.

// The values of --from other than a graph file.
const (
	fromAuto = "auto"
	fromNix  = "nix"
	fromDB   = "db"
	fromScan = "scan"
)

// storeDatabases maps a store directory to its store's SQLite database.
// A variable, so that tests can point a temporary store at a database.
var storeDatabases = map[string]string{
	"/nix/store": "/nix/var/nix/db/db.sqlite",
	"/gnu/store": "/var/guix/db/db.sqlite",
}

// nixCommand is the program --from nix runs.
var nixCommand = "nix"

// maxSymlinks bounds a chain of symlinks from a ROOT argument to the store,
// as the kernel does (ELOOP).
const maxSymlinks = 40

// closureOptions are the flags that say where the graph of ROOTs comes from.
type closureOptions struct {
	from     string
	storeDir string
}

func (o *closureOptions) addFlags(flags *pflag.FlagSet) {
	flags.StringVar(&o.from, "from", fromAuto, `Where the reference graph comes from: "auto", "nix", "db", "scan", or a graph file`)
	flags.StringVar(&o.storeDir, "store-dir", "", "Store directory of the roots (default: inferred from the roots)")
}

// fromHelp explains --from in the long help of the commands that take it.
const fromHelp = `ROOT is a store path, a path inside one (which means that store path), or a
symlink into the store such as nix-build's ./result (chains of symlinks are
followed). The store directory is --store-dir, else the one the roots are in.

--from says where the reference graph comes from:
  auto   the store's database (/nix/var/nix/db/db.sqlite for /nix/store,
         /var/guix/db/db.sqlite for /gnu/store) if it exists and holds every
         root, else a scan (the default)
  nix    the output of "nix path-info --json --recursive ROOT..."
  db     the store's database; an error if there is none
  scan   a scan of the store directory for the hashes of store paths, as Nix
         scans a build's outputs (sizes are measured)
  FILE   a graph file: nix path-info --json output (any form), registration
         records (closureInfo, exportReferencesGraph, nix-store --dump-db),
         nix-store --query --graph output or a store database; write ./scan
         for a file named like one of the words above
Only the closure of the roots is taken from the graph.`

// root is a ROOT argument and the store path it names.
type root struct {
	arg  string
	path store.Path
}

// String names the root in errors: the argument, and the store path when
// the argument is something else.
func (r root) String() string {
	if r.arg == r.path.String() {
		return r.arg
	}
	return fmt.Sprintf("%s (%s)", r.arg, r.path)
}

func rootPaths(roots []root) []store.Path {
	paths := make([]store.Path, len(roots))
	for i, r := range roots {
		paths[i] = r.path
	}
	return paths
}

// resolveRoots finds the store paths of args, in storeDir if it is not
// empty, and returns them with the store directory: storeDir, or the one
// every root is in.
func resolveRoots(args []string, storeDir string) ([]root, string, error) {
	if storeDir != "" {
		abs, err := filepath.Abs(storeDir)
		if err != nil {
			return nil, "", fmt.Errorf("--store-dir=%s: %w", storeDir, err)
		}
		if err := store.CheckStoreDir(abs); err != nil {
			return nil, "", fmt.Errorf("--store-dir=%s: %w", storeDir, err)
		}
		storeDir = abs
	}
	roots := make([]root, 0, len(args))
	for _, arg := range args {
		p, err := resolveRoot(arg, storeDir)
		if err != nil {
			return nil, "", err
		}
		roots = append(roots, root{arg: arg, path: p})
	}
	if storeDir == "" {
		storeDir = roots[0].path.Dir
		for _, r := range roots[1:] {
			if r.path.Dir != storeDir {
				return nil, "", fmt.Errorf("the roots are in different store directories: %s is in %s, %s in %s (choose one with --store-dir)",
					roots[0].arg, storeDir, r.arg, r.path.Dir)
			}
		}
	}
	return roots, storeDir, nil
}

// resolveRoot finds the store path that arg names: arg itself when it is a
// store path or a path inside one, else the target of the chain of
// symlinks that starts at arg, once it is inside the store. storeDir may
// be empty: any store directory then ends the chain.
func resolveRoot(arg, storeDir string) (store.Path, error) {
	if arg == "" {
		return store.Path{}, errors.New("root: empty argument")
	}
	cur, err := filepath.Abs(arg)
	if err != nil {
		return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
	}
	for hops := 0; ; hops++ {
		if p, ok, err := storePathOf(cur, storeDir); ok || err != nil {
			if err != nil {
				return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
			}
			return p, nil
		}
		// Read cur where it really is: a path below a symlink
		// (./result/bin/hello) is inside the symlink's target, and a
		// relative symlink target is relative to the real directory.
		if dir, err := filepath.EvalSymlinks(filepath.Dir(cur)); err == nil {
			cur = filepath.Join(dir, filepath.Base(cur))
			if p, ok, err := storePathOf(cur, storeDir); ok || err != nil {
				if err != nil {
					return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
				}
				return p, nil
			}
		}
		fi, err := os.Lstat(cur)
		if err != nil {
			return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			where := "the store"
			if storeDir != "" {
				where = storeDir
			}
			if hops > 0 {
				return store.Path{}, fmt.Errorf("root %s: it leads to %s, which is not in %s", arg, cur, where)
			}
			return store.Path{}, fmt.Errorf("root %s: not a store path, nor a symlink into %s (such as nix-build's ./result)", arg, where)
		}
		if hops == maxSymlinks {
			return store.Path{}, fmt.Errorf("root %s: more than %d symlinks before reaching the store", arg, maxSymlinks)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(cur), target)
		}
		cur = filepath.Clean(target)
	}
}

// storePathOf returns the store path that the absolute, clean path s is in,
// if it is in storeDir (or, with storeDir empty, in any store directory).
func storePathOf(s, storeDir string) (store.Path, bool, error) {
	if storeDir != "" {
		if !strings.HasPrefix(s, storeDir+"/") {
			return store.Path{}, false, nil
		}
	} else if !store.LooksInStore(s) {
		return store.Path{}, false, nil
	}
	p, _, err := store.SplitSubPath(s)
	if err != nil {
		if storeDir != "" {
			return store.Path{}, false, fmt.Errorf("%s is in the store directory %s, but not in a store path: %w", s, storeDir, err)
		}
		return store.Path{}, false, err
	}
	if storeDir != "" && p.Dir != storeDir {
		return store.Path{}, false, fmt.Errorf("%s is not a store path in %s", s, storeDir)
	}
	return p, true, nil
}

// loadClosure loads the graph that from names and returns the closure of
// roots, which are in storeDir. Warnings (a database that cannot be read
// and is replaced by a scan) go to warn.
func loadClosure(ctx context.Context, roots []root, storeDir, from string, warn io.Writer) (*store.Graph, error) {
	paths := rootPaths(roots)
	var (
		g      *store.Graph
		source string // names the graph in errors
		err    error
	)
	switch from {
	case fromAuto:
		if db := storeDatabases[storeDir]; db != "" && exists(db) {
			g, err = store.LoadDB(db)
			switch {
			case err != nil:
				fmt.Fprintf(warn, "WARNING: cannot read the store database, scanning %s instead: %v\n", storeDir, err)
				g = nil
			case !holdsAll(g, paths):
				g = nil // not registered (yet): the files are what there is
			default:
				source = db
			}
		}
		if g == nil {
			g, source, err = scan(ctx, roots, storeDir)
		}
	case fromScan:
		g, source, err = scan(ctx, roots, storeDir)
	case fromDB:
		db := storeDatabases[storeDir]
		if db == "" {
			return nil, fmt.Errorf("--from db: no database is known for store directory %s (/nix/store has %s, /gnu/store %s); use --from scan, or --from FILE with the database file",
				storeDir, storeDatabases["/nix/store"], storeDatabases["/gnu/store"])
		}
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("--from db: store database of %s: %w", storeDir, err)
		}
		source = db
		g, err = store.LoadDB(db)
	case fromNix:
		g, err = nixPathInfo(ctx, paths)
		source = "the output of nix path-info"
	default:
		g, err = loadGraphFile(from)
		source = from
	}
	if err != nil {
		return nil, err
	}
	if dir := g.StoreDir(); dir != storeDir {
		return nil, fmt.Errorf("%s: its paths are in %s, but the roots are in %s", source, dir, storeDir)
	}
	for _, r := range roots {
		if _, ok := g.Info(r.path); !ok {
			if from == fromNix && strings.HasSuffix(r.path.Name, ".drv") {
				// nix path-info takes a derivation for its outputs.
				return nil, fmt.Errorf("root %s is not in %s, which lists a derivation's outputs: use --from db or --from scan for the derivation itself", r, source)
			}
			return nil, fmt.Errorf("root %s is not in %s", r, source)
		}
	}
	return g.Closure(paths...)
}

func exists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}

func holdsAll(g *store.Graph, paths []store.Path) bool {
	for _, p := range paths {
		if _, ok := g.Info(p); !ok {
			return false
		}
	}
	return true
}

// scan discovers the closure of roots in the store directory on disk.
func scan(ctx context.Context, roots []root, storeDir string) (*store.Graph, string, error) {
	for _, r := range roots {
		if _, err := os.Lstat(filepath.Join(storeDir, r.path.Base())); err != nil {
			if os.IsNotExist(err) {
				return nil, "", fmt.Errorf("root %s is not in %s", r, storeDir)
			}
			return nil, "", fmt.Errorf("root %s: %w", r, err)
		}
	}
	g, err := store.Discover(ctx, storeDir, rootPaths(roots))
	return g, storeDir, err
}

// nixPathInfo runs `nix path-info --json --recursive` on paths and loads
// its output, in whichever form this version of Nix writes.
func nixPathInfo(ctx context.Context, paths []store.Path) (*store.Graph, error) {
	args := []string{"--extra-experimental-features", "nix-command", "path-info", "--json", "--recursive"}
	seen := map[store.Path]bool{}
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			args = append(args, p.String())
		}
	}
	cmd := exec.CommandContext(ctx, nixCommand, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("--from nix: %w (install Nix, or use --from scan)", err)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("nix path-info: %w: %s", err, msg)
		}
		return nil, fmt.Errorf("nix path-info: %w", err)
	}
	return store.Load("nix path-info output", &stdout)
}

// loadGraphFile loads a graph file in any format store.Load reads; a store
// database is opened with store.LoadDB, which honours its write-ahead log.
func loadGraphFile(file string) (*store.Graph, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("--from %s: a directory, not a graph file", file)
	}
	br := bufio.NewReader(f)
	if head, _ := br.Peek(16); string(head) == "SQLite format 3\x00" {
		return store.LoadDB(file)
	}
	return store.Load(file, br)
}
