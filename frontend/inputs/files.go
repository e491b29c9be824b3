package inputs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Files reads a tree: the build context, or the store directory. Names are
// slash-separated and relative to the tree's root ("" is the root). The
// frontend reads through the BuildKit gateway, the CLI plugin from the
// host; the logic of this package is the same for both.
type Files interface {
	ReadFile(ctx context.Context, name string) ([]byte, error)
	// Open reads a file as a stream: a GRAPH of 100,000 paths is 40 MB,
	// which the graph read from it need not hold.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// ReadHeader reads at most n bytes from the start of a file.
	ReadHeader(ctx context.Context, name string, n int) ([]byte, error)
	// ReadDir lists a directory without following symlinks, sorted by name.
	ReadDir(ctx context.Context, dir string) ([]Entry, error)
	// ReadNames lists the names in a directory, in no order: without an
	// lstat of each entry, which costs a store of 100,000 paths seconds.
	ReadNames(ctx context.Context, dir string) ([]string, error)
	// Lookup returns the entry of name, not following a symlink, or nil
	// when it does not exist; it does not list name's directory.
	Lookup(ctx context.Context, name string) (*Entry, error)
}

// Entry is one directory entry.
type Entry struct {
	Name     string
	Mode     fs.FileMode
	Size     int64
	Linkname string // symlink target
}

// IsNotExist recognises a missing file, also in a gateway error, which
// crosses the gRPC boundary as text.
func IsNotExist(err error) bool {
	return err != nil && (os.IsNotExist(err) || strings.Contains(err.Error(), "no such file or directory"))
}

// FSFiles is Files on a file system: the host's reads a directory with
// os.DirFS, and tests read fixtures the same way.
type FSFiles struct{ FS fs.FS }

var _ Files = FSFiles{}

// ReadFile implements Files.
func (f FSFiles) ReadFile(_ context.Context, name string) ([]byte, error) {
	return fs.ReadFile(f.FS, fsName(name))
}

// Open implements Files.
func (f FSFiles) Open(_ context.Context, name string) (io.ReadCloser, error) {
	return f.FS.Open(fsName(name))
}

// ReadHeader implements Files.
func (f FSFiles) ReadHeader(_ context.Context, name string, n int) ([]byte, error) {
	file, err := f.FS.Open(fsName(name))
	if err != nil {
		return nil, err
	}
	defer file.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(file, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return buf[:m], err
}

// ReadDir implements Files.
func (f FSFiles) ReadDir(_ context.Context, dir string) ([]Entry, error) {
	des, err := fs.ReadDir(f.FS, fsName(dir))
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, 0, len(des))
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			return nil, err
		}
		e := Entry{Name: de.Name(), Mode: fi.Mode(), Size: fi.Size()}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if e.Linkname, err = fs.ReadLink(f.FS, path.Join(fsName(dir), de.Name())); err != nil {
				return nil, err
			}
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// ReadNames implements Files.
func (f FSFiles) ReadNames(_ context.Context, dir string) ([]string, error) {
	d, err := f.FS.Open(fsName(dir))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if rn, ok := d.(interface{ Readdirnames(int) ([]string, error) }); ok {
		return rn.Readdirnames(-1) // an os.File's: no entry made for each name
	}
	rd, ok := d.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: errors.New("not a directory")}
	}
	// os.File's entries carry the type from the directory itself: no lstat.
	des, err := rd.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(des))
	for i, de := range des {
		names[i] = de.Name()
	}
	return names, nil
}

// Lookup implements Files.
func (f FSFiles) Lookup(_ context.Context, name string) (*Entry, error) {
	fi, err := fs.Lstat(f.FS, fsName(name))
	if err != nil {
		if IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	e := &Entry{Name: path.Base(name), Mode: fi.Mode(), Size: fi.Size()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if e.Linkname, err = fs.ReadLink(f.FS, fsName(name)); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// fsName is a Files name as io/fs names it: "." for the root.
func fsName(name string) string {
	if name == "" {
		return "."
	}
	return name
}
