package hostbuild

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
)

// storeDirFS serves a host store directory as the image's store directory
// dir (e.g. nix/store), below parents that are directories of mode 0755
// owned by root: the transfer of a layer is then the layer's store paths
// as the image has them, and one contents copy of its root places them and
// sets their parents, where a second copy of a skeleton did.
// fsutil.SubDirFS does not serve: it rewrites absolute symlink targets.
type storeDirFS struct {
	store fsutil.FS
	dir   string // relative, slash-separated, clean
}

var _ fsutil.FS = storeDirFS{}

// Walk walks the whole tree; BuildKit's transfers ask for no other target.
func (s storeDirFS) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	if t := strings.Trim(target, "/"); t != "" && t != "." {
		return fmt.Errorf("walk %s: only the root of a store transfer is served", target)
	}
	for i := range s.dir {
		if s.dir[i] == '/' {
			if err := s.parent(s.dir[:i], fn); err != nil {
				return err
			}
		}
	}
	if err := s.parent(s.dir, fn); err != nil {
		return err
	}
	return s.store.Walk(ctx, "/", func(p string, e fs.DirEntry, err error) error {
		if e != nil {
			e = storeEntry{DirEntry: e, dir: s.dir}
		}
		return fn(filepath.Join(filepath.FromSlash(s.dir), p), e, err)
	})
}

// parent gives fn the directory p, one of the store directory's parents or
// itself.
func (s storeDirFS) parent(p string, fn fs.WalkDirFunc) error {
	err := fn(filepath.FromSlash(p), &fsutil.DirEntryInfo{Stat: &types.Stat{Path: p, Mode: uint32(os.ModeDir | 0o755)}}, nil)
	if err == fs.SkipDir {
		return fmt.Errorf("the transfer of %s leaves out its directory %s", s.dir, p)
	}
	return err
}

func (s storeDirFS) Open(p string) (io.ReadCloser, error) {
	rel, ok := strings.CutPrefix(path.Clean(strings.TrimPrefix(p, "/")), s.dir+"/")
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return s.store.Open(rel)
}

// storeEntry is an entry of the host store directory with its path (its
// stat's, slash-separated as fsutil sends it) in the image's store
// directory. A file the host store shares with another (hard
// links made by `nix-store --optimise` or Guix's deduplication) is sent as
// a file of its own: a NAR holds no hard links, and the same closure must
// give the same layers whether or not the host's store was optimised. Its
// stat is read only when asked for, as fsutil reads it: a transfer's
// include patterns skip most of a host store's entries by name.
type storeEntry struct {
	fs.DirEntry
	dir string
}

func (e storeEntry) Info() (fs.FileInfo, error) {
	fi, err := e.DirEntry.Info()
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*types.Stat)
	if !ok {
		return nil, fmt.Errorf("%s: no fsutil stat", fi.Name())
	}
	st.Path = path.Join(e.dir, st.Path)
	if fi.Mode()&fs.ModeSymlink == 0 {
		st.Linkname = "" // a hard link's first path
	}
	return &fsutil.StatInfo{Stat: st}, nil
}
