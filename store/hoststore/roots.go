package hoststore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/storepack/storepack/store"
)

// maxSymlinks bounds a chain of symlinks from a ROOT argument to the store,
// as the kernel does (ELOOP).
const maxSymlinks = 40

// Root is a ROOT argument and the store path it names.
type Root struct {
	Arg  string     // as the user wrote it
	Path store.Path // the store path it names
}

var _ fmt.Stringer = Root{}

// String names the root in errors: the argument, and the store path when
// the argument is something else.
func (r Root) String() string {
	if r.Arg == r.Path.String() {
		return r.Arg
	}
	return fmt.Sprintf("%s (%s)", r.Arg, r.Path)
}

func rootPaths(roots []Root) []store.Path {
	paths := make([]store.Path, len(roots))
	for i, r := range roots {
		paths[i] = r.Path
	}
	return paths
}

// ResolveRoots finds the store paths of args (see ResolveRoot), in storeDir
// if it is not empty, and returns them with the store directory: storeDir
// made absolute, or the one every root is in.
func ResolveRoots(args []string, storeDir string) ([]Root, string, error) {
	if len(args) == 0 {
		return nil, "", errors.New("no roots")
	}
	if storeDir != "" {
		abs, err := filepath.Abs(storeDir)
		if err != nil {
			return nil, "", fmt.Errorf("--store-dir=%s: %w", storeDir, err)
		}
		if err := store.CheckStoreDir(abs); err != nil {
			return nil, "", fmt.Errorf("--store-dir=%s: %w", storeDir, err)
		}
		storeDir = abs
	}
	roots := make([]Root, 0, len(args))
	for _, arg := range args {
		p, err := ResolveRoot(arg, storeDir)
		if err != nil {
			return nil, "", err
		}
		roots = append(roots, Root{Arg: arg, Path: p})
	}
	if storeDir == "" {
		storeDir = roots[0].Path.Dir
		for _, r := range roots[1:] {
			if r.Path.Dir != storeDir {
				return nil, "", fmt.Errorf("the roots are in different store directories: %s is in %s, %s in %s (choose one with --store-dir)",
					roots[0].Arg, storeDir, r.Arg, r.Path.Dir)
			}
		}
	}
	return roots, storeDir, nil
}

// ResolveRoot finds the store path that arg names: arg itself when it is a
// store path or a path inside one, else the target of the chain of
// symlinks that starts at arg (such as nix-build's ./result), once it is
// inside the store. storeDir must be absolute, or empty: any store
// directory then ends the chain.
func ResolveRoot(arg, storeDir string) (store.Path, error) {
	if arg == "" {
		return store.Path{}, errors.New("root: empty argument")
	}
	cur, err := filepath.Abs(arg)
	if err != nil {
		return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
	}
	for hops := 0; ; hops++ {
		if p, ok, err := storePathOf(cur, storeDir); ok || err != nil {
			if err != nil {
				return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
			}
			return p, nil
		}
		// Read cur where it really is: a path below a symlink
		// (./result/bin/hello) is inside the symlink's target, and a
		// relative symlink target is relative to the real directory.
		if dir, err := filepath.EvalSymlinks(filepath.Dir(cur)); err == nil {
			cur = filepath.Join(dir, filepath.Base(cur))
			if p, ok, err := storePathOf(cur, storeDir); ok || err != nil {
				if err != nil {
					return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
				}
				return p, nil
			}
		}
		fi, err := os.Lstat(cur)
		if err != nil {
			return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			where := "the store"
			if storeDir != "" {
				where = storeDir
			}
			if hops > 0 {
				return store.Path{}, fmt.Errorf("root %s: it leads to %s, which is not in %s", arg, cur, where)
			}
			return store.Path{}, fmt.Errorf("root %s: not a store path, nor a symlink into %s (such as nix-build's ./result)", arg, where)
		}
		if hops == maxSymlinks {
			return store.Path{}, fmt.Errorf("root %s: more than %d symlinks before reaching the store", arg, maxSymlinks)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return store.Path{}, fmt.Errorf("root %s: %w", arg, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(cur), target)
		}
		cur = filepath.Clean(target)
	}
}

// storePathOf returns the store path that the absolute, clean path s is in,
// if it is in storeDir (or, with storeDir empty, in any store directory).
func storePathOf(s, storeDir string) (store.Path, bool, error) {
	if storeDir != "" {
		if !strings.HasPrefix(s, storeDir+"/") {
			return store.Path{}, false, nil
		}
	} else if !store.LooksInStore(s) {
		return store.Path{}, false, nil
	}
	p, _, err := store.SplitSubPath(s)
	if err != nil {
		if storeDir != "" {
			return store.Path{}, false, fmt.Errorf("%s is in the store directory %s, but not in a store path: %w", s, storeDir, err)
		}
		return store.Path{}, false, err
	}
	if storeDir != "" && p.Dir != storeDir {
		return store.Path{}, false, fmt.Errorf("%s is not a store path in %s", s, storeDir)
	}
	return p, true, nil
}
