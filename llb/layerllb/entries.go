package layerllb

import (
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Entry is an entry of a customisation layer as a builder makes it: its
// absolute path, type and permission bits, owner, and a symlink's target
// or a file's data.
type Entry struct {
	Path     string
	Mode     fs.FileMode
	UID, GID int
	Target   string // symlinks
	Data     []byte // regular files
}

// HostWritable reports whether Entries gives exactly what a builder's
// FileOps make of c: not when a directory has set-id or sticky bits, which
// Mkdir cannot set and a stager writes otherwise.
func (c Customisation) HostWritable() bool { return !c.specialModes() }

// Entries are what CustomisationLayer's FileOps make of c on scratch
// (fileOpStage, then the directories that have an owner), in the order
// BuildKit's differ writes them into the layer: depth first, names in byte
// order. As BuildKit's Mkdir does, a directory made with its parents gives
// them its own mode and owner.
func (c Customisation) Entries() []Entry {
	owned, rest := c.owned()
	tree := map[string]*Entry{}
	var mkdirAll func(p string, mode fs.FileMode, uid, gid int)
	mkdirAll = func(p string, mode fs.FileMode, uid, gid int) {
		if p == "/" {
			return
		}
		if _, ok := tree[p]; ok {
			return
		}
		mkdirAll(path.Dir(p), mode, uid, gid)
		tree[p] = &Entry{Path: p, Mode: fs.ModeDir | mode&0o777, UID: uid, GID: gid}
	}
	for _, d := range rest.Dirs {
		mkdirAll(d.Path, fs.FileMode(d.Mode), 0, 0)
	}
	for _, l := range rest.Links {
		mkdirAll(path.Dir(l.Path), 0o755, 0, 0)
		tree[l.Path] = &Entry{Path: l.Path, Mode: fs.ModeSymlink | 0o777, Target: l.Target}
	}
	for _, f := range rest.Files {
		mkdirAll(path.Dir(f.Path), 0o755, 0, 0)
		tree[f.Path] = &Entry{Path: f.Path, Mode: fs.FileMode(f.Mode) & 0o777, Data: f.Data}
	}
	for _, d := range owned {
		mkdirAll(d.Path, fs.FileMode(d.Mode), d.Owner.UID, d.Owner.GID)
	}
	entries := make([]Entry, 0, len(tree))
	for _, e := range tree {
		entries = append(entries, *e)
	}
	// Depth first with names in byte order is the order of the paths
	// compared element by element.
	slices.SortFunc(entries, func(a, b Entry) int {
		return slices.Compare(strings.Split(a.Path, "/"), strings.Split(b.Path, "/"))
	})
	return entries
}
