package layerllb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Customisation is the content of the last layer: extra directories and
// symlinks (LINK, DIR), and files (ACCOUNT's, the store database). Link
// targets are final: relative targets were already resolved against the
// first root by the caller, or are meant to be relative.
type Customisation struct {
	Dirs  []Dir  `json:"dirs,omitempty"`
	Links []Link `json:"links,omitempty"`
	Files []File `json:"files,omitempty"`
}

// Dir is a directory with its full mode (sticky and set-id bits included),
// owned by 0:0 unless Owner says.
type Dir struct {
	Path  string `json:"path"`
	Mode  uint32 `json:"mode"`
	Owner *Owner `json:"owner,omitempty"` // no set-id or sticky bits then
}

// Owner is a numeric user and group.
type Owner struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
}

// File is a regular file owned by 0:0.
type File struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"` // permission bits
	Data []byte `json:"data"`
}

// Link is a symlink at Path pointing to Target.
type Link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// Empty reports whether there is nothing to put in the layer.
func (c Customisation) Empty() bool {
	return len(c.Dirs) == 0 && len(c.Links) == 0 && len(c.Files) == 0
}

// Differ finds what RUN changed: the states holding what after, the file
// system the commands made, changed of before. step names the work in
// progress output.
type Differ interface {
	Diff(before, after llb.State, step string) (Changes, error)
}

// Changes are what RUN changed, as states in the builder.
type Changes struct {
	// Entries is a scratch state holding what after has that before
	// lacks or holds otherwise, with their parents, owners and modes kept.
	Entries llb.State
	// Result is a state whose file DiffResultFile holds the DiffResult,
	// as JSON.
	Result llb.State
}

// DiffResultFile is the file of Changes.Result.
const DiffResultFile = "diff.json"

// DiffResult is what a Differ found besides the changed entries: the
// absolute paths of the entries of before that after lacks or holds as
// another type (file, directory, symlink), not their children; or what
// makes the changes unfit for a layer, such as a fifo the commands made.
type DiffResult struct {
	Removed []string `json:"removed,omitempty"`
	Problem string   `json:"problem,omitempty"`
}

// FileReader solves st as the build of platform p solves it (so that the
// build reuses the result) and reads its file name; a missing file is an
// error that wraps fs.ErrNotExist.
type FileReader func(ctx context.Context, st llb.State, p ocispecs.Platform, name string) ([]byte, error)

// Stager makes a scratch state holding exactly a customisation's entries,
// for builders whose FileOps cannot (no symlink FileOp before BuildKit
// 0.19, no special mode bits on Mkdir): the frontend runs its own binary in
// the builder, the CLI plugin sends the entries from the host.
type Stager interface {
	Stage(c Customisation) (llb.State, error)
}

// Copy is a COPY: Src of From, put at Dest in the customisation layer.
type Copy struct {
	From llb.State
	Src  string
	Dest string
	// Contents copies the contents of the directory Src into the directory
	// Dest, as a Dockerfile's COPY of a directory does.
	Contents bool
	Mode     *os.FileMode // nil: the source's
	Owner    *Owner       // nil: 0:0; also of the directories it creates
}

// ErrNoDiffer is CustomisationLayer's error for RUN without a Differ.
var ErrNoDiffer = errors.New("RUN needs the frontend binary in the builder to find what the commands changed, and it is unknown here: run the frontend through `# syntax=`")

// RunError is CustomisationLayer's error for changes of RUN that cannot
// make a layer: a file type no layer holds, or a removal on a builder that
// cannot record it reproducibly.
type RunError struct{ Msg string }

func (e *RunError) Error() string { return e.Msg }

// Run is a RUN: a command run as root in the builder over the image's file
// system, with the image's environment.
type Run struct {
	Args []string
	Env  []string
	// Name is the step's in progress output and in the builder's errors,
	// which name no source lines on every builder; "": RUN and the args.
	Name string
	// Where names the manifest lines of the RUN, for the builder's errors
	// (llb.SourceMap.Location); nil: none.
	Where llb.ConstraintsOpt
}

// CustomisationLayer adds the customisation layer on top of st: the
// entries of c, then copies, then what runs change when run over the
// result. On Merge the layer is built on scratch and merged, unless runs
// removed entries of st; on Chain it is applied on st. The differ finds
// what runs changed.
func CustomisationLayer(ctx context.Context, st llb.State, c Customisation, copies []Copy, runs []Run, caps apicaps.CapSet, stager Stager, differ Differ, opt Options) (llb.State, error) {
	owned, c := c.owned()
	stage, err := customisationStage(c, caps, stager)
	if err != nil {
		return llb.State{}, err
	}
	// Assembled on scratch: the stage's entries as root's (a stager's come
	// with the owner of whoever wrote them), then the entries that have an
	// owner of their own.
	fa := llb.Copy(stage, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true, ChownOpt: root})
	for _, d := range owned {
		fa = fa.Mkdir(d.Path, os.FileMode(d.Mode), llb.WithParents(true), llb.WithUIDGID(d.Owner.UID, d.Owner.GID))
	}
	for _, cp := range copies {
		chown := root
		if cp.Owner != nil {
			chown = &llb.ChownOpt{User: &llb.UserOpt{UID: cp.Owner.UID}, Group: &llb.UserOpt{UID: cp.Owner.GID}}
		}
		var mode *llb.ChmodOpt
		if cp.Mode != nil {
			mode = &llb.ChmodOpt{Mode: *cp.Mode}
		}
		fa = fa.Copy(cp.From, cp.Src, cp.Dest, &llb.CopyInfo{
			Mode:                mode,
			ChownOpt:            chown,
			CopyDirContentsOnly: cp.Contents,
			CreateDestPath:      true,
		})
	}
	assembled := llb.Scratch().File(fa, llb.WithCustomName("assemble the customisation layer"))
	layer := onTop(st, assembled, nil, opt)
	if len(runs) == 0 {
		return layer, nil
	}
	if differ == nil {
		return llb.State{}, ErrNoDiffer
	}
	for _, r := range runs {
		name := r.Name
		if name == "" {
			name = "RUN " + strings.Join(r.Args, " ")
		}
		ro := []llb.RunOption{llb.Args(r.Args), llb.Dir("/"), llb.WithCustomName(name)}
		if r.Where != nil {
			ro = append(ro, r.Where)
		}
		for _, kv := range r.Env {
			k, v, _ := strings.Cut(kv, "=")
			ro = append(ro, llb.AddEnv(k, v))
		}
		layer = layer.Run(ro...).Root()
	}
	// The layer is what the entries, copies and commands changed over st,
	// as files, applied again with every time fixed.
	changes, err := differ.Diff(st, layer, "find what RUN changed")
	if err != nil {
		return llb.State{}, err
	}
	result, err := readDiffResult(ctx, changes.Result, opt)
	if err != nil {
		return llb.State{}, err
	}
	if result.Problem != "" {
		return llb.State{}, &RunError{Msg: "RUN " + result.Problem}
	}
	// Builders without MergeOp are Docker Engine's own on the classic
	// image store, whose layer diffs stamp whiteouts with the time of the
	// build; BuildKit's own differ stamps them with a fixed time.
	if len(result.Removed) > 0 && caps.Supports(pb.CapMergeOp) != nil {
		p := result.Removed[0]
		return llb.State{}, &RunError{Msg: fmt.Sprintf("RUN removed %s, which the layers below hold: this builder (Docker Engine's own on its classic image store: no MergeOp) records a removal with the time of the build, so the image would differ on every build; build on BuildKit 0.10 or later (a docker-container or remote buildx builder), or leave %s in place", p, p)}
	}
	return onTop(st, changes.Entries, result.Removed, opt), nil
}

// readDiffResult reads what the differ found, which runs the commands in
// the builder; nothing without opt.Read.
func readDiffResult(ctx context.Context, st llb.State, opt Options) (DiffResult, error) {
	var result DiffResult
	if opt.Read == nil {
		return result, nil
	}
	data, err := opt.Read(ctx, st, opt.Platform, DiffResultFile)
	if err != nil {
		return result, err
	}
	if err := json.Unmarshal(data, &result); err != nil {
		return result, fmt.Errorf("what RUN changed: %w", err)
	}
	return result, nil
}

// onTop puts the entries of the scratch state entries on st as one layer,
// every entry's mtime fixed (a contents-only copy with a fixed time sets
// them all, directories after their children), owners and modes kept,
// after removing the paths removed. A removal is a whiteout in the layer,
// which only a layer made on st holds: one made on scratch and merged
// cannot remove what is below it.
func onTop(st, entries llb.State, removed []string, opt Options) llb.State {
	var fa *llb.FileAction
	for _, p := range removed {
		fa = fa.Rm(p)
	}
	fa = fa.Copy(entries, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true, CreatedTime: &opt.Epoch})
	name := llb.WithCustomName("customisation layer")
	if opt.Method == Merge && len(removed) == 0 {
		return llb.Merge([]llb.State{st, llb.Scratch().File(fa, name)})
	}
	return st.File(fa, name)
}

// owned splits off the directories that have an owner, and returns the
// rest with the parents of those directories added (mode 0755, unless
// listed).
func (c Customisation) owned() (owned []Dir, rest Customisation) {
	rest = Customisation{Links: c.Links, Files: c.Files}
	listed := map[string]bool{}
	for _, d := range c.Dirs {
		if d.Owner != nil {
			owned = append(owned, d)
		} else {
			rest.Dirs = append(rest.Dirs, d)
			listed[d.Path] = true
		}
	}
	for _, d := range owned {
		if parent := path.Dir(d.Path); parent != "/" && !listed[parent] {
			rest.Dirs = append(rest.Dirs, Dir{Path: parent, Mode: 0o755})
			listed[parent] = true
		}
	}
	return owned, rest
}

// customisationStage builds a scratch state holding exactly the
// customisation's entries, with FileOps when the builder can, else with the
// stager.
func customisationStage(c Customisation, caps apicaps.CapSet, stager Stager) (llb.State, error) {
	if c.Empty() { // COPY or RUN alone
		return llb.Scratch(), nil
	}
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
	for _, f := range c.Files {
		if dir := path.Dir(f.Path); dir != "/" {
			st = st.File(llb.Mkdir(dir, 0o755, llb.WithParents(true)))
		}
		st = st.File(llb.Mkfile(f.Path, os.FileMode(f.Mode), f.Data))
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
	for _, f := range c.Files {
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, os.FileMode(f.Mode)); err != nil {
			return err
		}
		if err := os.Chmod(p, os.FileMode(f.Mode)); err != nil { // past the umask
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
