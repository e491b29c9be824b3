package inbuilder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// diffTrees writes into out every entry of after that before lacks or
// that differs from before's (type, mode, owner, size, mtime, symlink
// target), with its parents, keeping modes and owners: the changes of a RUN
// as files, for a copy to apply. It returns the entries of before that
// after lacks or holds as another type (file, directory, symlink), topmost
// first and not their children, as absolute paths: a copy cannot remove
// them, so the layer removes them before the copy. Their parents are
// written out too, so that the copy fixes the times the removal changed.
func diffTrees(before, after, out string) (removed []string, err error) {
	// Entries below a path whose type changed are new: before has no
	// directory there to look in (and may have a symlink, which a lookup
	// would follow out of the tree).
	retyped := map[string]bool{}
	isNew := func(rel string) bool {
		for dir := filepath.Dir(rel); dir != "."; dir = filepath.Dir(dir) {
			if retyped[dir] {
				return true
			}
		}
		return false
	}
	if err := filepath.WalkDir(before, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(before, p)
		if rel == "." {
			return nil
		}
		info, err := os.Lstat(filepath.Join(after, rel))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		case info.Mode().Type() == d.Type():
			return nil
		default:
			retyped[rel] = true
		}
		removed = append(removed, "/"+filepath.ToSlash(rel))
		if err := mkdirParents(after, out, filepath.Dir(rel)); err != nil {
			return err
		}
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return removed, filepath.WalkDir(after, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(after, p)
		if rel == "." {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		old, err := fs.FileInfo(nil), fs.ErrNotExist
		if !isNew(rel) {
			old, err = os.Lstat(filepath.Join(before, rel))
		}
		if err == nil && same(info, old, p, filepath.Join(before, rel)) {
			return nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err != nil && mountStub(rel, p, info) {
			return fs.SkipDir
		}
		if !info.IsDir() && !info.Mode().IsRegular() && info.Mode()&fs.ModeSymlink == 0 {
			return &unfitError{path: "/" + filepath.ToSlash(rel), mode: info.Mode()}
		}
		if err := mkdirParents(after, out, filepath.Dir(rel)); err != nil {
			return err
		}
		return copyEntry(p, filepath.Join(out, rel), info)
	})
}

// unfitError is a change of RUN that no layer made here holds: a file
// that is not a regular file, directory or symlink.
type unfitError struct {
	path string
	mode fs.FileMode
}

func (e *unfitError) Error() string {
	return fmt.Sprintf("made %s, a %s: the layer holds regular files, directories and symlinks; remove it in the same RUN", e.path, typeName(e.mode))
}

// typeName names a file type as a user knows it.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return m.Type().String()
}

// mountStub reports whether the new entry rel is an empty directory that
// the builder's runtime made to mount a file system on (older BuildKit,
// as Docker 20.10's, leaves these in the RUN's snapshot; newer removes
// them), not a change of the commands.
func mountStub(rel, p string, info fs.FileInfo) bool {
	if !info.IsDir() || rel != "dev" && rel != "proc" && rel != "sys" {
		return false
	}
	entries, err := os.ReadDir(p)
	return err == nil && len(entries) == 0
}

// ownerIDs are an entry's uid and gid.
type ownerIDs struct{ uid, gid uint32 }

func (o ownerIDs) ids() (int, int) { return int(o.uid), int(o.gid) }

// same reports whether an entry is unchanged.
func same(a, b fs.FileInfo, aPath, bPath string) bool {
	if a.Mode() != b.Mode() || owner(a) != owner(b) || !a.ModTime().Equal(b.ModTime()) {
		return false
	}
	switch {
	case a.Mode().IsRegular():
		return a.Size() == b.Size()
	case a.Mode()&fs.ModeSymlink != 0:
		at, aerr := os.Readlink(aPath)
		bt, berr := os.Readlink(bPath)
		return aerr == nil && berr == nil && at == bt
	}
	return true
}

// mkdirParents makes dir (relative) and its parents in out as they are in
// from, unless they exist.
func mkdirParents(from, out, dir string) error {
	if dir == "." {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(out, dir)); err == nil {
		return nil
	}
	if err := mkdirParents(from, out, filepath.Dir(dir)); err != nil {
		return err
	}
	info, err := os.Lstat(filepath.Join(from, dir))
	if err != nil {
		return err
	}
	return copyEntry(filepath.Join(from, dir), filepath.Join(out, dir), info)
}

// copyEntry makes dst a copy of the entry src (a directory without its
// children), with its mode and owner.
func copyEntry(src, dst string, info fs.FileInfo) error {
	mode := info.Mode()
	switch {
	case mode.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case mode.IsRegular():
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: not a regular file, directory or symlink", src)
	}
	uid, gid := owner(info).ids()
	if err := os.Lchown(dst, uid, gid); err != nil {
		return err
	}
	if mode&fs.ModeSymlink != 0 {
		return nil
	}
	// After the owner: chown clears set-id bits. The times are the copy's
	// that applies the layer.
	return os.Chmod(dst, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
