package layerllb

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
)

// Customisation is the content of the last layer: extra directories and
// symlinks (LINK, DIR). Link targets are final: relative targets were
// already resolved against the first root by the caller, or are meant to be
// relative.
type Customisation struct {
	Dirs  []Dir  `json:"dirs,omitempty"`
	Links []Link `json:"links,omitempty"`
}

// Dir is a directory with its full mode (sticky and set-id bits included).
type Dir struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// Link is a symlink at Path pointing to Target.
type Link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// Empty reports whether there is nothing to put in the layer.
func (c Customisation) Empty() bool { return len(c.Dirs) == 0 && len(c.Links) == 0 }

// Stager makes a scratch state holding exactly a customisation's entries,
// for builders whose FileOps cannot (no symlink FileOp before BuildKit
// 0.19, no special mode bits on Mkdir): the frontend runs its own binary in
// the builder, the CLI plugin sends the entries from the host.
type Stager interface {
	Stage(c Customisation) (llb.State, error)
}

// CustomisationLayer adds the customisation layer on top of st. On Merge the
// layer is built on scratch and merged; on Chain it is applied on st.
func CustomisationLayer(st llb.State, c Customisation, caps apicaps.CapSet, stager Stager, opt Options) (llb.State, error) {
	stage, err := customisationStage(c, caps, stager)
	if err != nil {
		return llb.State{}, err
	}
	// As with store layers, a contents-only copy with a fixed time sets
	// every entry's mtime, directories after their children.
	fa := llb.Copy(stage, "/", "/", &llb.CopyInfo{
		CopyDirContentsOnly: true,
		ChownOpt:            root,
		CreatedTime:         &opt.Epoch,
	})
	name := llb.WithCustomName("customisation layer")
	if opt.Method == Merge {
		return llb.Merge([]llb.State{st, llb.Scratch().File(fa, name)}), nil
	}
	return st.File(fa, name), nil
}

// customisationStage builds a scratch state holding exactly the
// customisation's entries, with FileOps when the builder can, else with the
// stager.
func customisationStage(c Customisation, caps apicaps.CapSet, stager Stager) (llb.State, error) {
	if caps.Supports(pb.CapFileSymlinkCreate) == nil && !c.specialModes() {
		return fileOpStage(c), nil
	}
	if stager == nil {
		return llb.State{}, errors.New("this builder has no symlink FileOp (BuildKit 0.19 or later) and nothing else can write LINK and DIR --mode entries with special bits here; run the frontend through `# syntax=` or pass --opt source=IMAGE")
	}
	return stager.Stage(c)
}

// specialModes reports whether a directory has setuid, setgid or sticky
// bits, which Mkdir cannot set.
func (c Customisation) specialModes() bool {
	for _, d := range c.Dirs {
		if d.Mode&^0o777 != 0 {
			return true
		}
	}
	return false
}

func fileOpStage(c Customisation) llb.State {
	st := llb.Scratch()
	for _, d := range c.Dirs {
		st = st.File(llb.Mkdir(d.Path, os.FileMode(d.Mode), llb.WithParents(true)))
	}
	for _, l := range c.Links {
		if dir := path.Dir(l.Path); dir != "/" {
			st = st.File(llb.Mkdir(dir, 0o755, llb.WithParents(true)))
		}
		st = st.File(llb.Symlink(l.Target, l.Path))
	}
	return st
}

// WriteTo writes the customisation's entries under dir: the in-builder
// helper and the CLI plugin stage them this way where FileOps cannot.
func (c Customisation) WriteTo(dir string) error {
	dirs := slices.Clone(c.Dirs)
	slices.SortFunc(dirs, func(a, b Dir) int { return strings.Compare(a.Path, b.Path) })
	for _, d := range dirs {
		p := filepath.Join(dir, d.Path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, unixMode(d.Mode)); err != nil {
			return err
		}
	}
	for _, l := range c.Links {
		p := filepath.Join(dir, l.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(l.Target, p); err != nil {
			return err
		}
	}
	return nil
}

// unixMode converts permission bits with setuid, setgid and sticky in their
// Unix positions to an os.FileMode.
func unixMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}
