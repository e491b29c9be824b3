// Package llbtest reads LLB back for tests: it marshals a state and sorts
// its ops by kind, and makes the cap sets of older builders.
package llbtest

import (
	"context"
	"slices"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
)

// Ops are a marshalled state's ops by kind, in definition order.
type Ops struct {
	File   []*pb.FileOp
	Merge  []*pb.MergeOp
	Exec   []*pb.ExecOp
	Source []*pb.SourceOp
	// Names are the ops' custom names (progress output), sorted.
	Names []string
}

// Marshal marshals st with caps (and opts) and sorts its ops.
func Marshal(t testing.TB, st llb.State, caps apicaps.CapSet, opts ...llb.ConstraintsOpt) Ops {
	t.Helper()
	def, err := st.Marshal(context.Background(), append([]llb.ConstraintsOpt{llb.WithCaps(caps)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	var o Ops
	for _, m := range def.Metadata {
		if name := m.Description["llb.customname"]; name != "" {
			o.Names = append(o.Names, name)
		}
	}
	slices.Sort(o.Names)
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		switch {
		case op.GetFile() != nil:
			o.File = append(o.File, op.GetFile())
		case op.GetMerge() != nil:
			o.Merge = append(o.Merge, op.GetMerge())
		case op.GetExec() != nil:
			o.Exec = append(o.Exec, op.GetExec())
		case op.GetSource() != nil:
			o.Source = append(o.Source, op.GetSource())
		}
	}
	return o
}

// Copies are the copy actions of every FileOp, in definition order.
func (o Ops) Copies() []*pb.FileActionCopy {
	var cs []*pb.FileActionCopy
	for _, f := range o.File {
		for _, a := range f.Actions {
			if c := a.GetCopy(); c != nil {
				cs = append(cs, c)
			}
		}
	}
	return cs
}

// Symlinks are the symlink actions of every FileOp, as "NEW -> OLD".
func (o Ops) Symlinks() []string {
	var links []string
	for _, f := range o.File {
		for _, a := range f.Actions {
			if s := a.GetSymlink(); s != nil {
				links = append(links, s.Newpath+" -> "+s.Oldpath)
			}
		}
	}
	return links
}

// AllCaps is every LLB cap of this BuildKit.
func AllCaps() apicaps.CapSet { return pb.Caps.CapSet(pb.Caps.All()) }

// CapsWithout is every LLB cap but ids, like an older builder.
func CapsWithout(ids ...apicaps.CapID) apicaps.CapSet { return Without(&pb.Caps, ids...) }

// Without is every cap of list (LLB's, the gateway's) but ids.
func Without(list *apicaps.CapList, ids ...apicaps.CapID) apicaps.CapSet {
	var caps []*apicaps.PBCap
	for _, c := range list.All() {
		if !slices.Contains(ids, apicaps.CapID(c.ID)) {
			caps = append(caps, c)
		}
	}
	return list.CapSet(caps)
}
