package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Registration records are Nix's oldest graph format, read back by
// `nix-store --register-validity` and `--load-db`. Each record is a run of
// lines:
//
//	/nix/store/<hash>-<name>     the store path
//	<nar hash>                   long form only: sha256, base16 (dump-db) or sha256:<nix32> (closureInfo)
//	<nar size>                   long form only: decimal
//	<deriver>                    a .drv store path, or empty
//	<n>                          the number of references
//	<reference>                  n lines, one store path each
//
// The long form is printed by `nix-store --dump-db` and closureInfo's
// `registration`; the short form by exportReferencesGraph (Nix and Guix),
// where the deriver line is always empty. A file uses one form throughout;
// the line after the first path tells which: a store path or an empty line
// is a deriver (short form), a hash means the long form.

// pathListHint explains the likeliest cause of a record file with store
// paths where numbers or derivers belong.
const pathListHint = "is this a plain list of store paths (guix gc --requisites, nix-store --query --requisites, closureInfo's store-paths)? " +
	"A list has no references: leave the graph out so that the store is scanned for them, or export a graph (nix path-info --json --recursive, nix-store --dump-db, exportReferencesGraph)"

// recordForm is the shape of the records of one file.
type recordForm int

const (
	shortForm recordForm = iota // path, deriver, count, references
	longForm                    // path, nar hash, nar size, deriver, count, references
)

// recordScanner reads a record file line by line, counting lines for errors.
type recordScanner struct {
	name    string
	scanner *bufio.Scanner
	line    int // number of the line last returned
}

func newRecordScanner(name string, r io.Reader) *recordScanner {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 4096), maxLineLen)
	return &recordScanner{name: name, scanner: scanner}
}

// next returns the next line, valid until the following call; ok is false
// at the end of the input.
func (s *recordScanner) next() (line []byte, ok bool, err error) {
	if !s.scanner.Scan() {
		if err := s.scanner.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, false, fmt.Errorf("%s:%d: line longer than %d bytes", s.name, s.line+1, maxLineLen)
			}
			return nil, false, fmt.Errorf("%s: %w", s.name, err)
		}
		return nil, false, nil
	}
	s.line++
	return s.scanner.Bytes(), true, nil
}

// expect is next for a line that must exist; what names it in the error.
func (s *recordScanner) expect(what string) ([]byte, error) {
	line, ok, err := s.next()
	if err == nil && !ok {
		err = s.unexpectedEOF(what)
	}
	return line, err
}

func (s *recordScanner) unexpectedEOF(what string) error {
	return fmt.Errorf("%s:%d: unexpected end of file, expected %s", s.name, s.line+1, what)
}

// errorf returns an error located at the current line.
func (s *recordScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", s.name, s.line, fmt.Sprintf(format, args...))
}

// record is one parsed record, with the line numbers needed for later
// errors.
type record struct {
	idNode
	line     int // of the store path
	refLines int // of the first reference; reference i is on refLines+i
}

// readRecords reads registration records in either form, and checks that
// every reference names a path of the file. It returns the paths by id and
// the nodes.
func readRecords(name string, r io.Reader) ([]Path, []idNode, error) {
	s := newRecordScanner(name, r)
	var (
		records []record
		form    recordForm
		paths   pathParser
	)
	for {
		line, ok, err := s.next()
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			break
		}
		if len(line) == 0 && len(records) > 0 {
			// Tolerate blank lines at the end of the file (an extra
			// newline from an editor or `echo`), nothing else after them.
			if err := s.expectBlankToEnd(); err != nil {
				return nil, nil, err
			}
			break
		}
		rec, err := s.readRecord(line, &form, &paths, len(records) == 0)
		if err != nil {
			return nil, nil, err
		}
		records = append(records, rec)
	}
	nodes, err := checkRecords(name, records, &paths)
	return paths.paths, nodes, err
}

// readRecord reads the record whose path line has just been read.
func (s *recordScanner) readRecord(pathLine []byte, form *recordForm, paths *pathParser, first bool) (record, error) {
	rec := record{line: s.line}
	var err error
	if rec.path, err = paths.parseBytes(pathLine); err != nil {
		return record{}, s.errorf("%v", err)
	}

	line, err := s.expect("a NAR hash or a deriver")
	if err != nil {
		return record{}, err
	}
	if first {
		switch {
		case len(line) == 0 || line[0] == '/':
			*form = shortForm
		case isNarHash(line):
			*form = longForm
		default:
			return record{}, s.errorf("after the store path expected a NAR hash (dump-db and registration form) or a deriver store path or empty line (exportReferencesGraph form), found %s", quote(string(line)))
		}
	}
	if *form == longForm {
		if rec.narHash, err = parseNarHash(string(line)); err != nil {
			return record{}, s.errorf("expected a sha256 NAR hash, found %s", quote(string(line)))
		}
		if line, err = s.expect("a NAR size"); err != nil {
			return record{}, err
		}
		if rec.narSize, err = strconv.ParseUint(string(line), 10, 64); err != nil {
			return record{}, s.errorf("NAR size %s is not a number", quote(string(line)))
		}
		if line, err = s.expect("a deriver"); err != nil {
			return record{}, err
		}
	}
	// The deriver is not part of the graph, but it must be a derivation if
	// it is there at all: anything else means the records are misaligned.
	if len(line) > 0 {
		id, err := paths.parseBytes(line)
		if err != nil {
			return record{}, s.errorf("deriver: %v", err)
		}
		if deriver := paths.path(id); !strings.HasSuffix(deriver.Name, ".drv") {
			// The likeliest cause: a plain list of paths, one per line.
			return record{}, s.errorf("deriver %s is not a .drv; %s", deriver, pathListHint)
		}
	}

	if line, err = s.expect("a reference count"); err != nil {
		return record{}, err
	}
	count, err := strconv.ParseUint(string(line), 10, 64)
	if err != nil {
		if bytes.HasPrefix(line, []byte("/")) {
			return record{}, s.errorf("reference count %s is not a number; %s", quote(string(line)), pathListHint)
		}
		return record{}, s.errorf("reference count %s is not a number", quote(string(line)))
	}
	rec.refLines = s.line + 1
	// References are read one by one rather than preallocated: count is
	// untrusted, and a huge one must fail at the end of file, not in make.
	for i := uint64(0); i < count; i++ {
		line, ok, err := s.next()
		if err != nil {
			return record{}, err
		}
		if !ok {
			return record{}, s.unexpectedEOF(fmt.Sprintf("reference %d of %d", i+1, count))
		}
		ref, err := paths.parseBytes(line)
		if err != nil {
			return record{}, s.errorf("reference: %v", err)
		}
		rec.refs = append(rec.refs, ref)
	}
	return rec, nil
}

// expectBlankToEnd checks that only blank lines remain.
func (s *recordScanner) expectBlankToEnd() error {
	for {
		line, ok, err := s.next()
		if err != nil || !ok {
			return err
		}
		if len(line) > 0 {
			return s.errorf("expected a store path, found %s after a blank line", quote(string(line)))
		}
	}
}

// checkRecords checks what needs the whole file, so that errors can still
// point at lines: every reference names a path of the file, and a path listed
// twice has the same data both times.
func checkRecords(name string, records []record, paths *pathParser) ([]idNode, error) {
	firstRecord := make([]int, paths.count()) // by path id: 1 + the index of its first record, or 0
	nodes := make([]idNode, 0, len(records))
	for i, rec := range records {
		if first := firstRecord[rec.path]; first != 0 {
			if differ := difference(records[first-1].idNode, rec.idNode); differ != "" {
				return nil, fmt.Errorf("%s:%d: %s is listed again (first at line %d) with %s",
					name, rec.line, paths.path(rec.path), records[first-1].line, differ)
			}
			continue
		}
		firstRecord[rec.path] = i + 1
		nodes = append(nodes, rec.idNode)
	}
	for _, rec := range records {
		for k, ref := range rec.refs {
			if firstRecord[ref] == 0 {
				return nil, fmt.Errorf("%s:%d: %s references %s, which is not in the file",
					name, rec.refLines+k, paths.path(rec.path), paths.path(ref))
			}
		}
	}
	return nodes, nil
}

// isNarHash reports whether line is a NAR hash in a notation that
// parseNarHash reads, as the second line of a long-form record is.
func isNarHash(line []byte) bool {
	_, err := parseNarHash(string(line))
	return err == nil
}
