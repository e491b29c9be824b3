package manifest

import (
	"errors"
	"fmt"
	"path"
	"strconv"
)

// The store instructions: which store, which closure of it the image
// holds and how its paths are layered.
type (
	// storeCommand is STORE [--with-db[=BOOL]] DIR.
	storeCommand struct{ words }
	// closureCommand is CLOSURE [--platform=P] [--name=VAR] ROOT...
	closureCommand struct{ words }
	// graphCommand is GRAPH [--platform=P] FILE.
	graphCommand struct{ words }
	// layersCommand is LAYERS [--max=N] [--strategy=NAME] [--previous=IMAGE].
	layersCommand struct{ words }
)

func (storeCommand) apply(e *expansion, flags map[string]string, args []string) error {
	if len(args) != 1 {
		return errors.New("STORE takes exactly one argument: the store directory, such as /nix/store")
	}
	if v, ok := flags["with-db"]; ok {
		db, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("STORE --with-db=%s: want true or false", v)
		}
		e.spec.StoreDB = db
	}
	dir := args[0]
	if !path.IsAbs(dir) || path.Clean(dir) != dir || dir == "/" {
		return fmt.Errorf("STORE %q: the store directory must be an absolute, clean path below /", dir)
	}
	e.spec.StoreDir = dir
	return nil
}

func (c closureCommand) apply(e *expansion, flags map[string]string, roots []string) error {
	if len(roots) == 0 {
		return errors.New("CLOSURE needs at least one root: a store path or a symlink into the store such as ./result")
	}
	set := RootSet{Platform: flags["platform"], Name: flags["name"], Roots: roots, Location: c.loc}
	if set.Name != "" {
		if !isVariableName(set.Name) || set.Name == RootVariable {
			return fmt.Errorf("CLOSURE --name=%s: want a variable name other than %s (letters, digits, _)", set.Name, RootVariable)
		}
		e.defineRoot(set.Name)
	}
	e.spec.Closures = append(e.spec.Closures, set)
	return nil
}

func isVariableName(s string) bool {
	for i, c := range s {
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

func (c graphCommand) apply(e *expansion, flags map[string]string, args []string) error {
	if len(args) != 1 {
		return errors.New("GRAPH takes exactly one argument: a reference graph file in the build context")
	}
	e.spec.Graphs = append(e.spec.Graphs, Graph{Platform: flags["platform"], File: args[0], Location: c.loc})
	return nil
}

func (c layersCommand) apply(e *expansion, flags map[string]string, args []string) error {
	if len(args) != 0 {
		return errors.New("LAYERS takes only flags: LAYERS [--max=N] [--strategy=NAME] [--previous=IMAGE]")
	}
	l := Layers{Max: DefaultMaxLayers, Strategy: flags["strategy"], Previous: flags["previous"], Location: c.loc}
	if v, ok := flags["max"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("LAYERS --max=%s: want a whole number of at least 1", v)
		}
		l.Max = n
	}
	e.spec.Layers = l
	return nil
}
