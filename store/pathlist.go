package store

import (
	"fmt"
	"io"
	"slices"
)

// ReadPathList reads a plain list of store paths, one per line, such as the
// output of `guix gc --requisites` or `nix-store --query --requisites`, or
// closureInfo's store-paths file. Blank lines at the end are allowed. The
// paths must share one store directory; the result is sorted and without
// duplicates.
//
// A list is not a graph: it says which paths a closure holds but not which
// references which, and nothing in it tells a complete closure from a few
// paths. Load refuses it for that reason. Give the paths to Discover as
// roots: it scans them for their references, and for a complete closure
// finds exactly the listed paths.
func ReadPathList(name string, r io.Reader) ([]Path, error) {
	s := newRecordScanner(name, r)
	var (
		paths  []Path
		parser pathParser
	)
	for {
		line, ok, err := s.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if len(line) == 0 && len(paths) > 0 {
			if err := s.expectBlankToEnd(); err != nil {
				return nil, err
			}
			break
		}
		id, err := parser.parseBytes(line)
		if err != nil {
			return nil, s.errorf("%v", err)
		}
		paths = append(paths, parser.path(id))
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no store paths", name)
	}
	slices.SortFunc(paths, Path.Compare)
	return slices.Compact(paths), nil
}
