package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
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

// narTokens is the serialised size of a sequence of fixed strings.
func narTokens(tokens ...string) uint64 {
	var size uint64
	for _, t := range tokens {
		size += narStringSize(uint64(len(t)))
	}
	return size
}

// The fixed parts of each kind of NAR node, without its variable strings.
var (
	narHeaderSize     = narTokens("nix-archive-1")
	narRegularSize    = narTokens("(", "type", "regular", "contents", ")")
	narExecutableSize = narTokens("executable", "")
	narSymlinkSize    = narTokens("(", "type", "symlink", "target", ")")
	narDirectorySize  = narTokens("(", "type", "directory", ")")
	narEntrySize      = narTokens("entry", "(", "name", "node", ")")
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

// narVisitor receives what the NAR of a store path contains besides its fixed
// tokens: the strings (entry names and symlink targets) and the regular files,
// whose contents it may read through name, a path in the walked fs.FS.
type narVisitor interface {
	text(s string)
	file(name string, size int64) error
}

type nopVisitor struct{}

func (nopVisitor) text(string)              {}
func (nopVisitor) file(string, int64) error { return nil }

// walkNAR walks store path p in fsys like the NAR serialiser would, reports
// its contents to v and returns the NAR's size. The order of the visits is
// unspecified.
func walkNAR(fsys fs.FS, p Path, v narVisitor) (uint64, error) {
	info, err := fs.Lstat(fsys, p.Base())
	if err != nil {
		return 0, inStorePath(p, p.Base(), err)
	}
	size, err := walkNode(fsys, p, p.Base(), info, v)
	return narHeaderSize + size, err
}

// walkNode returns the serialised size of the node at name, described by info.
func walkNode(fsys fs.FS, p Path, name string, info fs.FileInfo, v narVisitor) (uint64, error) {
	switch mode := info.Mode(); {
	case mode&(fs.ModeSetuid|fs.ModeSetgid) != 0:
		// A NAR cannot record these bits, so no store path built by Nix
		// or Guix has them; copied into an image they would grant
		// privileges the store never gave.
		return 0, inStorePath(p, name, fmt.Errorf("mode %s has the setuid or setgid bit, which a store path cannot have", mode))

	case mode.IsRegular():
		size := narRegularSize + narStringSize(uint64(info.Size()))
		if mode.Perm()&0o100 != 0 { // Nix looks at the owner's execute bit only.
			size += narExecutableSize
		}
		return size, v.file(name, info.Size())

	case mode&fs.ModeSymlink != 0:
		target, err := fs.ReadLink(fsys, name)
		if err != nil {
			return 0, inStorePath(p, name, err)
		}
		v.text(target)
		return narSymlinkSize + narStringSize(uint64(len(target))), nil

	case mode.IsDir():
		entries, err := fs.ReadDir(fsys, name)
		if err != nil {
			return 0, inStorePath(p, name, err)
		}
		size := narDirectorySize
		for _, entry := range entries {
			v.text(entry.Name())
			childInfo, err := entry.Info()
			if err != nil {
				return 0, inStorePath(p, path.Join(name, entry.Name()), err)
			}
			childSize, err := walkNode(fsys, p, path.Join(name, entry.Name()), childInfo, v)
			if err != nil {
				return 0, err
			}
			size += narEntrySize + narStringSize(uint64(len(entry.Name()))) + childSize
		}
		return size, nil

	default:
		return 0, inStorePath(p, name, fmt.Errorf("%s is neither a regular file, a directory nor a symlink: a NAR cannot hold it", mode.Type()))
	}
}

// inStorePath wraps err with the file it concerns, name being a path in the
// fs.FS rooted at the store directory. A *fs.PathError is unwrapped first: its
// path is relative to that fs.FS, which would only repeat name less clearly.
func inStorePath(p Path, name string, err error) error {
	if pathErr, ok := errors.AsType[*fs.PathError](err); ok {
		err = fmt.Errorf("%s: %w", pathErr.Op, pathErr.Err)
	}
	return fmt.Errorf("%s/%s: %w", p.Dir, name, err)
}
