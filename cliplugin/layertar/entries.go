package layertar

import (
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/pkg/archive"
	cfs "github.com/containerd/continuity/fs"

	"github.com/storepack/storepack/llb/layerllb"
)

// WriteEntries writes a layer of the given entries (layerllb's
// Customisation.Entries, in their order) to w, every one with the
// modification time epoch: the bytes BuildKit's differ writes for the
// customisation layer made of them.
func WriteEntries(ctx context.Context, w io.Writer, entries []layerllb.Entry, epoch time.Time) error {
	// The change writer reads symlink targets and file contents from
	// files: they are laid out in a temporary directory first.
	source, err := os.MkdirTemp("", "storepack-entries-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(source)
	for _, e := range entries {
		p := filepath.Join(source, filepath.FromSlash(e.Path))
		switch {
		case e.Mode.IsDir():
			err = os.MkdirAll(p, 0o700)
		case e.Mode&os.ModeSymlink != 0:
			err = os.Symlink(e.Target, p)
		default:
			err = os.WriteFile(p, e.Data, 0o600)
		}
		if err != nil {
			return err
		}
	}
	cw := archive.NewChangeWriter(w, source)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			_ = cw.Close()
			return err
		}
		info := entry{name: path.Base(e.Path), size: int64(len(e.Data)), mode: e.Mode, mtime: epoch, uid: uint32(e.UID), gid: uint32(e.GID)}
		if err := cw.HandleChange(cfs.ChangeKindAdd, e.Path, info, nil); err != nil {
			_ = cw.Close()
			return err
		}
	}
	return cw.Close()
}
