// Command mkfixture derives the reuse benchmark's package universe from a
// Debian Packages index: the closures of the given root packages, with each
// package's version, Installed-Size and resolved run-time dependencies.
//
//	/usr/lib/apt/apt-helper cat-file /var/lib/apt/lists/*_debian_dists_bookworm_main_binary-amd64_Packages.lz4 |
//	  go run ./layering/internal/corpus/mkfixture ROOT... > layering/internal/corpus/debian-bookworm.txt
//
// The benchmark reads only the committed output, so it is reproducible on a
// machine without apt; this command documents (and repeats) how that file
// was made.
//
// Dependencies are Pre-Depends and Depends. Of alternatives ("a | b") the
// first that exists wins; a virtual package resolves to the provider whose
// name sorts first; version constraints and architecture qualifiers are
// ignored. Debian allows dependency cycles (libc6 and libgcc-s1 depend on
// each other) but a Nix closure is acyclic, so a depth-first walk from the
// roots, in the order given, drops every edge that closes a cycle.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

type debPackage struct {
	name, version string
	sizeKiB       uint64
	deps          []string // raw alternative groups, before resolution
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mkfixture ROOT... < Packages > fixture")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkfixture:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, roots []string) error {
	packages, providers, err := parseIndex(in)
	if err != nil {
		return err
	}
	resolve := func(group string) (string, bool) {
		for _, alt := range strings.Split(group, "|") {
			name := strings.TrimSpace(alt)
			name, _, _ = strings.Cut(name, " ")
			name, _, _ = strings.Cut(name, "(")
			name, _, _ = strings.Cut(name, ":")
			if _, ok := packages[name]; ok {
				return name, true
			}
			if provs := providers[name]; len(provs) > 0 {
				return slices.Min(provs), true
			}
		}
		return "", false
	}

	// Depth-first walk from the roots: edges to a package still on the
	// stack would close a cycle and are dropped.
	const (
		unvisited = iota
		onStack
		done
	)
	state := make(map[string]int)
	deps := make(map[string][]string)
	var order []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = onStack
		for _, group := range packages[name].deps {
			dep, ok := resolve(group)
			if !ok || dep == name || state[dep] == onStack || slices.Contains(deps[name], dep) {
				continue
			}
			deps[name] = append(deps[name], dep)
			if state[dep] == unvisited {
				visit(dep)
			}
		}
		state[name] = done
		order = append(order, name)
	}
	for _, root := range roots {
		if _, ok := packages[root]; !ok {
			return fmt.Errorf("root %s is not in the index", root)
		}
		if state[root] == unvisited {
			visit(root)
		}
	}

	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "# Package universe for the layering reuse benchmark, derived from Debian\n")
	fmt.Fprintf(w, "# bookworm main amd64 Packages by layering/internal/corpus/mkfixture.\n")
	fmt.Fprintf(w, "# roots: %s\n", strings.Join(roots, " "))
	fmt.Fprintf(w, "# package version installed-size-KiB dependency...  (dependencies before dependents)\n")
	for _, name := range order {
		p := packages[name]
		fmt.Fprintf(w, "%s %s %d", p.name, p.version, p.sizeKiB)
		for _, dep := range deps[name] {
			fmt.Fprintf(w, " %s", dep)
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

// parseIndex reads the stanzas of a Packages file. The first stanza of a
// package name wins; providers maps a virtual package to the real ones.
func parseIndex(in io.Reader) (map[string]*debPackage, map[string][]string, error) {
	packages := make(map[string]*debPackage)
	providers := make(map[string][]string)
	var fields map[string]string
	flush := func() error {
		defer func() { fields = nil }()
		name := fields["Package"]
		if name == "" || packages[name] != nil {
			return nil
		}
		var size uint64
		if field := fields["Installed-Size"]; field != "" { // a few cross-compilation packages have none
			var err error
			if size, err = strconv.ParseUint(field, 10, 64); err != nil {
				return fmt.Errorf("package %s: Installed-Size: %w", name, err)
			}
		}
		p := &debPackage{name: name, version: fields["Version"], sizeKiB: size}
		for _, field := range []string{"Pre-Depends", "Depends"} {
			for _, group := range strings.Split(fields[field], ",") {
				if group = strings.TrimSpace(group); group != "" {
					p.deps = append(p.deps, group)
				}
			}
		}
		packages[name] = p
		for _, provided := range strings.Split(fields["Provides"], ",") {
			virtual, _, _ := strings.Cut(strings.TrimSpace(provided), " ")
			if virtual != "" {
				providers[virtual] = append(providers[virtual], name)
			}
		}
		return nil
	}
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case line == "":
			if err := flush(); err != nil {
				return nil, nil, err
			}
		case line[0] == ' ' || line[0] == '\t':
			// A continuation line: only Description uses them.
		default:
			key, value, _ := strings.Cut(line, ":")
			if fields == nil {
				fields = make(map[string]string)
			}
			fields[key] = strings.TrimSpace(value)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, nil, err
	}
	return packages, providers, flush()
}
