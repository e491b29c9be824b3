// Package layerllb turns a layer plan into BuildKit LLB and an OCI image config.
//
// Every store layer holds whole store paths copied from a Source, with the
// store directory's parents (/nix, /nix/store) at mode 0755, every entry at
// the fixed mtime and owned by 0:0, so the same closure gives the same
// layers on every run. Two ways of stacking layers exist, chosen from the
// builder's capabilities: Merge (each layer built on scratch and joined by a
// MergeOp, so an unchanged layer keeps its blob and cache whatever changes
// below it) and Chain (successive FileOps, for builders without MergeOp such
// as Docker's classic image store).
package layerllb

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

// Method is how layers are stacked.
type Method string

const (
	// Merge builds each layer from scratch and joins them with a MergeOp.
	Merge Method = "merge"
	// Chain applies each layer's copies on top of the previous layer.
	Chain Method = "chain"
)

// MethodFor picks Merge when the builder supports MergeOp, else Chain.
func MethodFor(caps apicaps.CapSet) Method {
	if caps.Supports(pb.CapMergeOp) == nil {
		return Merge
	}
	return Chain
}

// Part is a state holding the entries of some of a layer's store paths.
type Part struct {
	State llb.State
	// Dir is the directory of State that holds the entries <hash>-<name>:
	// "/" for a context that is the store itself, "/nix/store" for a context
	// that is the host's root.
	Dir   string
	Paths []store.Path
	// Exact says that State is these store paths as the image has them:
	// Dir is the store directory, it holds Paths' entries and nothing else,
	// and its parents and itself are directories of mode 0755. One copy of
	// State's root then places them all and gives the parents their time,
	// where every other part costs a copy per store path and the layer a
	// copy of the skeleton. Where every copy action costs a mount of the
	// layer's whole stack (Docker 20.10's builder), one action per layer is
	// what keeps deep images fast.
	Exact bool
	// Whole says that State is the layer itself: an image of exactly the
	// layer's store paths as the image has them, written on the host,
	// which the Merge method merges as it is, with no copy.
	Whole bool
	// Only says that State's Dir holds Paths' entries and nothing else:
	// one copy of Dir's contents places them all, where a part without it
	// names each store path in a copy of its own, and a definition that
	// names every path of a large closure twice outgrows the largest
	// message BuildKit takes.
	Only bool
}

func (p Part) pathOf(sp store.Path) string { return path.Join("/", p.Dir, sp.Base()) }

// Source gives the store paths of each layer of a plan: Source[i] are the
// parts of layer i, which together hold exactly its paths.
type Source [][]Part

// SharedSource is the Source of a plan whose layers all copy from st,
// which holds every entry below dir; each store path is its own copy.
func SharedSource(st llb.State, dir string, plan layering.Plan) Source {
	src := make(Source, len(plan.Layers))
	for i, l := range plan.Layers {
		src[i] = []Part{{State: st, Dir: dir, Paths: l.Paths}}
	}
	return src
}

// SplitSource is the Source of a plan whose store paths several parts
// hold, each Part's Paths being those it holds: a layer copies each of its
// paths from the first part that holds it, its parts in the order of
// parts. A path that no part holds is an error.
func SplitSource(plan layering.Plan, parts []Part) (Source, error) {
	holder := map[store.Path]int{}
	for i, part := range parts {
		for _, p := range part.Paths {
			if _, ok := holder[p]; !ok {
				holder[p] = i
			}
		}
	}
	src := make(Source, len(plan.Layers))
	for i, l := range plan.Layers {
		split := make([][]store.Path, len(parts))
		for _, p := range l.Paths {
			at, ok := holder[p]
			if !ok {
				return nil, fmt.Errorf("%s is in none of the transfers of the store", p)
			}
			split[at] = append(split[at], p)
		}
		for j, paths := range split {
			if len(paths) > 0 {
				// A part of other layers' paths too is no longer the layer's only.
				only := parts[j].Only && len(paths) == len(parts[j].Paths)
				src[i] = append(src[i], Part{State: parts[j].State, Dir: parts[j].Dir, Paths: paths, Only: only})
			}
		}
	}
	return src, nil
}

// Options are the settings every layer shares.
type Options struct {
	StoreDir string    // store directory inside the image, e.g. /nix/store
	Epoch    time.Time // mtime of every entry
	Method   Method
	// Platform is the image's, which RUN commands run as.
	Platform ocispecs.Platform
	// Read reads files of states in the builder: the list of what RUN
	// removed; nil for a conversion that builds nothing (plan), which then
	// removes nothing.
	Read FileReader
}

// root owns every entry of the image.
var root = &llb.ChownOpt{User: &llb.UserOpt{UID: 0}, Group: &llb.UserOpt{UID: 0}}

// StoreLayers returns the state holding every layer of the plan, bottom
// first, on top of base (llb.Scratch() for an image without a base).
func StoreLayers(base llb.State, plan layering.Plan, src Source, opt Options) (llb.State, error) {
	if len(src) != len(plan.Layers) {
		return llb.State{}, fmt.Errorf("the store source has %d layers, the plan %d", len(src), len(plan.Layers))
	}
	skeleton := storeSkeleton(opt.StoreDir)
	states := []llb.State{base}
	top := base
	for i, layer := range plan.Layers {
		if len(src[i]) == 1 && src[i][0].Whole {
			if opt.Method != Merge {
				return llb.State{}, fmt.Errorf("layer %d is given whole, which only the merge method stacks", i+1)
			}
			states = append(states, src[i][0].State)
			continue
		}
		name := llb.WithCustomName(fmt.Sprintf("layer %d/%d: %s", i+1, len(plan.Layers), describe(layer)))
		actions := copyLayer(src[i], skeleton, opt)
		switch opt.Method {
		case Merge:
			states = append(states, llb.Scratch().File(actions, name))
		default:
			top = top.File(actions, name)
		}
	}
	if opt.Method == Merge {
		return llb.Merge(states, llb.WithCustomName(fmt.Sprintf("merge %d layers", len(plan.Layers)))), nil
	}
	return top, nil
}

// copyLayer copies the layer's store paths into place and then, unless
// every part is Exact, copies the skeleton's directories over their
// parents. The last copy matters: parent directories a FileOp creates, or
// whose children it adds, get the wall-clock mtime on every BuildKit
// measured; a contents-only copy with a fixed time applied after the
// children resets them.
func copyLayer(parts []Part, skeleton llb.State, opt Options) *llb.FileAction {
	var fa *llb.FileAction
	add := func(input llb.CopyInput, from, to string, info *llb.CopyInfo) {
		if fa == nil {
			fa = llb.Copy(input, from, to, info)
		} else {
			fa = fa.Copy(input, from, to, info)
		}
	}
	exact := true
	for _, part := range parts {
		if part.Exact {
			add(part.State, "/", "/", &llb.CopyInfo{
				CopyDirContentsOnly: true,
				ChownOpt:            root,
				CreatedTime:         &opt.Epoch,
			})
			continue
		}
		exact = false
		if part.Only {
			add(part.State, path.Join("/", part.Dir), opt.StoreDir, &llb.CopyInfo{
				CopyDirContentsOnly: true,
				CreateDestPath:      true,
				ChownOpt:            root,
				CreatedTime:         &opt.Epoch,
			})
			continue
		}
		for _, p := range part.Paths {
			add(part.State, part.pathOf(p), path.Join(opt.StoreDir, p.Base()), &llb.CopyInfo{
				CreateDestPath: true,
				ChownOpt:       root,
				CreatedTime:    &opt.Epoch,
			})
		}
	}
	if !exact || fa == nil {
		add(skeleton, "/", "/", &llb.CopyInfo{
			CopyDirContentsOnly: true,
			ChownOpt:            root,
			CreatedTime:         &opt.Epoch,
		})
	}
	return fa
}

// storeSkeleton is a state that holds only the store directory and its
// parents, each at mode 0755.
func storeSkeleton(storeDir string) llb.State {
	return llb.Scratch().File(
		llb.Mkdir(storeDir, 0o755, llb.WithParents(true)),
		llb.WithCustomName("store directory "+storeDir),
	)
}

// describe names a layer for progress output.
func describe(l layering.Layer) string {
	switch len(l.Paths) {
	case 0:
		return l.Key
	case 1:
		return l.Paths[0].Name
	}
	return fmt.Sprintf("%s (+%d paths)", l.Key, len(l.Paths)-1)
}

// maxCommentBytes bounds a store layer's history comment, which `docker
// history` shows: the plan label lists every path already, and the config,
// carried whole in one gRPC message of the frontend's result, would grow
// with each path twice.
const maxCommentBytes = 1024

// layerComment is the history comment of a store layer: its store paths,
// as many as fit maxCommentBytes, and how many more the plan label names.
func layerComment(l layering.Layer) string {
	var b strings.Builder
	b.WriteString("store paths:")
	more := func(n int) string { return fmt.Sprintf(" (+%d more in the %s label)", n, PlanLabel) }
	for i, p := range l.Paths {
		need := 1 + len(p.String())
		if rest := len(l.Paths) - i - 1; rest > 0 {
			need += len(more(rest))
		}
		if i > 0 && b.Len()+need > maxCommentBytes {
			b.WriteString(more(len(l.Paths) - i))
			break
		}
		b.WriteString(" " + p.String())
	}
	return b.String()
}
