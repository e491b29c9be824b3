package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storepack/storepack/store"
)

// The store directory of every path of the closure, as Nix sees it.
const storeDir = "/nix/store"

// closureOptions say how large a closure to lay out.
type closureOptions struct {
	seed        uint64
	targetBytes int64  // at least this many bytes of package content
	targetPaths int    // at least this many package store paths (the app comes on top)
	maxPackage  int64  // larger Debian packages are left out, so that no one path dominates
	appBytes    int64  // content of the application path
	appDir      string // where the application's files come from; "": /usr/bin (programs)
}

// closure is a Nix store laid out under root (root/nix/store/<hash>-<name>),
// with two releases of an application that references the rest.
type closure struct {
	root        string // the store root: root/nix/store holds the paths
	storeOnDisk string
	source      string // where the content came from, for the report
	apps        [2]store.Path
	graphs      [2]*store.Graph // the closure of each release
	narBytes    [2]uint64       // the NAR size of each release's closure
}

// pkg is a package-like group of files of /usr that becomes one store path.
type pkg struct {
	name    string   // store path name (<pkg>-<version>)
	files   []string // absolute paths under /usr: regular files and symlinks
	size    int64    // bytes of the regular files
	deps    []int    // indices of the packages it depends on
	path    store.Path
	refs    []int // the dependencies kept (an acyclic subset of deps)
	referee bool  // some selected package references it
	filler  []byte
}

// newClosure lays out a closure under root, deterministic from opt.seed on
// a given machine: the packages come from the Debian package database when
// there is one (real packages, real dependencies), else from /usr's
// directories with seeded dependencies.
func newClosure(ctx context.Context, root string, opt closureOptions, log io.Writer) (*closure, error) {
	pkgs, source, err := debianPackages()
	if err != nil {
		fmt.Fprintf(log, "benchbuild: no Debian package database (%v); grouping /usr by directory\n", err)
		if pkgs, err = directoryPackages(opt.seed); err != nil {
			return nil, err
		}
		source = "/usr grouped by directory, seeded dependencies"
	}
	selected, fillers := selectPackages(pkgs, opt)
	if fillers > 0 {
		source += fmt.Sprintf("; /usr lacked the bytes: %d paths repeat files with differing content", fillers)
		fmt.Fprintf(log, "benchbuild: /usr lacks %d MiB of packages under the size cap; %d store paths repeat its files with differing content\n", opt.targetBytes>>20, fillers)
	}
	c := &closure{root: root, storeOnDisk: filepath.Join(root, "nix", "store"), source: source}
	if err := os.MkdirAll(c.storeOnDisk, 0o755); err != nil {
		return nil, err
	}
	order := acyclic(selected)
	for _, p := range selected {
		p.path = storePath(opt.seed, p.name)
	}
	for _, p := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.writePackage(p, selected); err != nil {
			return nil, fmt.Errorf("lay out %s: %w", p.name, err)
		}
	}
	if err := c.writeApps(opt, selected); err != nil {
		return nil, err
	}
	if err := c.measure(ctx, selected); err != nil {
		return nil, err
	}
	return c, nil
}

// debianPackages reads the installed packages of dpkg's database: their
// files under /usr and their dependencies (Depends, Pre-Depends; the first
// installed alternative, virtual packages through Provides).
func debianPackages() ([]*pkg, string, error) {
	const status = "/var/lib/dpkg/status"
	data, err := os.ReadFile(status)
	if err != nil {
		return nil, "", err
	}
	type entry struct {
		name, version, arch string
		depends             []string // each a list of alternatives, "a | b"
	}
	var entries []entry
	provides := map[string]string{}
	for stanza := range strings.SplitSeq(string(data), "\n\n") {
		fields := map[string]string{}
		var last string
		for line := range strings.SplitSeq(stanza, "\n") {
			if strings.HasPrefix(line, " ") && last != "" {
				fields[last] += "\n" + line
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				last = k
				fields[k] = strings.TrimSpace(v)
			}
		}
		if !strings.HasSuffix(fields["Status"], " installed") || fields["Package"] == "" {
			continue
		}
		e := entry{name: fields["Package"], version: fields["Version"], arch: fields["Architecture"]}
		for _, f := range []string{"Pre-Depends", "Depends"} {
			for d := range strings.SplitSeq(fields[f], ",") {
				if d = strings.TrimSpace(d); d != "" {
					e.depends = append(e.depends, d)
				}
			}
		}
		for p := range strings.SplitSeq(fields["Provides"], ",") {
			if p = depName(p); p != "" {
				if _, ok := provides[p]; !ok {
					provides[p] = e.name
				}
			}
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	index := map[string]int{}
	var pkgs []*pkg
	owner := make([]int, len(entries)) // the package of each entry, or -1
	for k, e := range entries {
		owner[k] = -1
		if _, ok := index[e.name]; ok {
			continue // the same package for a second architecture: one name, one store path
		}
		files, size, err := dpkgFiles(e.name, e.arch)
		if err != nil {
			return nil, "", err
		}
		if size == 0 {
			continue
		}
		index[e.name], owner[k] = len(pkgs), len(pkgs)
		pkgs = append(pkgs, &pkg{name: e.name + "-" + upstreamVersion(e.version), files: files, size: size})
	}
	if len(pkgs) == 0 {
		return nil, "", errors.New("no installed package has files under /usr")
	}
	for k, e := range entries {
		i := owner[k]
		if i < 0 {
			continue
		}
		for _, d := range e.depends {
			for alt := range strings.SplitSeq(d, "|") {
				name := depName(alt)
				if j, ok := index[name]; ok {
					pkgs[i].deps = append(pkgs[i].deps, j)
					break
				}
				if j, ok := index[provides[name]]; ok {
					pkgs[i].deps = append(pkgs[i].deps, j)
					break
				}
			}
		}
	}
	return pkgs, "Debian packages installed on this machine (their files under /usr, their Depends)", nil
}

// depName is the package name of a dependency such as "libc6:any (>= 2.34)".
func depName(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " (["); i >= 0 {
		s = s[:i]
	}
	name, _, _ := strings.Cut(s, ":")
	return name
}

// upstreamVersion turns a Debian version into a store path name's version:
// no epoch, only the characters a store path name may hold.
func upstreamVersion(v string) string {
	if _, rest, ok := strings.Cut(v, ":"); ok {
		v = rest
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-._?=", r) {
			return r
		}
		return '_'
	}, v)
}

// dpkgFiles lists a package's regular files and symlinks under /usr, as
// its file list names them.
func dpkgFiles(name, arch string) ([]string, int64, error) {
	f, err := os.Open("/var/lib/dpkg/info/" + name + ".list")
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.Open("/var/lib/dpkg/info/" + name + ":" + arch + ".list")
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var files []string
	var size int64
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := sc.Text()
		if !strings.HasPrefix(p, "/usr/") || seen[p] {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue // diverted or removed by hand: not there to copy
		}
		// Reached through a symlinked directory: the file is listed under
		// its real directory too, and the copy must not follow a link.
		if !realDir(filepath.Dir(p)) {
			continue
		}
		switch {
		case fi.Mode().IsRegular():
			size += fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
		default:
			continue
		}
		seen[p] = true
		files = append(files, p)
	}
	slices.Sort(files)
	return files, size, sc.Err()
}

// realDirs caches realDir's answers: packages share directories.
var realDirs = map[string]bool{}

// realDir tells whether dir is reached without following a symlink.
func realDir(dir string) bool {
	ok, seen := realDirs[dir]
	if !seen {
		real, err := filepath.EvalSymlinks(dir)
		ok = err == nil && real == dir
		realDirs[dir] = ok
	}
	return ok
}

// directoryPackages groups /usr's files by their first two directories
// (usr/lib/x86_64-linux-gnu/perl, usr/share/doc, ...), for machines without
// dpkg, with seeded dependencies on earlier groups.
func directoryPackages(seed uint64) ([]*pkg, error) {
	groups := map[string]*pkg{}
	err := filepath.WalkDir("/usr", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: left out
		}
		if d.IsDir() || d.Type()&^fs.ModeSymlink != 0 {
			return nil
		}
		parts := strings.SplitN(strings.TrimPrefix(p, "/usr/"), "/", 4)
		key := strings.Join(parts[:min(len(parts)-1, 3)], "-")
		if key == "" {
			key = "usr"
		}
		g := groups[key]
		if g == nil {
			g = &pkg{name: upstreamVersion(key) + "-1.0"}
			groups[key] = g
		}
		g.files = append(g.files, p)
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				g.size += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var pkgs []*pkg
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		if groups[k].size > 0 {
			pkgs = append(pkgs, groups[k])
		}
	}
	if len(pkgs) == 0 {
		return nil, errors.New("/usr holds no files to copy")
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for i, p := range pkgs {
		for range rng.IntN(4) {
			if i > 0 {
				p.deps = append(p.deps, rng.IntN(i))
			}
		}
	}
	return pkgs, nil
}

// selectPackages picks packages in a seeded order, each with the packages
// it depends on, until both targets are met, keeping the total near the
// byte target so that the closure has the many small paths of a real one
// beside a few large ones. When /usr has too few bytes it adds fillers:
// copies of selected packages' files with differing content.
func selectPackages(pkgs []*pkg, opt closureOptions) ([]*pkg, int) {
	rng := rand.New(rand.NewPCG(opt.seed, 1))
	order := rng.Perm(len(pkgs))
	limit := opt.targetBytes + opt.targetBytes/8
	chosen := make([]bool, len(pkgs))
	var total int64
	count := 0
	done := func() bool { return count >= opt.targetPaths && total >= opt.targetBytes }
	for _, i := range order {
		if done() {
			break
		}
		if chosen[i] || pkgs[i].size > opt.maxPackage {
			continue
		}
		// The package and its dependencies not chosen yet.
		group, seen := []int{}, map[int]bool{i: true}
		var cost int64
		for queue := []int{i}; len(queue) > 0; queue = queue[1:] {
			j := queue[0]
			group = append(group, j)
			cost += pkgs[j].size
			for _, d := range pkgs[j].deps {
				if !chosen[d] && !seen[d] && pkgs[d].size <= opt.maxPackage {
					seen[d] = true
					queue = append(queue, d)
				}
			}
		}
		// Large groups would crowd out the many small paths.
		if total+cost > limit || cost > limit/6 {
			continue
		}
		for _, j := range group {
			chosen[j] = true
		}
		total += cost
		count += len(group)
	}
	// Too few paths within the byte budget: the smallest packages left.
	if count < opt.targetPaths {
		rest := slices.Clone(order)
		slices.SortStableFunc(rest, func(a, b int) int { return int(pkgs[a].size - pkgs[b].size) })
		for _, i := range rest {
			if count >= opt.targetPaths {
				break
			}
			if !chosen[i] {
				chosen[i] = true
				total += pkgs[i].size
				count++
			}
		}
	}
	var selected []*pkg
	remap := make([]int, len(pkgs))
	for i, p := range pkgs {
		remap[i] = -1
		if chosen[i] {
			remap[i] = len(selected)
			selected = append(selected, p)
		}
	}
	for _, p := range selected {
		var deps []int
		for _, d := range p.deps {
			if remap[d] >= 0 {
				deps = append(deps, remap[d])
			}
		}
		p.deps = deps
	}
	// Not enough bytes in /usr: repeat the selected packages' files, each
	// filler with its own header so that no two copies are alike.
	fillers, n := 0, len(selected)
	for k := 0; total < opt.targetBytes && n > 0; k++ {
		src := selected[k%n]
		filler := &pkg{name: fmt.Sprintf("filler%d-%s", k, src.name), files: src.files, size: src.size, deps: []int{k % n}}
		filler.filler = fmt.Appendf(nil, "storepack benchmark filler %d of seed %d\n", k, opt.seed)
		selected = append(selected, filler)
		total += src.size
		fillers++
	}
	return selected, fillers
}

// acyclic keeps the dependencies of a depth-first walk in name order that
// do not close a cycle (Debian has some, a Nix store none), and returns the
// packages dependencies first.
func acyclic(pkgs []*pkg) []*pkg {
	const (
		unvisited = iota
		onStack
		finished
	)
	state := make([]int, len(pkgs))
	var order []*pkg
	var visit func(i int)
	visit = func(i int) {
		state[i] = onStack
		deps := slices.Clone(pkgs[i].deps)
		slices.SortFunc(deps, func(a, b int) int { return strings.Compare(pkgs[a].name, pkgs[b].name) })
		for _, d := range slices.Compact(deps) {
			if d == i || state[d] == onStack {
				continue
			}
			if state[d] == unvisited {
				visit(d)
			}
			pkgs[i].refs = append(pkgs[i].refs, d)
			pkgs[d].referee = true
		}
		state[i] = finished
		order = append(order, pkgs[i])
	}
	byName := make([]int, len(pkgs))
	for i := range byName {
		byName[i] = i
	}
	slices.SortFunc(byName, func(a, b int) int { return strings.Compare(pkgs[a].name, pkgs[b].name) })
	for _, i := range byName {
		if state[i] == unvisited {
			visit(i)
		}
	}
	return order
}

// storePath makes a store path whose hash is derived from the seed and the
// name, in Nix's base-32 alphabet.
func storePath(seed uint64, name string) store.Path {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	sum := sha256.Sum256(fmt.Appendf(nil, "storepack-bench\x00%d\x00%s", seed, name))
	hash := make([]byte, 32)
	for i := range hash {
		bit := i * 5
		v := (uint(sum[bit/8])<<8 | uint(sum[bit/8+1])) >> (11 - bit%8) & 31
		hash[i] = alphabet[v]
	}
	return store.Path{Dir: storeDir, Hash: string(hash), Name: name}
}

// writePackage copies a package's files into its store path and writes its
// references the way Nix finds them: store path strings in a file of the
// referrer (nix-support/propagated-build-inputs, as stdenv writes it).
func (c *closure) writePackage(p *pkg, all []*pkg) error {
	dir := filepath.Join(c.storeOnDisk, p.path.Base())
	for _, src := range p.files {
		dst := filepath.Join(dir, strings.TrimPrefix(src, "/usr/"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := copyEntry(src, dst, p.filler); err != nil {
			return err
		}
	}
	if len(p.refs) > 0 {
		var refs []string
		for _, r := range p.refs {
			refs = append(refs, all[r].path.String())
		}
		slices.Sort(refs)
		if err := writeStoreFile(filepath.Join(dir, "nix-support", "propagated-build-inputs"), strings.Join(refs, " ")+"\n", 0o444); err != nil {
			return err
		}
	}
	return fixModes(dir)
}

// copyEntry copies a regular file (0555 when executable, else 0444, as in
// a store) or a symlink; prefix, if any, goes before a file's content.
func copyEntry(src, dst string, prefix []byte) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		err = os.Symlink(target, dst)
		if errors.Is(err, fs.ErrExist) { // two spellings of one file in a package list
			return nil
		}
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	mode := os.FileMode(0o444)
	if fi.Mode()&0o111 != 0 {
		mode = 0o555
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := out.Write(prefix); err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

func writeStoreFile(name, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Chmod(name, mode)
}

// epoch is the mtime Nix gives every file of the store.
var epoch = time.Unix(1, 0)

// fixModes gives a store path Nix's metadata: directories 0555, every
// entry mtime 1, set children first so that a directory keeps its time.
func fixModes(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type()&fs.ModeSymlink != 0:
			ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &fs.PathError{Op: "lutimes", Path: p, Err: err}
			}
		default:
			return os.Chtimes(p, epoch, epoch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := os.Chmod(d, 0o555); err != nil {
			return err
		}
		if err := os.Chtimes(d, epoch, epoch); err != nil {
			return err
		}
	}
	return nil
}

// writeApps writes the two releases of the application: programs copied
// from /usr/bin, a wrapper script and nix-support/propagated-build-inputs
// naming its references (every package nothing else references, so that
// its closure holds them all, and a few more). Release 2 differs by a
// version string and a few appended bytes, as after `nix build` of a new
// version, so it has a new hash and the same references.
func (c *closure) writeApps(opt closureOptions, pkgs []*pkg) error {
	rng := rand.New(rand.NewPCG(opt.seed, 3))
	var refs []store.Path
	for _, p := range pkgs {
		if !p.referee {
			refs = append(refs, p.path)
		}
	}
	for _, i := range rng.Perm(len(pkgs))[:min(16, len(pkgs))] {
		if pkgs[i].referee {
			refs = append(refs, pkgs[i].path)
		}
	}
	slices.SortFunc(refs, store.Path.Compare)
	payload, err := appPayload(cmp.Or(opt.appDir, "/usr/bin"), opt.appBytes)
	if err != nil {
		return err
	}
	for release := range 2 {
		version := fmt.Sprintf("%d.0", release+1)
		app := storePath(opt.seed, "bench-app-"+version)
		c.apps[release] = app
		dir := filepath.Join(c.storeOnDisk, app.Base())
		for k, src := range payload {
			dst := filepath.Join(dir, "libexec", "bench-app", filepath.Base(src))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := copyEntry(src, dst, nil); err != nil {
				return err
			}
			if k == 0 { // the small change of a new version
				if err := appendFile(dst, "\nbench-app "+version+"\n"); err != nil {
					return err
				}
			}
		}
		var path []string
		for _, r := range refs[:min(8, len(refs))] {
			path = append(path, r.String()+"/bin")
		}
		script := fmt.Sprintf("#!/bin/sh\n# bench-app %s\nexport PATH=%s:$PATH\nexec %s/libexec/bench-app/%s \"$@\"\n",
			version, strings.Join(path, ":"), app, filepath.Base(payload[0]))
		if err := writeStoreFile(filepath.Join(dir, "bin", "bench-app"), script, 0o555); err != nil {
			return err
		}
		if err := writeStoreFile(filepath.Join(dir, "share", "bench-app", "version"), version+"\n", 0o444); err != nil {
			return err
		}
		var names []string
		for _, r := range refs {
			names = append(names, r.String())
		}
		if err := writeStoreFile(filepath.Join(dir, "nix-support", "propagated-build-inputs"), strings.Join(names, " ")+"\n", 0o444); err != nil {
			return err
		}
		if err := fixModes(dir); err != nil {
			return err
		}
	}
	return nil
}

// appPayload picks the application's files: dir's regular files in name
// order until they reach size.
func appPayload(dir string, size int64) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	var total int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() == 0 {
			continue
		}
		files = append(files, filepath.Join(dir, e.Name()))
		if total += fi.Size(); total >= size {
			return files, nil
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s has no regular file for the application", dir)
	}
	return files, nil
}

func appendFile(name, text string) error {
	if err := os.Chmod(name, 0o644); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// measure makes both releases' graphs with exact NAR hashes and sizes
// (store.NarHash) and the references written above, and checks them
// against what the project's scanner discovers in the store on disk, which
// is how Nix finds references: the graph given to every build is the
// store's truth. The hashes, which nix path-info gives too, are the
// layers' content keys: without them the plugin's cache of layer digests
// and its reuse of a previous image's layers do nothing.
func (c *closure) measure(ctx context.Context, pkgs []*pkg) error {
	fsys := os.DirFS(c.storeOnDisk)
	var infos []store.Info
	for _, p := range pkgs {
		info := store.Info{Path: p.path}
		for _, r := range p.refs {
			info.References = append(info.References, pkgs[r].path)
		}
		infos = append(infos, info)
	}
	for _, app := range c.apps {
		refs, err := os.ReadFile(filepath.Join(c.storeOnDisk, app.Base(), "nix-support", "propagated-build-inputs"))
		if err != nil {
			return err
		}
		info := store.Info{Path: app}
		for s := range strings.FieldsSeq(string(refs)) {
			p, err := store.ParsePath(s)
			if err != nil {
				return err
			}
			info.References = append(info.References, p)
		}
		// The wrapper names the app's own path: a self-reference, as Nix records it.
		info.References = append(info.References, app)
		infos = append(infos, info)
	}
	for i := range infos {
		var err error
		if infos[i].NarHash, infos[i].NarSize, err = store.NarHash(ctx, fsys, infos[i].Path); err != nil {
			return err
		}
	}
	all, err := store.NewGraph(infos)
	if err != nil {
		return fmt.Errorf("the closure's graph: %w", err)
	}
	for release, app := range c.apps {
		g, err := all.Closure(app)
		if err != nil {
			return err
		}
		c.graphs[release] = g
		for _, p := range g.Paths() {
			info, _ := g.Info(p)
			c.narBytes[release] += info.NarSize
		}
		found, err := store.Discover(ctx, c.storeOnDisk, []store.Path{app})
		if err != nil {
			return fmt.Errorf("scan the closure of %s: %w", app, err)
		}
		// The scanner learns no hashes: compare without them.
		unhashed := make([]store.Info, 0, g.Len())
		for _, p := range g.Paths() {
			info, _ := g.Info(p)
			info.NarHash = ""
			unhashed = append(unhashed, info)
		}
		refs, err := store.NewGraph(unhashed)
		if err != nil {
			return err
		}
		var want, got bytes.Buffer
		if err := store.WritePathInfoJSON(&want, refs); err != nil {
			return err
		}
		if err := store.WritePathInfoJSON(&got, found); err != nil {
			return err
		}
		if !bytes.Equal(want.Bytes(), got.Bytes()) {
			return fmt.Errorf("the graph written for %s differs from the references the scanner finds in the store (%d paths against %d): a bug of this benchmark", app, g.Len(), found.Len())
		}
	}
	return nil
}

// setRelease points root/result at release r's application and writes its
// GRAPH, as `nix build` and `nix path-info --json -r` would.
func (c *closure) setRelease(r int) error {
	var buf bytes.Buffer
	if err := store.WritePathInfoJSON(&buf, c.graphs[r]); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.root, "graph.json.tmp"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(c.root, "graph.json.tmp"), filepath.Join(c.root, "graph.json")); err != nil {
		return err
	}
	tmp := filepath.Join(c.root, "result.tmp")
	os.Remove(tmp)
	if err := os.Symlink(c.apps[r].String(), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.root, "result"))
}

// paths lists the store paths of release r's closure.
func (c *closure) paths(r int) []store.Path { return c.graphs[r].Paths() }
