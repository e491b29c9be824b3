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
//   - nix path-info --json [--recursive] output: the array form of Nix ≤ 2.18
//     or the object form of Nix 2.19+ (first non-blank byte '[' or '{');
//   - validity registration records, as written by exportReferencesGraph
//     (Nix and Guix), closureInfo's registration file and
//     nix-store --dump-db (first byte '/').
//
// name is used in error messages, which also give the line (records) or the
// entry (JSON) at fault. A file without any store path is an error: it is
// never a useful closure.
func Load(name string, r io.Reader) (*Graph, error) {
	br := bufio.NewReaderSize(r, maxLineLen)
	first, skipped, err := firstByte(br)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var infos []Info
	switch {
	case first == '/' && skipped == 0:
		infos, err = readRecords(name, br)
	case first == '/':
		err = fmt.Errorf("%s: registration records must start with a store path on the first line, not with white space", name)
	case first == '[' || first == '{':
		infos, err = readPathInfoJSON(name, br)
	default:
		peek, _ := br.Peek(40)
		err = fmt.Errorf("%s: unknown graph format: expected nix path-info JSON or registration records starting with a store path, found %s", name, quote(string(peek)))
	}
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("%s: no store paths", name)
	}
	g, err := NewGraph(infos)
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
