package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// pathInfoVersions are the versions of the versioned form that are
// understood: they differ only in fields a graph does not use (2 made "ca"
// structured, 3 the signatures).
var pathInfoVersions = []int64{2, 3}

// readPathInfoJSON reads `nix path-info --json` output in any of its forms:
//
//	[{"path": "/nix/store/…", "narSize": 1, "references": […]}, …]   Nix ≤ 2.18
//	{"/nix/store/…": {"narSize": 1, "references": […]}, …}         Nix 2.19+, --json-format 1
//	{"version": 2, "storeDir": "/nix/store",                         --json-format 2 and 3 (Nix 2.33+)
//	 "info": {"<hash>-<name>": {"version": 2, "storeDir": "/nix/store",
//	                            "narSize": 1, "references": ["<hash>-<name>", …]}, …}}
//
// In the versioned form paths are base names in the store directory given by
// "storeDir", at the top or in each entry (they must agree). Nix writes the
// keys of an object sorted, so "info" comes before "storeDir": entries are
// resolved once the whole object is read. An entry's narHash is read too
// where it is given (null is unknown): a string in any notation parseNarHash
// reads (Nix 2.3 wrote sha256:<nix32>, later versions SRI) or an object (see
// structuredNarHash). Other fields (deriver, signatures, ca, …) are skipped,
// as are unknown members of the versioned form's top-level object.
//
// An invalid path ("valid": false in the array form, null in the object
// forms) is an error: the graph would miss it. The input is read one token at
// a time, so memory stays proportional to the graph, not to the input.
// Errors name the entry by index and, once known, by path, and give the byte
// offset of syntax errors. It returns the paths by id and the nodes.
func readPathInfoJSON(name string, r io.Reader) ([]Path, []idNode, error) {
	pr := &pathInfoReader{name: name, limited: &entryLimitReader{r: r}}
	pr.json = newJSONReader(pr.limited)
	nodes, err := pr.read()
	if err == nil {
		if err = pr.json.end(); err != nil {
			err = pr.fail("", err)
		}
	}
	return pr.paths.paths, nodes, err
}

type pathInfoReader struct {
	name    string
	limited *entryLimitReader
	json    *jsonReader
	paths   pathParser
	field   []byte // the key of the entry field being read, for errors
}

// pathInfoEntry is what a graph needs of one entry.
type pathInfoEntry struct {
	path     *string // the array form's "path"; the other forms key entries by path
	narSize  uint64
	narHash  digest.Digest
	refs     []int    // by id: the unversioned forms' references are parsed at once
	baseRefs [][]byte // the versioned form's wait for the store directory
	hasRefs  bool
	invalid  bool // "valid": false
	version  *int64
	storeDir *string
}

// fail locates err in the file and, when where is not empty, the entry.
func (pr *pathInfoReader) fail(where string, err error) error {
	if where != "" {
		return fmt.Errorf("%s: %s: %w", pr.name, where, err)
	}
	return fmt.Errorf("%s: %w", pr.name, err)
}

func (pr *pathInfoReader) read() ([]idNode, error) {
	c, err := pr.json.peek()
	if err != nil {
		return nil, pr.fail("", pr.json.readErr(err))
	}
	switch c {
	case '[':
		return pr.readArray()
	case '{':
		more, err := pr.json.open('{', '}')
		if err != nil || !more {
			return nil, pr.failIf("", err)
		}
		key, err := pr.key(entryAt{kind: "entry"})
		if err != nil {
			return nil, err
		}
		if key[0] == '/' {
			return pr.readObject(key)
		}
		return pr.readVersioned(key)
	}
	return nil, pr.fail("", pr.json.errorf("expected a JSON array or object, found %s", describe(c)))
}

func (pr *pathInfoReader) failIf(where string, err error) error {
	if err != nil {
		return pr.fail(where, err)
	}
	return nil
}

// key reads an object key; where locates a failure. Keys are never empty.
func (pr *pathInfoReader) key(where entryAt) (string, error) {
	pr.limited.reset()
	key, err := pr.json.key()
	if err == nil && len(key) == 0 {
		err = errors.New("empty key")
	}
	if err != nil {
		return "", pr.fail(where.String(), err)
	}
	return string(key), nil
}

// entryAt locates an entry in an error, "entry 3 (\"/nix/store/…\")": its
// text is made for an error only, not for each of 100,000 entries.
type entryAt struct {
	kind  string // "entry", "info entry"; "": no entry
	index int
	key   *string // the path or base name; nil: not known
}

func (e entryAt) String() string {
	switch {
	case e.kind == "":
		return ""
	case e.key == nil:
		return fmt.Sprintf("%s %d", e.kind, e.index)
	}
	return fmt.Sprintf("%s %d (%s)", e.kind, e.index, quote(*e.key))
}

// readArray reads the array form.
func (pr *pathInfoReader) readArray() ([]idNode, error) {
	more, err := pr.json.open('[', ']')
	if err != nil {
		return nil, pr.fail("", err)
	}
	var nodes []idNode
	for i := 0; more; i++ {
		pr.limited.reset()
		entry, err := pr.entry(false)
		where := entryAt{kind: "entry", index: i, key: entry.path}
		if err != nil {
			return nil, pr.fail(where.String(), err)
		}
		if entry.path == nil {
			return nil, pr.fail(where.String(), errors.New(`no "path"`))
		}
		node, err := entry.node(*entry.path, pr.paths.parse)
		if err != nil {
			return nil, pr.fail(where.String(), err)
		}
		nodes = append(nodes, node)
		if more, err = pr.json.more(']'); err != nil {
			return nil, pr.fail("", err)
		}
	}
	return nodes, nil
}

// readObject reads the members of the object form keyed by absolute path,
// the first key already read.
func (pr *pathInfoReader) readObject(key string) ([]idNode, error) {
	var nodes []idNode
	for i := 0; ; i++ {
		where := entryAt{kind: "entry", index: i, key: &key}
		entry, err := pr.validEntry(false)
		if err != nil {
			return nil, pr.fail(where.String(), err)
		}
		node, err := entry.node(key, pr.paths.parse)
		if err != nil {
			return nil, pr.fail(where.String(), err)
		}
		nodes = append(nodes, node)
		more, err := pr.json.more('}')
		if err != nil || !more {
			return nodes, pr.failIf("", err)
		}
		if key, err = pr.key(entryAt{kind: "entry", index: i + 1}); err != nil {
			return nil, err
		}
	}
}

// baseEntry is an entry of the versioned form, waiting for the store
// directory.
type baseEntry struct {
	base  string
	where entryAt
	entry *pathInfoEntry
}

// readVersioned reads the members of the versioned form's top-level object,
// the first key already read.
func (pr *pathInfoReader) readVersioned(key string) ([]idNode, error) {
	var (
		version  *int64
		storeDir *string
		entries  []baseEntry
		sawInfo  bool
	)
	for {
		var err error
		switch key {
		case "version":
			version, err = pr.integer()
		case "storeDir":
			storeDir, err = pr.nullableString()
		case "info":
			sawInfo = true
			if entries, err = pr.readInfo(); err != nil {
				return nil, err // located by readInfo
			}
		default:
			err = pr.json.skip()
		}
		if err != nil {
			return nil, pr.fail(quote(key), err)
		}
		more, err := pr.json.more('}')
		if err != nil {
			return nil, pr.fail("", err)
		}
		if !more {
			break
		}
		if key, err = pr.key(entryAt{}); err != nil {
			return nil, err
		}
	}

	if !sawInfo {
		return nil, pr.fail("", errors.New(`unknown JSON graph format: expected nix path-info --json output, an object keyed by store path or one with "version", "storeDir" and "info"`))
	}
	if err := checkPathInfoVersion(version); err != nil {
		return nil, pr.fail("", err)
	}
	if storeDir != nil {
		if err := CheckStoreDir(*storeDir); err != nil {
			return nil, pr.fail(`"storeDir"`, err)
		}
	}
	nodes := make([]idNode, 0, len(entries))
	for _, e := range entries {
		node, err := e.resolve(version, storeDir, &pr.paths)
		if err != nil {
			return nil, pr.fail(e.where.String(), err)
		}
		nodes = append(nodes, node)
	}
	return nodes, nil
}

// readInfo reads the versioned form's "info" object, keyed by base name.
func (pr *pathInfoReader) readInfo() ([]baseEntry, error) {
	more, err := pr.json.open('{', '}')
	if err != nil {
		return nil, pr.fail(`"info" (an object keyed by base name)`, err)
	}
	var entries []baseEntry
	for i := 0; more; i++ {
		base, err := pr.key(entryAt{kind: "info entry", index: i})
		if err != nil {
			return nil, err
		}
		where := entryAt{kind: "info entry", index: i, key: &base}
		entry, err := pr.validEntry(true)
		if err != nil {
			return nil, pr.fail(where.String(), err)
		}
		entries = append(entries, baseEntry{base: base, where: where, entry: entry})
		if more, err = pr.json.more('}'); err != nil {
			return nil, pr.fail(`"info"`, err)
		}
	}
	return entries, nil
}

// resolve checks a versioned entry against the top-level version and store
// directory and turns it into a node.
func (e baseEntry) resolve(version *int64, storeDir *string, paths *pathParser) (idNode, error) {
	if e.entry.version != nil {
		if err := checkPathInfoVersion(e.entry.version); err != nil {
			return idNode{}, err
		}
		if version != nil && *version != *e.entry.version {
			return idNode{}, fmt.Errorf("version %d differs from the top-level version %d", *e.entry.version, *version)
		}
	}
	dir := storeDir
	switch {
	case dir == nil && e.entry.storeDir == nil:
		return idNode{}, errors.New(`no "storeDir", neither in the entry nor at the top level`)
	case dir == nil:
		dir = e.entry.storeDir
		if err := CheckStoreDir(*dir); err != nil {
			return idNode{}, err
		}
	case e.entry.storeDir != nil && *e.entry.storeDir != *dir:
		return idNode{}, fmt.Errorf("storeDir %s differs from the top-level storeDir %s", quote(*e.entry.storeDir), quote(*dir))
	}
	for i, ref := range e.entry.baseRefs {
		id, err := paths.parseBase(*dir, ref)
		if err != nil {
			return idNode{}, fmt.Errorf("reference %d: %w", i, err)
		}
		e.entry.refs = append(e.entry.refs, id)
	}
	return e.entry.node(e.base, func(base string) (int, error) { return paths.parseBase(*dir, []byte(base)) })
}

func checkPathInfoVersion(version *int64) error {
	if version != nil && !slices.Contains(pathInfoVersions, *version) {
		return fmt.Errorf("unsupported path-info JSON version %d: expected 2 or 3 (nix path-info --json-format 2 or 3)", *version)
	}
	return nil
}

// validEntry reads an entry that is an object member; null means the path
// is not valid.
func (pr *pathInfoReader) validEntry(versioned bool) (*pathInfoEntry, error) {
	if null, err := pr.json.isNull(); err != nil || null {
		if err == nil {
			err = errors.New("not valid (null): the path is not in the store")
		}
		return nil, err
	}
	return pr.entry(versioned)
}

// entry reads one entry object. The unversioned forms' references are
// parsed at once; the versioned form's are kept as text.
func (pr *pathInfoReader) entry(versioned bool) (*pathInfoEntry, error) {
	e := &pathInfoEntry{}
	more, err := pr.json.open('{', '}')
	for err == nil && more {
		var key []byte
		if key, err = pr.json.key(); err != nil {
			break
		}
		// The key's bytes are only valid until the next string is read.
		pr.field = append(pr.field[:0], key...)
		switch string(key) { // does not allocate
		case "path":
			e.path, err = pr.nullableString()
		case "narSize":
			err = pr.narSize(e)
		case "narHash":
			e.narHash, err = pr.narHash()
		case "references":
			err = pr.references(e, versioned)
		case "valid":
			err = pr.valid(e)
		case "version":
			e.version, err = pr.integer()
		case "storeDir":
			e.storeDir, err = pr.nullableString()
		default:
			err = pr.json.skip()
		}
		if err != nil {
			return e, fmt.Errorf("%s: %w", pr.field, err)
		}
		more, err = pr.json.more('}')
	}
	return e, err
}

func (pr *pathInfoReader) valid(e *pathInfoEntry) error {
	if null, err := pr.json.isNull(); err != nil || null {
		return err
	}
	valid, err := pr.json.boolean()
	e.invalid = !valid
	return err
}

func (pr *pathInfoReader) narSize(e *pathInfoEntry) error {
	if null, err := pr.json.isNull(); err != nil || null {
		return err
	}
	text, err := pr.json.number()
	if err != nil {
		return err
	}
	if e.narSize, err = strconv.ParseUint(string(text), 10, 64); err != nil {
		return fmt.Errorf("%s is not a byte count", quote(string(text)))
	}
	return nil
}

func (pr *pathInfoReader) narHash() (digest.Digest, error) {
	if null, err := pr.json.isNull(); err != nil || null {
		return "", err
	}
	if c, _ := pr.json.peek(); c == '{' { // isNull peeked: this peek cannot fail
		return pr.structuredNarHash()
	}
	s, err := pr.json.str()
	if err != nil {
		return "", err
	}
	return parseNarHash(string(s))
}

// structuredNarHash reads a hash as an object, such as {"algorithm":
// "sha256", "format": "base16", "hash": "<digits>"}, which development
// versions of Nix wrote for a while before 2.33 (released with SRI
// strings); other builds of Nix name the members otherwise ("algo",
// "base16"). Any member holding the digits of a SHA-256 hash is taken; a
// shape not understood leaves the hash unknown rather than failing the
// graph, which needs no hash to be read.
func (pr *pathInfoReader) structuredNarHash() (digest.Digest, error) {
	var algorithm *string
	var candidates []string
	more, err := pr.json.open('{', '}')
	for err == nil && more {
		var key []byte
		if key, err = pr.json.key(); err != nil {
			break
		}
		var value *string
		switch string(key) {
		case "algorithm", "algo":
			algorithm, err = pr.nullableString()
		case "format":
			err = pr.json.skip()
		default:
			var c byte
			if c, err = pr.json.peek(); err == nil && c != '"' {
				err = pr.json.skip()
			} else if err == nil {
				if value, err = pr.nullableString(); value != nil {
					candidates = append(candidates, *value)
				}
			}
		}
		if err == nil {
			more, err = pr.json.more('}')
		}
	}
	if err != nil {
		return "", err
	}
	if algorithm != nil && *algorithm != "sha256" {
		return "", nil
	}
	for _, c := range candidates {
		if d, err := parseNarHash("sha256:" + strings.TrimPrefix(c, "sha256:")); err == nil {
			return d, nil
		}
	}
	return "", nil
}

func (pr *pathInfoReader) references(e *pathInfoEntry, versioned bool) error {
	if null, err := pr.json.isNull(); err != nil || null {
		return err
	}
	e.hasRefs = true
	more, err := pr.json.open('[', ']')
	for i := 0; err == nil && more; i++ {
		var ref []byte
		if ref, err = pr.json.str(); err != nil {
			break
		}
		if versioned {
			e.baseRefs = append(e.baseRefs, bytes.Clone(ref))
		} else {
			id, err := pr.paths.parseBytes(ref)
			if err != nil {
				return fmt.Errorf("reference %d: %w", i, err)
			}
			e.refs = append(e.refs, id)
		}
		more, err = pr.json.more(']')
	}
	return err
}

func (pr *pathInfoReader) integer() (*int64, error) {
	if null, err := pr.json.isNull(); err != nil || null {
		return nil, err
	}
	text, err := pr.json.number()
	if err != nil {
		return nil, err
	}
	v, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s is not an integer", quote(string(text)))
	}
	return &v, nil
}

func (pr *pathInfoReader) nullableString() (*string, error) {
	if null, err := pr.json.isNull(); err != nil || null {
		return nil, err
	}
	s, err := pr.json.str()
	if err != nil {
		return nil, err
	}
	str := string(s)
	return &str, nil
}

// node validates an entry describing path, parsed with parse.
func (e *pathInfoEntry) node(path string, parse func(string) (int, error)) (idNode, error) {
	id, err := parse(path)
	if err != nil {
		return idNode{}, err
	}
	if e.invalid {
		return idNode{}, errors.New(`not valid ("valid": false): the path is not in the store`)
	}
	if !e.hasRefs {
		return idNode{}, errors.New(`no "references"`)
	}
	return idNode{path: id, narSize: e.narSize, narHash: e.narHash, refs: e.refs}, nil
}

// maxEntrySize bounds the JSON text of one entry. Real entries are a few
// kilobytes (a path with thousands of references stays far below a megabyte);
// the bound keeps an endless string or array from filling the memory.
const maxEntrySize = 16 << 20

// entryLimitReader fails once more than maxEntrySize bytes were read since the
// last reset. The JSON reader reads ahead, so a byte may be charged to the
// entry before its own; the bound is approximate, but it bounds the memory.
type entryLimitReader struct {
	r    io.Reader
	read int64
}

func (l *entryLimitReader) reset() { l.read = 0 }

func (l *entryLimitReader) Read(p []byte) (int, error) {
	if l.read > maxEntrySize {
		return 0, fmt.Errorf("an entry is larger than %d bytes", maxEntrySize)
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}
