package main

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/storepack/storepack/layering"
)

// dockerfileContext is the build context of the one-COPY-per-layer
// Dockerfile: a directory per layer of the plan (layer-NNN/nix/store/...,
// files hard-linked to the store, so staging copies no bytes), the
// customisation layer's symlink, and the Dockerfile. It is updated in
// place for the next release, as a project's directory would be, so that
// BuildKit's incremental context transfer has its chance.
type dockerfileContext struct {
	dir    string
	staged map[string][]string // layer directory → the store path bases in it
}

// stage makes the context hold plan, whose first path is the application,
// changing only the layer directories whose paths differ.
func (d *dockerfileContext) stage(c *closure, plan layering.Plan, app string) error {
	if d.staged == nil {
		d.staged = map[string][]string{}
	}
	want := map[string][]string{}
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	for i, layer := range plan.Layers {
		name := fmt.Sprintf("layer-%03d", i)
		for _, p := range layer.Paths {
			want[name] = append(want[name], p.Base())
		}
		fmt.Fprintf(&df, "COPY %s/ /\n", name)
	}
	df.WriteString("COPY custom/ /\nENV PATH=/bin\nENTRYPOINT [\"/bin/bench-app\"]\n")
	for name := range d.staged {
		if !slices.Equal(d.staged[name], want[name]) {
			if err := os.RemoveAll(filepath.Join(d.dir, name)); err != nil {
				return err
			}
			delete(d.staged, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, ok := d.staged[name]; ok {
			continue
		}
		if err := stageLayer(filepath.Join(d.dir, name), c.storeOnDisk, want[name]); err != nil {
			return fmt.Errorf("stage %s: %w", name, err)
		}
		d.staged[name] = want[name]
	}
	custom := filepath.Join(d.dir, "custom")
	if err := os.RemoveAll(custom); err != nil {
		return err
	}
	if err := os.MkdirAll(custom, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(app+"/bin", filepath.Join(custom, "bin")); err != nil {
		return err
	}
	if err := setTimes([]string{filepath.Join(custom, "bin")}, true); err != nil {
		return err
	}
	if err := setTimes([]string{custom}, false); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.dir, "Dockerfile"), []byte(df.String()), 0o644)
}

// stageLayer links the store paths bases into dir/nix/store: directories
// made with the store's mode, files hard-linked, symlinks copied, every
// entry with mtime 1.
func stageLayer(dir, storeOnDisk string, bases []string) error {
	storeCopy := filepath.Join(dir, "nix", "store")
	if err := os.MkdirAll(storeCopy, 0o755); err != nil {
		return err
	}
	var dirs, links []string
	for _, base := range bases {
		root := filepath.Join(storeOnDisk, base)
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			dst := filepath.Join(storeCopy, base, p[len(root):])
			switch {
			case e.IsDir():
				dirs = append(dirs, dst)
				return os.Mkdir(dst, 0o755)
			case e.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				links = append(links, dst)
				return os.Symlink(target, dst)
			default:
				return os.Link(p, dst)
			}
		})
		if err != nil {
			return err
		}
	}
	if err := setTimes(links, true); err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := os.Chmod(d, 0o555); err != nil {
			return err
		}
	}
	children := slices.Clone(dirs)
	slices.Reverse(children)
	return setTimes(append(children, storeCopy, filepath.Join(dir, "nix"), dir), false)
}

// setTimes gives names mtime 1, in order (children before parents);
// symlink says they are symlinks, whose own time is set.
func setTimes(names []string, symlink bool) error {
	flags := 0
	if symlink {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
	for _, n := range names {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, n, ts, flags); err != nil {
			return &fs.PathError{Op: "utimes", Path: n, Err: err}
		}
	}
	return nil
}
