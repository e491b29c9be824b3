package store

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

const (
	// hashLen is the length of the hash part of a store path: 160 bits
	// rendered in Nix's base-32 ("nix32").
	hashLen = 32

	// hashAlphabet is nix32's digit set: 0-9 and a-z without e, o, u and t
	// (left out so that hashes never spell words).
	hashAlphabet = "0123456789abcdfghijklmnpqrsvwxyz"

	// maxNameLen is Nix's limit on the name part; with the hash and the
	// dash the base name stays within 255 bytes, the usual file name limit.
	maxNameLen = 211
)

// Path is a validated store path such as /nix/store/<32-char hash>-<name>.
//
// Values returned by this package are always valid. A Path built by hand is
// checked again wherever it enters the package (NewGraph, MarshalText).
type Path struct {
	Dir  string // the store directory, e.g. /nix/store or /gnu/store
	Hash string // 32 characters of nix32
	Name string // e.g. glibc-2.39-52
}

// ParsePath parses and validates an absolute store path. The store directory
// may be any absolute, clean directory other than "/"; the last component must
// be <hash>-<name>. A trailing slash or a sub-path ("…/bin/sh") is rejected:
// use SplitSubPath for those.
func ParsePath(s string) (Path, error) {
	slash := strings.LastIndexByte(s, '/')
	if slash < 0 {
		return Path{}, pathError(s, errors.New("not an absolute path"))
	}
	dir, base := s[:slash], s[slash+1:]
	if base == "" {
		return Path{}, pathError(s, errors.New("trailing slash"))
	}
	if err := CheckStoreDir(dir); err != nil {
		return Path{}, pathError(s, err)
	}
	hash, name, err := splitBase(base)
	if err != nil {
		return Path{}, pathError(s, err)
	}
	return Path{Dir: dir, Hash: hash, Name: name}, nil
}

// ParsePathIn is ParsePath for a path that must lie in the store directory dir.
func ParsePathIn(dir, s string) (Path, error) {
	p, err := ParsePath(s)
	if err != nil {
		return Path{}, err
	}
	if p.Dir != dir {
		return Path{}, pathError(s, fmt.Errorf("not in store directory %s", dir))
	}
	return p, nil
}

// SplitSubPath splits a path that points into a store path, such as a symlink
// target, into the store path and the rest relative to it:
// "/nix/store/<hash>-bash/bin/sh" gives the bash path and "bin/sh"; the store
// path itself gives rest "". s must be absolute and clean (path.Clean(s) == s):
// ".." is refused rather than resolved, because resolving it lexically is wrong
// when a component is a symlink; callers that need resolution must do it
// against the file system.
func SplitSubPath(s string) (p Path, rest string, err error) {
	if !strings.HasPrefix(s, "/") || path.Clean(s) != s {
		return Path{}, "", pathError(s, errors.New("not an absolute clean path"))
	}
	// The store path ends at the first component that starts like a base
	// name; the store directory itself may not contain such components (see
	// CheckStoreDir), so this split is the only possible one.
	for start := 1; start < len(s); {
		end := strings.IndexByte(s[start:], '/')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		if hasHashPrefix(s[start:end]) {
			p, err := ParsePath(s[:end])
			if err != nil {
				return Path{}, "", err
			}
			if end < len(s) {
				rest = s[end+1:]
			}
			return p, rest, nil
		}
		start = end + 1
	}
	return Path{}, "", pathError(s, errors.New("no store path in it"))
}

// CheckStoreDir reports whether dir can be a store directory: absolute, clean,
// not "/", no control characters (they would corrupt the line-based graph
// formats), and no component that looks like a store path's base name (so
// that a path inside a store path is never mistaken for a store path in a
// nested store directory).
func CheckStoreDir(dir string) error {
	switch {
	case dir == "":
		return errors.New("no store directory")
	case dir[0] != '/':
		return fmt.Errorf("store directory %s is not absolute", quote(dir))
	case dir == "/":
		return errors.New("the store directory cannot be /")
	case path.Clean(dir) != dir:
		return fmt.Errorf("store directory %s is not clean", quote(dir))
	}
	for i := 0; i < len(dir); i++ {
		if c := dir[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("store directory %s contains a control character", quote(dir))
		}
	}
	for _, component := range strings.Split(dir[1:], "/") {
		if hasHashPrefix(component) {
			return fmt.Errorf("%s is inside store path %s, not a store directory", quote(dir), quote(component))
		}
	}
	return nil
}

// String returns the full path, Dir/Hash-Name, or "" for the zero Path.
func (p Path) String() string {
	if p == (Path{}) {
		return ""
	}
	return p.Dir + "/" + p.Hash + "-" + p.Name
}

// Base returns the last component of the path, Hash-Name.
func (p Path) Base() string {
	return p.Hash + "-" + p.Name
}

// SplitName splits a store path's name into a package name and a version
// as Nix's builtins.parseDrvName does: the name ends before the first "-"
// that is followed by anything but an ASCII letter ("hello-2.12.1" gives
// "hello" and "2.12.1"; "gnu-config-2024-01-01" gives "gnu-config"); a
// name without one has no version.
func SplitName(name string) (pname, version string) {
	for i := 0; i+1 < len(name); i++ {
		if c := name[i+1]; name[i] == '-' && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return name[:i], name[i+1:]
		}
	}
	return name, ""
}

// Compare orders paths like their String forms (the order used for every
// sorted slice in this package) without building the strings.
func (p Path) Compare(q Path) int {
	if p.Dir != q.Dir {
		// Dir+"/" is compared rather than Dir: "/a/store-x" sorts before
		// "/a/store/", but after "/a/store".
		return strings.Compare(p.Dir+"/", q.Dir+"/")
	}
	// Hashes have a fixed length, so Hash+"-"+Name compares as Hash, then Name.
	if c := strings.Compare(p.Hash, q.Hash); c != 0 {
		return c
	}
	return strings.Compare(p.Name, q.Name)
}

// MarshalText encodes the path as its String form, so that Paths appear as
// plain strings in JSON.
func (p Path) MarshalText() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses a path with ParsePath.
func (p *Path) UnmarshalText(text []byte) error {
	parsed, err := ParsePath(string(text))
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// check validates a Path that may have been built by hand: it must survive a
// round trip through its string form.
func (p Path) check() error {
	if err := CheckStoreDir(p.Dir); err != nil {
		return pathError(p.String(), err)
	}
	return p.checkBase()
}

// checkBase is check for a path whose Dir is known to be valid.
func (p Path) checkBase() error {
	if !isHash(p.Hash) {
		return fmt.Errorf("invalid store path %+v: hash part %s is not 32 characters of nix32", p, quote(p.Hash))
	}
	if err := checkName(p.Name); err != nil {
		return pathError(p.String(), err)
	}
	return nil
}

// pathParser parses the store paths of one graph file, which must all be in
// the store directory of the first one. A file names each path many times
// (once per reference to it): each distinct text is validated once, and
// gets an id, a position in paths. The paths of one text share its strings.
type pathParser struct {
	dir   string         // the store directory; set by the first path
	ids   map[string]int // by text: an absolute path, or a base name
	paths []Path         // by id
}

// path returns the path with id.
func (pp *pathParser) path(id int) Path { return pp.paths[id] }

// count returns the number of ids given out.
func (pp *pathParser) count() int { return len(pp.paths) }

// parse parses an absolute store path and returns its id.
func (pp *pathParser) parse(s string) (int, error) {
	if id, ok := pp.ids[s]; ok {
		return id, nil
	}
	return pp.parseNew(s)
}

// parseBytes is parse for a path in a byte slice, which it does not retain.
func (pp *pathParser) parseBytes(b []byte) (int, error) {
	if id, ok := pp.ids[string(b)]; ok { // does not allocate
		return id, nil
	}
	return pp.parseNew(string(b))
}

func (pp *pathParser) parseNew(s string) (int, error) {
	var (
		p   Path
		err error
	)
	if pp.dir == "" {
		if p, err = ParsePath(s); err == nil {
			pp.dir = p.Dir
		}
	} else if len(s) > len(pp.dir) && s[len(pp.dir)] == '/' && strings.HasPrefix(s, pp.dir) {
		// Most paths: the store directory needs no new check.
		p.Dir = pp.dir
		if p.Hash, p.Name, err = splitBase(s[len(pp.dir)+1:]); err != nil {
			_, err = ParsePathIn(pp.dir, s) // for the error message
		}
	} else {
		p, err = ParsePathIn(pp.dir, s)
	}
	if err != nil {
		return 0, err
	}
	return pp.add(s, p), nil
}

// parseBase parses a base name <hash>-<name> as a path in the store
// directory dir, which must be valid, and returns its id. It does not
// retain base.
func (pp *pathParser) parseBase(dir string, base []byte) (int, error) {
	if id, ok := pp.ids[string(base)]; ok && pp.paths[id].Dir == dir { // does not allocate
		return id, nil
	}
	text := string(base)
	hash, name, err := splitBase(text)
	if err != nil {
		return 0, fmt.Errorf("invalid base name %s: %w", quote(text), err)
	}
	return pp.add(text, Path{Dir: dir, Hash: hash, Name: name}), nil
}

func (pp *pathParser) add(text string, p Path) int {
	if pp.ids == nil {
		pp.ids = make(map[string]int)
	}
	pp.ids[text] = len(pp.paths)
	pp.paths = append(pp.paths, p)
	return len(pp.paths) - 1
}

// splitBase splits and validates a base name <hash>-<name>.
func splitBase(base string) (hash, name string, err error) {
	if !hasHashPrefix(base) {
		if len(base) > hashLen && base[hashLen] == '-' {
			return "", "", fmt.Errorf("hash part %s is not nix32 (digits and a-z without e, o, u, t)", quote(base[:hashLen]))
		}
		return "", "", fmt.Errorf("the base name does not start with a %d-character hash and a dash", hashLen)
	}
	hash, name = base[:hashLen], base[hashLen+1:]
	if err := checkName(name); err != nil {
		return "", "", err
	}
	return hash, name, nil
}

// LooksInStore reports whether a component of the slash-separated path s
// looks like a store path's base name (32 nix32 characters and a dash), so
// that s may point into some store whose directory is not known.
func LooksInStore(s string) bool {
	for _, c := range strings.Split(s, "/") {
		if hasHashPrefix(c) {
			return true
		}
	}
	return false
}

// hasHashPrefix reports whether s starts with 32 nix32 characters and a dash,
// i.e. whether s looks like a store path's base name.
func hasHashPrefix(s string) bool {
	return len(s) > hashLen && s[hashLen] == '-' && isHash(s[:hashLen])
}

// isHash reports whether s is a hash part: 32 characters of nix32.
func isHash(s string) bool {
	if len(s) != hashLen {
		return false
	}
	for i := 0; i < hashLen; i++ {
		if !isHashByte[s[i]] {
			return false
		}
	}
	return true
}

// isHashByte tells which bytes can occur in a hash part.
var isHashByte = func() (table [256]bool) {
	for i := 0; i < len(hashAlphabet); i++ {
		table[hashAlphabet[i]] = true
	}
	return table
}()

// checkName validates the name part of a store path.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > maxNameLen:
		return fmt.Errorf("name is %d bytes long, more than %d", len(name), maxNameLen)
	case name[0] == '.':
		// This also rules out "." and "..".
		return fmt.Errorf("name %s starts with a dot", quote(name))
	}
	for i := 0; i < len(name); i++ {
		if !isNameChar(name[i]) {
			return fmt.Errorf("name %s contains %s, allowed are 0-9 a-z A-Z + - . _ ? =", quote(name), quote(name[i:i+1]))
		}
	}
	return nil
}

func isNameChar(c byte) bool {
	switch {
	case '0' <= c && c <= '9', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return true
	}
	return strings.IndexByte("+-._?=", c) >= 0
}

// joinPaths joins the String forms of paths with sep.
func joinPaths(paths []Path, sep string) string {
	s := make([]string, len(paths))
	for i, p := range paths {
		s[i] = p.String()
	}
	return strings.Join(s, sep)
}

func pathError(s string, err error) error {
	return fmt.Errorf("invalid store path %s: %w", quote(s), err)
}

// quote quotes s for an error message, shortened so that garbage input
// cannot produce huge messages.
func quote(s string) string {
	const max = 120
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
