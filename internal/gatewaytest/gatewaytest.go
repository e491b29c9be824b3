// Package gatewaytest is a BuildKit gateway client for in-process tests of
// a frontend: it serves the local sources of a build from host
// directories, as a builder would after a transfer, and records what was
// solved. ExecOps are not run: a test gives the frontend everything it
// needs without the in-builder helper.
package gatewaytest

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
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
	// Platform is the worker's.
	Platform ocispecs.Platform

	mu     sync.Mutex
	solved []*pb.Definition
}

var _ client.Client = (*Client)(nil)

// Solved returns every definition solved so far, in order.
func (c *Client) Solved() []*pb.Definition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.solved)
}

// BuildOpts implements client.Client.
func (c *Client) BuildOpts() client.BuildOpts {
	caps := pb.Caps.CapSet(pb.Caps.All())
	if c.LLBCaps != nil {
		caps = *c.LLBCaps
	}
	return client.BuildOpts{
		Opts:    c.Opts,
		Workers: []client.WorkerInfo{{ID: "gatewaytest", Platforms: []ocispecs.Platform{c.Platform}}},
		Caps:    gwpb.Caps.CapSet(gwpb.Caps.All()),
		LLBCaps: caps,
	}
}

// Solve implements client.Client. A definition whose result is a local
// source (or a FileOp over one) is served from its directory, filtered by
// its include patterns; any other result reads as empty.
func (c *Client) Solve(_ context.Context, req client.SolveRequest) (*client.Result, error) {
	c.mu.Lock()
	c.solved = append(c.solved, req.Definition)
	c.mu.Unlock()
	ref := &Ref{}
	if src, err := resultSource(req.Definition); err != nil {
		return nil, err
	} else if src != nil {
		name := strings.TrimPrefix(src.Identifier, "local://")
		dir, ok := c.Locals[name]
		if !ok {
			return nil, errors.New("gatewaytest: no local source " + name)
		}
		ref.Dir = dir
		if p := src.Attrs[pb.AttrIncludePatterns]; p != "" {
			if err := json.Unmarshal([]byte(p), &ref.Include); err != nil {
				return nil, err
			}
		}
	}
	res := client.NewResult()
	res.SetRef(ref)
	return res, nil
}

// resultSource returns the local source that a definition's result is,
// or nil when the result is something else.
func resultSource(def *pb.Definition) (*pb.SourceOp, error) {
	if def == nil || len(def.Def) < 2 {
		return nil, nil
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
		return nil, nil
	}
	if src := ops[last.Inputs[0].Digest].GetSource(); src != nil && strings.HasPrefix(src.Identifier, "local://") {
		return src, nil
	}
	return nil, nil
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
}

var _ client.Reference = (*Ref)(nil)

// visible reports whether the relative path name was transferred: it
// matches an include pattern, is inside a match, or leads to one.
func (r *Ref) visible(name string) bool {
	if r.Dir == "" {
		return false
	}
	if len(r.Include) == 0 || name == "" {
		return true
	}
	parts := strings.Split(name, "/")
	for _, p := range r.Include {
		pp := strings.Split(strings.Trim(p, "/"), "/")
		ok := true
		for i := 0; i < len(parts) && i < len(pp); i++ {
			if m, _ := path.Match(pp[i], parts[i]); !m {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (r *Ref) hostPath(name string) (string, error) {
	name = strings.Trim(path.Clean("/"+name), "/")
	if !r.visible(name) {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return filepath.Join(r.Dir, filepath.FromSlash(name)), nil
}

// ReadFile implements client.Reference.
func (r *Ref) ReadFile(_ context.Context, req client.ReadRequest) ([]byte, error) {
	p, err := r.hostPath(req.Filename)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if req.Range != nil {
		end := min(len(data), int(req.Range.Offset)+req.Range.Length)
		data = data[min(len(data), int(req.Range.Offset)):end]
	}
	return data, nil
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
