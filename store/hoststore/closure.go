package hoststore

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

	"github.com/storepack/storepack/store"
)

// GraphSource says where LoadClosure takes the graph from: one of the
// constants, or else the name of a graph file.
type GraphSource string

const (
	FromAuto GraphSource = "auto" // the database if it holds every root, else a scan (see the package doc)
	FromNix  GraphSource = "nix"  // nix path-info --json --recursive ROOT...
	FromDB   GraphSource = "db"   // the store's database; an error if there is none
	FromScan GraphSource = "scan" // a scan of the store directory, as Nix scans a build's outputs
)

// defaultDatabases maps a store directory to its store's SQLite database
// where Nix and Guix install them.
var defaultDatabases = map[string]string{
	"/nix/store": "/nix/var/nix/db/db.sqlite",
	"/gnu/store": "/var/guix/db/db.sqlite",
}

// Options say where LoadClosure finds the store database and nix, and where
// it warns; the zero value is the host as Nix and Guix install them.
type Options struct {
	// Databases maps a store directory to its store's SQLite database;
	// nil means /nix/var/nix/db/db.sqlite for /nix/store and
	// /var/guix/db/db.sqlite for /gnu/store.
	Databases map[string]string
	// Nix is the program FromNix runs; "" means nix, found in PATH.
	Nix string
	// Warn receives warnings, such as a database that cannot be read
	// and is replaced by a scan; nil discards them.
	Warn io.Writer
	// Root holds the store and its database on the host (Root/nix/store,
	// Root/nix/var/nix/db), as a Nix store opened with --store
	// local?root=Root; "": the host's root.
	Root string
}

// LoadClosure loads the graph that from names and returns the closure of
// roots, which are in storeDir (as ResolveRoots returns them). It is an
// error for the graph to lack a root or to be of another store directory.
func LoadClosure(ctx context.Context, roots []Root, storeDir string, from GraphSource, opt Options) (*store.Graph, error) {
	databases := opt.Databases
	if databases == nil {
		databases = map[string]string{}
		for dir, db := range defaultDatabases {
			databases[dir] = filepath.Join(opt.Root, db)
		}
	}
	warn := opt.Warn
	if warn == nil {
		warn = io.Discard
	}
	paths := rootPaths(roots)
	var (
		g      *store.Graph
		source string // names the graph in errors
		err    error
	)
	switch from {
	case FromAuto:
		if db := databases[storeDir]; db != "" && exists(db) {
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
			g, source, err = scan(ctx, roots, storeDir, opt.Root)
		}
	case FromScan:
		g, source, err = scan(ctx, roots, storeDir, opt.Root)
	case FromDB:
		db := databases[storeDir]
		if db == "" {
			return nil, fmt.Errorf("--from db: no database is known for store directory %s (/nix/store has %s, /gnu/store %s); use --from scan, or --from FILE with the database file",
				storeDir, defaultDatabases["/nix/store"], defaultDatabases["/gnu/store"])
		}
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("--from db: store database of %s: %w", storeDir, err)
		}
		source = db
		g, err = store.LoadDB(db)
	case FromNix:
		nix := opt.Nix
		if nix == "" {
			nix = "nix"
		}
		g, err = nixPathInfo(ctx, nix, opt.Root, paths)
		source = "the output of nix path-info"
	default:
		g, err = loadGraphFile(string(from))
		source = string(from)
	}
	if err != nil {
		return nil, err
	}
	if dir := g.StoreDir(); dir != storeDir {
		return nil, fmt.Errorf("%s: its paths are in %s, but the roots are in %s", source, dir, storeDir)
	}
	for _, r := range roots {
		if _, ok := g.Info(r.Path); !ok {
			if from == FromNix && strings.HasSuffix(r.Path.Name, ".drv") {
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

// scan discovers the closure of roots in the store directory on disk,
// below root.
func scan(ctx context.Context, roots []Root, storeDir, root string) (*store.Graph, string, error) {
	dir := filepath.Join(root, storeDir)
	for _, r := range roots {
		if _, err := os.Lstat(filepath.Join(dir, r.Path.Base())); err != nil {
			if os.IsNotExist(err) {
				return nil, "", fmt.Errorf("root %s is not in %s", r, dir)
			}
			return nil, "", fmt.Errorf("root %s: %w", r, err)
		}
	}
	g, err := store.Discover(ctx, dir, rootPaths(roots))
	return g, dir, err
}

// nixPathInfo runs `nix path-info --json --recursive` on paths and loads
// its output, in whichever form this version of Nix writes.
func nixPathInfo(ctx context.Context, nix, root string, paths []store.Path) (*store.Graph, error) {
	args := []string{"--extra-experimental-features", "nix-command", "path-info", "--json", "--recursive"}
	if root != "" {
		args = append(args, "--store", "local?root="+root)
	}
	seen := map[store.Path]bool{}
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			args = append(args, p.String())
		}
	}
	cmd := exec.CommandContext(ctx, nix, args...)
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
