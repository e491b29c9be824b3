// Package layertar writes a store layer's tar on the host: the very bytes
// BuildKit's differ writes for a layer that holds the same store paths, for
// both drive containerd's archive change writer with the same entries. The
// plugin thus knows a layer's digest before any builder sees it.
//
// A layer holds the store directory and its parents (mode 0755), then its
// store paths, whole, depth first with names in byte order; every entry
// owned by 0:0 with the modification time of the build, modes and symlink
// targets as in the store, no hard links.
package layertar

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/archive"
	cfs "github.com/containerd/continuity/fs"
	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/store"
)

// Layer is one store layer to write.
type Layer struct {
	StoreDir string       // the store directory in the image, such as /nix/store
	HostDir  string       // where the store's entries are on the host
	Paths    []store.Path // the layer's store paths, in StoreDir
	Epoch    time.Time    // every entry's modification time
	// Graph, when set, gives the NAR hashes and sizes the store paths
	// must have: a path whose NAR, hashed from the same read that
	// writes the tar, differs from what Graph records is refused.
	Graph *store.Graph
}

// Write writes l's tar to w. What a store path cannot hold (devices, fifos,
// sockets, setuid and setgid bits) is an error naming the file.
func Write(ctx context.Context, w io.Writer, l Layer) error {
	source, done, err := sourceDir(l.HostDir, l.StoreDir)
	if err != nil {
		return err
	}
	defer done()
	tap := &contentTap{w: w}
	cw := archive.NewChangeWriter(tap, source)
	if err := write(ctx, cw, tap, l); err != nil {
		// Not closed: that would end the tar, and a reader that reads
		// the layer's known size would take it whole.
		return err
	}
	return cw.Close()
}

func write(ctx context.Context, cw *archive.ChangeWriter, tap *contentTap, l Layer) error {
	// The store directory and its parents, as the image has them.
	for dir := range parents(l.StoreDir) {
		if err := cw.HandleChange(cfs.ChangeKindAdd, dir, entry{name: path.Base(dir), mode: fs.ModeDir | 0o755, mtime: l.Epoch}, nil); err != nil {
			return err
		}
	}
	for _, p := range l.Paths {
		if p.Dir != l.StoreDir {
			return fmt.Errorf("%s is not in the layer's store directory %s", p, l.StoreDir)
		}
	}
	// In one store directory, paths sort as their base names do; a plan's
	// layer is sorted already, and a copy of 100,000 paths is not needed.
	paths := l.Paths
	if !slices.IsSortedFunc(paths, store.Path.Compare) {
		paths = slices.SortedFunc(slices.Values(paths), store.Path.Compare)
	}
	fsys := os.DirFS(l.HostDir)
	for _, p := range paths {
		add := func(name string, info fs.FileInfo) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return cw.HandleChange(cfs.ChangeKindAdd, path.Join(l.StoreDir, name), entry{
				name:  info.Name(),
				size:  info.Size(),
				mode:  info.Mode(),
				mtime: l.Epoch,
			}, nil)
		}
		if err := addPath(fsys, tap, p, l.Graph, add); err != nil {
			return err
		}
	}
	return nil
}

// addPath adds store path p's nodes to the layer with add, checked
// against g's NAR hash and size of p when g knows them.
func addPath(fsys fs.FS, tap *contentTap, p store.Path, g *store.Graph, add func(name string, info fs.FileInfo) error) error {
	if g != nil {
		if size, hash, ok := g.NAR(p); ok && (hash != "" || size != 0) {
			return addChecked(fsys, tap, p, store.Info{Path: p, NarSize: size, NarHash: hash}, add)
		}
	}
	return store.WalkPath(fsys, p, add)
}

// addChecked adds store path p's nodes to the layer with add, hashing its
// NAR from the contents the change writer reads (through tap), and refuses
// p if its NAR's hash or size differs from want's.
func addChecked(fsys fs.FS, tap *contentTap, p store.Path, want store.Info, add func(name string, info fs.FileInfo) error) error {
	hash, size, err := store.WalkPathHashing(fsys, p, func(name string, info fs.FileInfo, contents io.Writer) error {
		if contents != nil && info.Size() > 0 {
			tap.arm(contents, info.Size())
		}
		if err := add(name, info); err != nil {
			return err
		}
		if tap.armed() {
			return fmt.Errorf("%s/%s: the layer's tar does not hold its %d bytes", p.Dir, name, info.Size())
		}
		return nil
	})
	if err != nil {
		return err
	}
	if (want.NarHash != "" && hash != want.NarHash) || (want.NarSize != 0 && size != want.NarSize) {
		return fmt.Errorf("store path %s changed since its graph was recorded: its NAR is %s, the graph says %s", p, narDescription(hash, size), narDescription(want.NarHash, want.NarSize))
	}
	return nil
}

// narDescription is a NAR's hash and size as far as they are known.
func narDescription(hash digest.Digest, size uint64) string {
	switch {
	case hash == "":
		return fmt.Sprintf("%d bytes", size)
	case size == 0:
		return hash.String()
	}
	return fmt.Sprintf("%s (%d bytes)", hash, size)
}

// parents yields the directories from the root down to dir, itself
// included: /nix, /nix/store.
func parents(dir string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for i := 1; i <= len(dir); i++ {
			if (i == len(dir) || dir[i] == '/') && !yield(dir[:i]) {
				return
			}
		}
	}
}

// sourceDir returns the directory the change writer reads entries from: one
// in which StoreDir is the store's host directory. That is the host
// directory's ancestor when it ends with StoreDir (/nix/store on / or below
// a store root), else a temporary directory linking StoreDir to it, which
// done removes.
func sourceDir(hostDir, storeDir string) (source string, done func(), err error) {
	hostDir, err = filepath.Abs(hostDir)
	if err != nil {
		return "", nil, err
	}
	if rest, ok := strings.CutSuffix(filepath.ToSlash(hostDir), storeDir); ok {
		if rest == "" {
			rest = "/"
		}
		return filepath.FromSlash(rest), func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "storepack-layer-")
	if err != nil {
		return "", nil, err
	}
	link := filepath.Join(tmp, filepath.FromSlash(storeDir))
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		os.RemoveAll(tmp)
		return "", nil, err
	}
	if err := os.Symlink(hostDir, link); err != nil {
		os.RemoveAll(tmp)
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// entry is a layer entry as the change writer reads it: its Sys says its
// owner (0:0 unless set), one link (no entry is a hard link) and no device.
type entry struct {
	name     string
	size     int64
	mode     fs.FileMode
	mtime    time.Time
	uid, gid uint32
}

var _ fs.FileInfo = entry{}

func (e entry) Name() string       { return e.name }
func (e entry) Size() int64        { return e.size }
func (e entry) Mode() fs.FileMode  { return e.mode }
func (e entry) ModTime() time.Time { return e.mtime }
func (e entry) IsDir() bool        { return e.mode.IsDir() }
func (e entry) Sys() any           { return entrySys(e.uid, e.gid) }

// Digest writes l's tar to nowhere and returns its digest (the layer's
// diffID) and size.
func Digest(ctx context.Context, l Layer) (digest.Digest, int64, error) {
	h := sha256.New()
	n := &counter{w: h}
	if err := Write(ctx, n, l); err != nil {
		return "", 0, err
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), n.n, nil
}

// counter counts what it passes on.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
