// Package gatewaytest is a BuildKit gateway client for in-process tests of
// a frontend: it serves the local sources of a build from host
// directories, as a builder would after a transfer, and records what was
// solved. The only ExecOps it runs are the in-builder helper's scans
// (package inbuilder), with the helper's own functions, when the client
// names a frontend image for them to run in.
package gatewaytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/storepack/storepack/frontend/inbuilder"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// Client is a gateway client over host directories.
type Client struct {
	// Opts are the frontend options (filename, build-arg:…, platform,
	// context:NAME=local:NAME, …).
	Opts map[string]string
	// Locals are the host directories of the local sources, by name
	// ("context", "dockerfile", "store", …).
	Locals map[string]string
	// LLBCaps are the builder's; nil: every cap.
	LLBCaps *apicaps.CapSet
	// Caps are the gateway's; nil: every cap.
	Caps *apicaps.CapSet
	// Platform is the worker's.
	Platform ocispecs.Platform
	// Frontend is the image of the running frontend (CurrentFrontend), ""
	// for none: the scans of an ExecOp on it run in-process, over the
	// directories its mounts hold, writing below WorkDir.
	Frontend string
	WorkDir  string

	mu     sync.Mutex
	solved []*pb.Definition
	ran    []inbuilder.Command
}

var _ client.Client = (*Client)(nil)

// Solved returns every definition solved so far, in order.
func (c *Client) Solved() []*pb.Definition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.solved)
}

// Ran returns the helper's commands run so far, in order.
func (c *Client) Ran() []inbuilder.Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ran)
}

// BuildOpts implements client.Client.
func (c *Client) BuildOpts() client.BuildOpts {
	caps := pb.Caps.CapSet(pb.Caps.All())
	if c.LLBCaps != nil {
		caps = *c.LLBCaps
	}
	gwcaps := gwpb.Caps.CapSet(gwpb.Caps.All())
	if c.Caps != nil {
		gwcaps = *c.Caps
	}
	return client.BuildOpts{
		Opts:    c.Opts,
		Workers: []client.WorkerInfo{{ID: "gatewaytest", Platforms: []ocispecs.Platform{c.Platform}}},
		Caps:    gwcaps,
		LLBCaps: caps,
	}
}

// Solve implements client.Client. A definition whose result is a local
// source is served from its directory, filtered by its include patterns;
// one whose result is an output of the helper's ExecOp is that output
// after the helper ran; any other result reads as empty.
func (c *Client) Solve(ctx context.Context, req client.SolveRequest) (*client.Result, error) {
	c.mu.Lock()
	c.solved = append(c.solved, req.Definition)
	c.mu.Unlock()
	ref, err := c.result(ctx, req.Definition)
	if err != nil {
		return nil, err
	}
	res := client.NewResult()
	res.SetRef(ref)
	return res, nil
}

// result returns what a definition's result holds.
func (c *Client) result(ctx context.Context, def *pb.Definition) (*Ref, error) {
	if def == nil || len(def.Def) < 2 {
		return &Ref{}, nil
	}
	ops := map[string]*pb.Op{}
	var last *pb.Op
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, err
		}
		ops[digest.FromBytes(dt).String()] = &op
		last = &op
	}
	// The last op is the terminal one, which names the result.
	if len(last.Inputs) != 1 {
		return &Ref{}, nil
	}
	in := last.Inputs[0]
	op := ops[in.Digest]
	if src := op.GetSource(); src != nil && strings.HasPrefix(src.Identifier, "local://") {
		return c.local(src)
	}
	if c.runsHelper(op, ops) {
		return c.runHelper(ctx, op, ops, in.Index)
	}
	return &Ref{}, nil
}

// local returns the directory of a local source, as far as it was
// transferred.
func (c *Client) local(src *pb.SourceOp) (*Ref, error) {
	name := strings.TrimPrefix(src.Identifier, "local://")
	dir, ok := c.Locals[name]
	if !ok {
		return nil, errors.New("gatewaytest: no local source " + name)
	}
	ref := &Ref{Dir: dir}
	if p := src.Attrs[pb.AttrIncludePatterns]; p != "" {
		if err := json.Unmarshal([]byte(p), &ref.Include); err != nil {
			return nil, err
		}
	}
	return ref, nil
}

// CurrentFrontend is what the gateway's own client offers: the frontend's
// image, which the frontend runs its helper in; nil without Frontend.
func (c *Client) CurrentFrontend() (*llb.State, error) {
	if c.Frontend == "" {
		return nil, nil
	}
	st := llb.Image(c.Frontend)
	return &st, nil
}

// runsHelper reports whether op is an ExecOp on the image Frontend.
func (c *Client) runsHelper(op *pb.Op, ops map[string]*pb.Op) bool {
	exec := op.GetExec()
	if c.Frontend == "" || exec == nil {
		return false
	}
	named, err := reference.ParseNormalizedNamed(c.Frontend)
	if err != nil {
		return false
	}
	// llb.Image names the image by its normalized reference.
	image := "docker-image://" + reference.TagNameOnly(named).String()
	for _, m := range exec.Mounts {
		if m.Dest == "/" && m.Input >= 0 {
			return ops[op.Inputs[m.Input].Digest].GetSource().GetIdentifier() == image
		}
	}
	return false
}

// runHelper runs the scan that the helper's ExecOp op asks for with the
// helper's own Main, on the host directories that its mounts hold, and
// returns the mount that is its output numbered output. A store path the
// request names must be in its mount's transfer, or the builder's helper
// would not find it there.
func (c *Client) runHelper(ctx context.Context, op *pb.Op, ops map[string]*pb.Op, output int64) (*Ref, error) {
	exec := op.GetExec()
	args := exec.Meta.Args // BINARY COMMAND REQUEST OUTDIR
	scans := []inbuilder.Command{inbuilder.FindHashes, inbuilder.CheckStore, inbuilder.HashStore}
	if len(args) != 4 || !slices.Contains(scans, inbuilder.Command(args[1])) {
		return nil, fmt.Errorf("gatewaytest: the helper's command line %q is not one that runs here", args)
	}
	if c.WorkDir == "" {
		return nil, errors.New("gatewaytest: no WorkDir for the helper's files")
	}
	mounts := map[string]*Ref{}
	for _, m := range exec.Mounts {
		if m.Dest == "/" {
			continue
		}
		ref, err := c.mount(op, ops, m)
		if err != nil {
			return nil, fmt.Errorf("gatewaytest: mount %s: %w", m.Dest, err)
		}
		mounts[m.Dest] = ref
	}
	out := slices.IndexFunc(exec.Mounts, func(m *pb.Mount) bool { return m.Output == output })
	if out < 0 {
		return nil, fmt.Errorf("gatewaytest: the helper has no output %d", output)
	}
	request, err := hostFile(mounts, args[2])
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(request)
	if err != nil {
		return nil, err
	}
	var req inbuilder.ScanRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, err
	}
	for i, part := range req.Parts {
		ref, rel, err := mountOf(mounts, part.StoreDir)
		if err != nil {
			return nil, err
		}
		for _, p := range part.Paths {
			if !ref.visible(path.Join(rel, p.Base())) {
				return nil, fmt.Errorf("gatewaytest: the helper scans %s, which the transfer mounted at %s lacks", p, part.StoreDir)
			}
		}
		req.Parts[i].StoreDir = filepath.Join(ref.Dir, filepath.FromSlash(rel))
	}
	if data, err = json.Marshal(req); err != nil {
		return nil, err
	}
	// The request mount is read-only: the request with host paths goes
	// in a directory of its own.
	dir, err := os.MkdirTemp(c.WorkDir, "request-*")
	if err != nil {
		return nil, err
	}
	request = filepath.Join(dir, path.Base(args[2]))
	if err := os.WriteFile(request, data, 0o644); err != nil {
		return nil, err
	}
	outDir, err := hostFile(mounts, args[3])
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.ran = append(c.ran, inbuilder.Command(args[1]))
	c.mu.Unlock()
	// ok is true: the command is one of Main's.
	if _, err := inbuilder.Main(ctx, []string{args[1], request, outDir}); err != nil {
		return nil, fmt.Errorf("gatewaytest: %s: %w", args[1], err)
	}
	return mounts[exec.Mounts[out].Dest], nil
}

// mount returns the directory that the mount m of the ExecOp op holds: a
// local source's, or a new one, empty for scratch or with the files of a
// FileOp that makes files on scratch.
func (c *Client) mount(op *pb.Op, ops map[string]*pb.Op, m *pb.Mount) (*Ref, error) {
	if m.Selector != "" || m.MountType != pb.MountType_BIND {
		return nil, fmt.Errorf("mount of type %v with selector %q: not supported", m.MountType, m.Selector)
	}
	var made *pb.FileOp
	if m.Input != int64(pb.Empty) {
		in := ops[op.Inputs[m.Input].Digest]
		if src := in.GetSource(); src != nil && strings.HasPrefix(src.Identifier, "local://") {
			return c.local(src)
		}
		if made = in.GetFile(); made == nil || len(in.Inputs) > 0 {
			return nil, errors.New("not scratch, a local source or files made on scratch")
		}
	}
	dir, err := os.MkdirTemp(c.WorkDir, "mount-*")
	if err != nil {
		return nil, err
	}
	for _, a := range made.GetActions() {
		mk := a.GetMkfile()
		if mk == nil {
			return nil, fmt.Errorf("file action %T: not supported", a.Action)
		}
		file := filepath.Join(dir, filepath.FromSlash(mk.Path))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(file, mk.Data, fs.FileMode(mk.Mode)); err != nil {
			return nil, err
		}
	}
	return &Ref{Dir: dir}, nil
}

// mountOf returns the mount that holds the absolute path name in the
// helper's file system (the deepest, as mounts nest), and name below it.
func mountOf(mounts map[string]*Ref, name string) (*Ref, string, error) {
	name = path.Clean(name)
	for dir := name; ; dir = path.Dir(dir) {
		if ref, ok := mounts[dir]; ok {
			return ref, strings.TrimPrefix(strings.TrimPrefix(name, dir), "/"), nil
		}
		if dir == "/" {
			return nil, "", fmt.Errorf("gatewaytest: no mount holds %s", name)
		}
	}
}

// hostFile is where the host holds the absolute path name of the helper's
// file system.
func hostFile(mounts map[string]*Ref, name string) (string, error) {
	ref, rel, err := mountOf(mounts, name)
	if err != nil {
		return "", err
	}
	return filepath.Join(ref.Dir, filepath.FromSlash(rel)), nil
}

// ResolveImageConfig implements client.Client: no image exists.
func (c *Client) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return "", "", nil, errors.New("gatewaytest: no image " + ref)
}

// ResolveSourceMetadata implements client.Client: no source resolves.
func (c *Client) ResolveSourceMetadata(_ context.Context, op *pb.SourceOp, _ sourceresolver.Opt) (*sourceresolver.MetaResponse, error) {
	return nil, errors.New("gatewaytest: cannot resolve " + op.Identifier)
}

// Inputs implements client.Client: there are none.
func (c *Client) Inputs(context.Context) (map[string]llb.State, error) { return nil, nil }

// NewContainer implements client.Client: nothing runs.
func (c *Client) NewContainer(context.Context, client.NewContainerRequest) (client.Container, error) {
	return nil, errors.New("gatewaytest: no containers")
}

// Warn implements client.Client.
func (c *Client) Warn(context.Context, digest.Digest, string, client.WarnOpts) error { return nil }

// Ref is a solved local source: the entries of Dir that Include lets
// through (all when it is empty).
type Ref struct {
	Dir     string
	Include []string

	once     sync.Once
	patterns map[string][][]string // Include's patterns, by literal prefix, in components
	prefixes []string              // the literal prefixes, sorted
}

var _ client.Reference = (*Ref)(nil)

// visible reports whether the relative path name was transferred: it
// matches an include pattern, is inside a match, or leads to one. Only the
// patterns whose literal start is a prefix of name are matched, so that a
// transfer of 100,000 store paths is listed in time.
func (r *Ref) visible(name string) bool {
	if r.Dir == "" {
		return false
	}
	if len(r.Include) == 0 || name == "" {
		return true
	}
	r.once.Do(r.index)
	// A pattern whose literal start is below name leads to a match.
	if i, _ := slices.BinarySearch(r.prefixes, name+"/"); i < len(r.prefixes) && strings.HasPrefix(r.prefixes[i], name+"/") {
		return true
	}
	parts := strings.Split(name, "/")
	for k := 0; k <= len(name); k++ {
		for _, pp := range r.patterns[name[:k]] {
			if componentsMatch(pp, parts) {
				return true
			}
		}
	}
	return false
}

// index sorts Include's patterns by their literal start, the text before
// the first wildcard.
func (r *Ref) index() {
	r.patterns = map[string][][]string{}
	for _, p := range r.Include {
		p = strings.Trim(p, "/")
		literal := p
		if i := strings.IndexAny(p, `*?[\`); i >= 0 {
			literal = p[:i]
		}
		if _, ok := r.patterns[literal]; !ok {
			r.prefixes = append(r.prefixes, literal)
		}
		r.patterns[literal] = append(r.patterns[literal], strings.Split(p, "/"))
	}
	slices.Sort(r.prefixes)
}

// componentsMatch reports whether the path parts and the pattern's
// components pp match as far as both go.
func componentsMatch(pp, parts []string) bool {
	for i := 0; i < len(parts) && i < len(pp); i++ {
		if m, _ := path.Match(pp[i], parts[i]); !m {
			return false
		}
	}
	return true
}

func (r *Ref) hostPath(name string) (string, error) {
	name = strings.Trim(path.Clean("/"+name), "/")
	if !r.visible(name) {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return filepath.Join(r.Dir, filepath.FromSlash(name)), nil
}

// MaxReadSize is the most of a file that BuildKit's gateway sends in one
// ReadFile (its default gRPC message size): a whole file larger is
// refused, a longer range cut.
const MaxReadSize = 16 << 20

// ReadFile implements client.Reference, within MaxReadSize as BuildKit's.
func (r *Ref) ReadFile(_ context.Context, req client.ReadRequest) ([]byte, error) {
	p, err := r.hostPath(req.Filename)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if req.Range == nil {
		if len(data) > MaxReadSize {
			return nil, fmt.Errorf("%s exceeds maximum allowed size of %d bytes", req.Filename, MaxReadSize)
		}
		return data, nil
	}
	end := min(len(data), int(req.Range.Offset)+min(req.Range.Length, MaxReadSize+1))
	return data[min(len(data), int(req.Range.Offset)):end], nil
}

// ReadDir implements client.Reference.
func (r *Ref) ReadDir(_ context.Context, req client.ReadDirRequest) ([]*fstypes.Stat, error) {
	dir := strings.Trim(path.Clean("/"+req.Path), "/")
	p, err := r.hostPath(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var stats []*fstypes.Stat
	for _, e := range entries {
		if !r.visible(path.Join(dir, e.Name())) {
			continue
		}
		st, err := stat(filepath.Join(p, e.Name()))
		if err != nil {
			return nil, err
		}
		st.Path = e.Name()
		stats = append(stats, st)
	}
	return stats, nil
}

// StatFile implements client.Reference.
func (r *Ref) StatFile(_ context.Context, req client.StatRequest) (*fstypes.Stat, error) {
	p, err := r.hostPath(req.Path)
	if err != nil {
		return nil, err
	}
	st, err := stat(p)
	if err != nil {
		return nil, err
	}
	st.Path = req.Path
	return st, nil
}

func stat(p string) (*fstypes.Stat, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	st := &fstypes.Stat{Mode: uint32(fi.Mode()), Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if st.Linkname, err = os.Readlink(p); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// ToState implements client.Reference.
func (r *Ref) ToState() (llb.State, error) { return llb.Scratch(), nil }

// Evaluate implements client.Reference.
func (r *Ref) Evaluate(context.Context) error { return nil }
