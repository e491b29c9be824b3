package inputs

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/store"
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

// DirFiles is Files on a directory of the host.
type DirFiles string

func (d DirFiles) path(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

func (d DirFiles) ReadFile(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(d.path(name))
}

func (d DirFiles) ReadHeader(_ context.Context, name string, n int) ([]byte, error) {
	f, err := os.Open(d.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(f, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return buf[:m], err
}

func (d DirFiles) ReadDir(_ context.Context, dir string) ([]Entry, error) {
	des, err := os.ReadDir(d.path(dir))
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
			if e.Linkname, err = os.Readlink(d.path(dir + "/" + de.Name())); err != nil {
				return nil, err
			}
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// HostSource reads the build context and the store from the host.
type HostSource struct {
	ContextDir string // the build context
	// StoreDir is where the store's entries are on the host; "": where
	// the store paths say (/nix/store for /nix/store/...), below Root.
	StoreDir string
	// Root holds the store on the host (Root/nix/store/...), as in a Nix
	// store opened with --store local?root=Root; "": the host's root.
	Root string
}

var _ Source = HostSource{}

// StoreDirOf returns where the entry of p is on the host.
func (h HostSource) StoreDirOf(p store.Path) string {
	if h.StoreDir != "" {
		return h.StoreDir
	}
	return filepath.Join(h.Root, p.Dir)
}

// Context implements Source.
func (h HostSource) Context(context.Context, []string) (Files, error) {
	return DirFiles(h.ContextDir), nil
}

// Discover implements Source by scanning the store directory.
func (h HostSource) Discover(ctx context.Context, _ ocispecs.Platform, roots []store.Path) (*store.Graph, error) {
	return store.Discover(ctx, h.StoreDirOf(roots[0]), roots)
}

// Store implements Source.
func (h HostSource) Store(ctx context.Context, paths []store.Path, graph *store.Graph) (Files, error) {
	dir := h.StoreDirOf(paths[0])
	files := DirFiles(dir)
	return files, CheckPresent(ctx, files, paths, graph, dir)
}
