package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// A NAR (Nix ARchive) serialises a file system object as a sequence of
// strings, each an 8-byte little-endian length, the bytes, and zero padding to
// a multiple of 8:
//
//	"nix-archive-1" node
//	node = "(" "type" "regular" ["executable" ""] "contents" <bytes> ")"
//	     | "(" "type" "symlink" "target" <target> ")"
//	     | "(" "type" "directory" { "entry" "(" "name" <name> "node" node ")" } ")"
//
// Directory entries come sorted by name. narSize in Nix's metadata is the
// length of this serialisation, so it follows from the tree's shape, names,
// symlink targets and file sizes alone; the file contents are never needed.

// narStringSize is the serialised size of a string of n bytes.
func narStringSize(n uint64) uint64 { return 8 + (n+7)&^7 }

// narString appends the serialisation of s to b.
func narString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	b = append(b, s...)
	return append(b, make([]byte, narPadding(uint64(len(s))))...)
}

// narPadding is the number of zero bytes that follow a string of n bytes.
func narPadding(n uint64) uint64 { return -n & 7 }

// narTokens serialises a sequence of fixed strings.
func narTokens(tokens ...string) []byte {
	var b []byte
	for _, t := range tokens {
		b = narString(b, t)
	}
	return b
}

// The fixed tokens of the NAR, serialised, as they surround the variable
// strings (names, symlink targets, file contents) of each kind of node.
var (
	narHeader         = narTokens("nix-archive-1")
	narRegularStart   = narTokens("(", "type", "regular")
	narExecutable     = narTokens("executable", "")
	narContents       = narTokens("contents")
	narSymlinkStart   = narTokens("(", "type", "symlink", "target")
	narDirectoryStart = narTokens("(", "type", "directory")
	narEntryStart     = narTokens("entry", "(", "name")
	narEntryNode      = narTokens("node")
	narEnd            = narTokens(")") // of a node and of a directory entry
)

// The size of the fixed parts of each kind of NAR node, without its
// variable strings.
var (
	narHeaderSize     = uint64(len(narHeader))
	narRegularSize    = uint64(len(narRegularStart) + len(narContents) + len(narEnd))
	narExecutableSize = uint64(len(narExecutable))
	narSymlinkSize    = uint64(len(narSymlinkStart) + len(narEnd))
	narDirectorySize  = uint64(len(narDirectoryStart) + len(narEnd))
	narEntrySize      = uint64(len(narEntryStart) + len(narEntryNode) + len(narEnd))
)

// NarSize returns the size of the NAR serialisation of store path p, read from
// fsys, whose root is the store directory on disk (p's entry there is
// p.Base()). It equals the narSize that Nix records for the path, and reads
// only directories, symlinks and file metadata.
//
// fsys must implement fs.ReadLinkFS (os.DirFS and os.Root.FS do) if the path
// contains symlinks.
func NarSize(fsys fs.FS, p Path) (uint64, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	return walkNAR(fsys, p, nopVisitor{})
}

// WalkPath calls fn for every node of store path p in fsys (as NarSize reads
// it): p's entry, then what it holds, in the order of the NAR (depth first,
// names bytewise), which is also the order of a layer's tar. name is the
// node's path in fsys. What a NAR cannot hold is refused as NarSize refuses
// it, before fn sees it.
func WalkPath(fsys fs.FS, p Path, fn func(name string, info fs.FileInfo) error) error {
	if err := p.check(); err != nil {
		return err
	}
	_, err := walkNAR(fsys, p, nodeVisitor(fn))
	return err
}

// nodeVisitor hands every node to a function and nothing else.
type nodeVisitor func(name string, info fs.FileInfo) error

func (nodeVisitor) text(string)                                {}
func (nodeVisitor) file(string, int64) error                   { return nil }
func (v nodeVisitor) node(name string, info fs.FileInfo) error { return v(name, info) }

// narVisitor receives what the NAR of a store path contains besides its fixed
// tokens: the strings (entry names and symlink targets) and the regular files,
// whose contents it may read through name, a path in the walked fs.FS. The
// visits come in the order of the NAR.
type narVisitor interface {
	text(s string)
	file(name string, size int64) error
}

// narSerialVisitor is a narVisitor that also receives the fixed tokens, so
// that it sees the whole NAR in order: text(s) and file stand for the
// serialisation of s and of the file's contents.
type narSerialVisitor interface {
	narVisitor
	fixed(serialised []byte)
}

// narNodeVisitor is a narVisitor that also receives every node, before
// what the NAR holds of it.
type narNodeVisitor interface {
	narVisitor
	node(name string, info fs.FileInfo) error
}

type nopVisitor struct{}

func (nopVisitor) text(string)              {}
func (nopVisitor) file(string, int64) error { return nil }

// fixed hands serialised fixed tokens to v if v wants them.
func fixed(v narVisitor, serialised []byte) {
	if sv, ok := v.(narSerialVisitor); ok {
		sv.fixed(serialised)
	}
}

// walkNAR walks store path p in fsys like the NAR serialiser would, reports
// its contents to v and returns the NAR's size.
func walkNAR(fsys fs.FS, p Path, v narVisitor) (uint64, error) {
	info, err := fs.Lstat(fsys, p.Base())
	if err != nil {
		return 0, inStorePath(p, p.Base(), err)
	}
	fixed(v, narHeader)
	size, err := walkNode(fsys, p, p.Base(), info, v)
	return narHeaderSize + size, err
}

// walkNode returns the serialised size of the node at name, described by info.
func walkNode(fsys fs.FS, p Path, name string, info fs.FileInfo, v narVisitor) (uint64, error) {
	if nv, ok := v.(narNodeVisitor); ok && info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeType&^(fs.ModeDir|fs.ModeSymlink)) == 0 {
		if err := nv.node(name, info); err != nil {
			return 0, err
		}
	}
	switch mode := info.Mode(); {
	case mode&(fs.ModeSetuid|fs.ModeSetgid) != 0:
		// A NAR cannot record these bits, so no store path built by Nix
		// or Guix has them; copied into an image they would grant
		// privileges the store never gave.
		return 0, inStorePath(p, name, fmt.Errorf("mode %s has the setuid or setgid bit, which a store path cannot have", mode))

	case mode.IsRegular():
		size := narRegularSize + narStringSize(uint64(info.Size()))
		fixed(v, narRegularStart)
		if mode.Perm()&0o100 != 0 { // Nix looks at the owner's execute bit only.
			size += narExecutableSize
			fixed(v, narExecutable)
		}
		fixed(v, narContents)
		if err := v.file(name, info.Size()); err != nil {
			return 0, err
		}
		fixed(v, narEnd)
		return size, nil

	case mode&fs.ModeSymlink != 0:
		target, err := fs.ReadLink(fsys, name)
		if err != nil {
			return 0, inStorePath(p, name, err)
		}
		fixed(v, narSymlinkStart)
		v.text(target)
		fixed(v, narEnd)
		return narSymlinkSize + narStringSize(uint64(len(target))), nil

	case mode.IsDir():
		entries, err := fs.ReadDir(fsys, name)
		if err != nil {
			return 0, inStorePath(p, name, err)
		}
		// fs.ReadDir sorts by name already, as a NAR must; an fs.FS
		// whose ReadDir does not would give a wrong NAR hash.
		if !slices.IsSortedFunc(entries, compareEntries) {
			slices.SortFunc(entries, compareEntries)
		}
		size := narDirectorySize
		fixed(v, narDirectoryStart)
		for _, entry := range entries {
			fixed(v, narEntryStart)
			v.text(entry.Name())
			fixed(v, narEntryNode)
			childInfo, err := entry.Info()
			if err != nil {
				return 0, inStorePath(p, path.Join(name, entry.Name()), err)
			}
			childSize, err := walkNode(fsys, p, path.Join(name, entry.Name()), childInfo, v)
			if err != nil {
				return 0, err
			}
			fixed(v, narEnd)
			size += narEntrySize + narStringSize(uint64(len(entry.Name()))) + childSize
		}
		fixed(v, narEnd)
		return size, nil

	default:
		return 0, inStorePath(p, name, fmt.Errorf("%s is neither a regular file, a directory nor a symlink: a NAR cannot hold it", mode.Type()))
	}
}

// compareEntries orders directory entries as a NAR does: by name, bytewise.
func compareEntries(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) }

// inStorePath wraps err with the file it concerns, name being a path in the
// fs.FS rooted at the store directory. A *fs.PathError is unwrapped first: its
// path is relative to that fs.FS, which would only repeat name less clearly.
func inStorePath(p Path, name string, err error) error {
	if pathErr, ok := errors.AsType[*fs.PathError](err); ok {
		err = fmt.Errorf("%s: %w", pathErr.Op, pathErr.Err)
	}
	return fmt.Errorf("%s/%s: %w", p.Dir, name, err)
}
