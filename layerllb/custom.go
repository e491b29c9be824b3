package layerllb

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	"github.com/pkg/errors"
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

// Helper runs the frontend binary inside the builder to write a
// customisation stage on builders whose FileOps cannot (no symlink FileOp
// before BuildKit 0.19, no special mode bits on Mkdir).
type Helper struct {
	Image  llb.State // the frontend image
	Binary string    // path of the frontend binary in Image
}

// HelperCommand is the argument that makes the frontend binary write a stage.
const HelperCommand = "write-stage"

// CustomisationLayer adds the customisation layer on top of st. On Merge the
// layer is built on scratch and merged; on Chain it is applied on st.
func CustomisationLayer(st llb.State, c Customisation, caps apicaps.CapSet, helper *Helper, opt Options) (llb.State, error) {
	stage, err := customisationStage(c, caps, helper)
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
// customisation's entries, with FileOps when the builder can, else by
// running the helper.
func customisationStage(c Customisation, caps apicaps.CapSet, helper *Helper) (llb.State, error) {
	special := false
	for _, d := range c.Dirs {
		special = special || d.Mode&^0o777 != 0
	}
	if caps.Supports(pb.CapFileSymlinkCreate) == nil && !special {
		return fileOpStage(c), nil
	}
	if helper == nil {
		return llb.State{}, errors.New("this builder has no symlink FileOp (BuildKit 0.19 or later) and the frontend image is unknown, so LINK and DIR --mode with special bits cannot be made; run the frontend through `# syntax=` or pass --opt source=IMAGE")
	}
	spec, err := json.Marshal(c)
	if err != nil {
		return llb.State{}, err
	}
	run := helper.Image.Run(
		llb.Args([]string{helper.Binary, HelperCommand, "/out", string(spec)}),
		llb.Network(pb.NetMode_NONE),
		llb.WithCustomName("write LINK and DIR entries"),
	)
	return run.AddMount("/out", llb.Scratch()), nil
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

// WriteStage writes the customisation's entries under dir. The frontend
// binary runs it inside the builder as the Helper.
func WriteStage(dir string, c Customisation) error {
	dirs := append([]Dir(nil), c.Dirs...)
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Path < dirs[j].Path })
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
