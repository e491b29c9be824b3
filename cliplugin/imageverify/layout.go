// Package imageverify checks an image storepack built against the store it
// came from: it writes each store layer again on the host from the store
// paths the image records, with no cache, and compares its diffID with the
// image's; where the bytes differ it compares the files the two layers hold,
// store path by store path, to name the paths that differ.
package imageverify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
)

// Image is an image to verify, as read from an engine, a registry or an
// archive.
type Image struct {
	Name    string // for errors
	Labels  map[string]string
	Created *time.Time
	DiffIDs []digest.Digest
	// History is the config's, oldest first. An engine's history API does
	// not tell empty entries: there none is marked empty.
	History []ocispecs.History
	// Layer opens the uncompressed tar of the image's layer i, read only
	// where a rebuilt layer's diffID differs; nil when the layers cannot
	// be read.
	Layer func(ctx context.Context, i int) (io.ReadCloser, error)
}

// Kind is what made a layer of an image.
type Kind int

const (
	Base          Kind = iota + 1 // a FROM image's
	Store                         // a store layer of the recorded plan
	Customisation                 // LINK, DIR, COPY and RUN
)

func (k Kind) String() string {
	switch k {
	case Base:
		return "base"
	case Store:
		return "store"
	case Customisation:
		return "customisation"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Layout is what each layer of an image is.
type Layout struct {
	Plan       layering.Plan
	Kinds      []Kind // one per diffID
	FirstStore int    // index of the first store layer among the diffIDs
	Epoch      time.Time
}

// ErrNotStorepack says an image records no plan of storepack's.
var ErrNotStorepack = errors.New("was not built by storepack: it records no layer plan (label " + layerllb.PlanLabel + ")")

// LayoutOf finds the layers of img: its store layers are the ones the
// entries at the end of its history say are its recorded plan's, followed
// by a customisation layer or none, as storepack writes them; the layers
// below are a base image's.
func LayoutOf(img Image) (Layout, error) {
	plan, err := layerllb.RecordedPlan(img.Labels)
	if errors.Is(err, layerllb.ErrNoRecordedPlan) {
		return Layout{}, ErrNotStorepack
	}
	if err != nil {
		return Layout{}, err
	}
	if err := oneStore(*plan); err != nil {
		return Layout{}, fmt.Errorf("label %s: %w", layerllb.PlanLabel, err)
	}
	var made []ocispecs.History // the entries that made a layer
	for _, h := range img.History {
		if !h.EmptyLayer {
			made = append(made, h)
		}
	}
	custom := len(made) > 0 && made[len(made)-1].CreatedBy == layerllb.CustomisationCreatedBy
	end := len(made)
	if custom {
		end--
	}
	start := end - len(plan.Layers)
	top := len(plan.Layers)
	if custom {
		top++
	}
	if start < 0 || len(img.DiffIDs) < top {
		return Layout{}, fmt.Errorf("its history or its layers are fewer than the %d store layers of its recorded plan: was it changed after storepack built it?", len(plan.Layers))
	}
	for i := range plan.Layers {
		if want := layerllb.StoreLayerCreatedBy(*plan, i); made[start+i].CreatedBy != want {
			return Layout{}, fmt.Errorf("layer %d of its history is %q, where its recorded plan has %q: was it changed after storepack built it?", len(img.DiffIDs)-top+i+1, made[start+i].CreatedBy, want)
		}
	}
	l := Layout{Plan: *plan, Kinds: make([]Kind, len(img.DiffIDs)), FirstStore: len(img.DiffIDs) - top}
	for i := range l.Kinds {
		switch {
		case i < l.FirstStore:
			l.Kinds[i] = Base
		case i < l.FirstStore+len(plan.Layers):
			l.Kinds[i] = Store
		default:
			l.Kinds[i] = Customisation
		}
	}
	// Every entry storepack writes has the build's time, the image too.
	switch {
	case len(plan.Layers) > 0 && made[start].Created != nil:
		l.Epoch = *made[start].Created
	case img.Created != nil:
		l.Epoch = *img.Created
	default:
		return Layout{}, errors.New("it records no time of its build (created), which its files have")
	}
	return l, nil
}

// oneStore checks that every layer of plan holds store paths, all of one
// store directory, as storepack records them.
func oneStore(plan layering.Plan) error {
	for i, l := range plan.Layers {
		if len(l.Paths) == 0 {
			return fmt.Errorf("layer %d lists no store path", i+1)
		}
		for _, p := range l.Paths {
			if p.Dir != plan.Layers[0].Paths[0].Dir {
				return fmt.Errorf("layer %d: %s is not in %s, the store of the plan's other paths", i+1, p, plan.Layers[0].Paths[0].Dir)
			}
		}
	}
	return nil
}

// storeDir is the store directory of the plan's paths; "" for no store
// layer.
func (l Layout) storeDir() string {
	if len(l.Plan.Layers) == 0 {
		return ""
	}
	return l.Plan.Layers[0].Paths[0].Dir
}
