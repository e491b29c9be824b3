package inputs

import (
	"context"
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
	// ReadHeader reads at most n bytes from the start of a file.
	ReadHeader(ctx context.Context, name string, n int) ([]byte, error)
	// ReadDir lists a directory without following symlinks, sorted by name.
	ReadDir(ctx context.Context, dir string) ([]Entry, error)
}

// Entry is one directory entry.
type Entry struct {
	Name     string
	Mode     fs.FileMode
	Size     int64
	Linkname string // symlink target
}

// Lookup returns the entry of name, or nil when it does not exist.
func Lookup(ctx context.Context, files Files, name string) (*Entry, error) {
	dir, base := pathSplit(name)
	entries, err := files.ReadDir(ctx, dir)
	if err != nil {
		if IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	for _, e := range entries {
		if e.Name == base {
			return &e, nil
		}
	}
	return nil, nil
}

func pathSplit(name string) (dir, base string) {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
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

// fsName is a Files name as io/fs names it: "." for the root.
func fsName(name string) string {
	if name == "" {
		return "."
	}
	return name
}
