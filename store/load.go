package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxLineLen bounds a line of a record file and the whitespace Load skips
// before deciding a file's format, so that garbage input cannot make Load
// buffer an unbounded amount of data. A store path is at most a few hundred
// bytes long.
const maxLineLen = 64 << 10

// Load reads a graph file whose format is detected from its content (never
// from its name):
//
//   - nix path-info --json [--recursive] output: the array form of Nix ≤ 2.18,
//     the object form of Nix 2.19+ and the versioned form of
//     --json-format 2 and 3 (first non-blank byte '[' or '{');
//   - validity registration records, as written by exportReferencesGraph
//     (Nix and Guix), closureInfo's registration file and
//     nix-store --dump-db (first byte '/');
//   - nix-store --query --graph output (DOT, starting with digraph), whose
//     nodes are taken to be in /nix/store;
//   - a Nix or Guix SQLite database (the SQLite header), read as a snapshot
//     without its write-ahead log: use LoadDB for a database in use. SQLite
//     reads at random: a reader that allows it (a bytes.Reader, an os.File)
//     is read in place, others are copied to a temporary file first.
//
// A plain list of store paths is refused: it has no references (see
// ReadPathList).
//
// name is used in error messages, which also give the line (records, DOT),
// the entry (JSON) or the row (SQLite) at fault. A file without any store
// path is an error: it is never a useful closure. So is a reference cycle
// between distinct paths, which Nix and Guix cannot build.
func Load(name string, r io.Reader) (*Graph, error) {
	paths, nodes, err := readGraph(name, r)
	if err != nil {
		return nil, err
	}
	return graphFrom(name, paths, nodes)
}

// readGraph detects the format of r and reads it, returning the paths by id
// and the nodes.
func readGraph(name string, r io.Reader) ([]Path, []idNode, error) {
	// SQLite reads a database at random: where r allows that (a
	// bytes.Reader, a file), it reads r itself, else a copy.
	if section, ok := sectionOf(r); ok && isDatabase(section) {
		return readDBSection(name, section)
	}
	br := bufio.NewReaderSize(r, maxLineLen)
	if head, _ := br.Peek(len(sqliteHeader)); string(head) == sqliteHeader {
		return readDBCopy(name, br)
	}
	first, skipped, err := firstByte(br)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case first == '/' && skipped == 0:
		return readRecords(name, br)
	case first == '/':
		return nil, nil, fmt.Errorf("%s: registration records must start with a store path on the first line, not with white space", name)
	case first == '[' || first == '{':
		return readPathInfoJSON(name, br)
	case first == 'd' || first == 's': // digraph, strict digraph
		return readDot(name, br)
	}
	peek, _ := br.Peek(40)
	return nil, nil, fmt.Errorf("%s: unknown graph format: expected nix path-info JSON, registration records starting with a store path, nix-store --query --graph output or a store database, found %s", name, quote(string(peek)))
}

// graphFrom makes the graph that a file describes, with the checks that
// need all of it.
func graphFrom(name string, paths []Path, nodes []idNode) (*Graph, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%s: no store paths", name)
	}
	g, err := graphOfIDs(paths, nodes)
	if err == nil {
		err = checkAcyclic(g)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return g, nil
}

// firstByte skips leading white space (JSON allows it) and returns the first
// other byte, left unread, and how many bytes were skipped.
func firstByte(br *bufio.Reader) (first byte, skipped int, err error) {
	for ; skipped <= maxLineLen; skipped++ {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return 0, skipped, errors.New("empty graph file")
		}
		if err != nil {
			return 0, skipped, err
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c, skipped, br.UnreadByte()
	}
	return 0, skipped, fmt.Errorf("unknown graph format: more than %d bytes of white space", maxLineLen)
}
