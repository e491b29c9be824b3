package imageverify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/storepack/storepack/cliplugin/layertar"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// Status is the outcome of a layer's check.
type Status int

const (
	Match      Status = iota + 1 // rebuilt with the image's diffID
	SameFiles                    // other tar bytes (another builder's writer), the same files
	Differs                      // other files, or other store paths than the inputs'
	Missing                      // a store path is not in the store on this host
	NotChecked                   // a base or customisation layer, not made from the store
)

func (s Status) String() string {
	switch s {
	case Match:
		return "match"
	case SameFiles:
		return "same files"
	case Differs:
		return "DIFFERS"
	case Missing:
		return "MISSING"
	case NotChecked:
		return "not checked"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// LayerResult is the check of one layer of an image.
type LayerResult struct {
	Index   int           // among the image's layers, from 0
	Kind    Kind          //
	DiffID  digest.Digest // the image's
	Rebuilt digest.Digest // the layer written again on the host; "" when not
	Paths   []store.Path  // a store layer's, as the image records them
	Status  Status
	// Culprits are the store paths that make the layer differ or miss;
	// all of Paths when the image's layer could not be read to tell them.
	Culprits []store.Path
	Note     string // why, in a few words
}

// Report is the check of every layer of an image, bottom first.
type Report struct {
	Layout Layout
	Layers []LayerResult
}

// Verified reports whether every store layer was made again as the image
// has it: the same diffID, or the same files.
func (r Report) Verified() bool {
	for _, l := range r.Layers {
		if l.Status != Match && l.Status != SameFiles && l.Status != NotChecked {
			return false
		}
	}
	return true
}

// Options say what a check rebuilds from.
type Options struct {
	// StoreRoot holds the store on the host (StoreRoot/nix/store/...);
	// "": the host's root.
	StoreRoot string
	// Against is what given inputs make (a manifest or ROOTs); nil: the
	// image's recorded store paths are checked.
	Against *Inputs
}

// Inputs are what given inputs make of an image.
type Inputs struct {
	// Plan must put the same store paths in each store layer.
	Plan layering.Plan
	// DiffIDs are its store layers' as the host wrote them, in plan
	// order; nil: written by Check.
	DiffIDs []digest.Digest
	// HostWritten says that the host writes the customisation layer, of
	// Customisation (none: no such layer); otherwise it is not checked.
	HostWritten   bool
	Customisation []layerllb.Entry
}

// Check writes each store layer of img again from the store on the host,
// with no cache, and compares it with img's. Base and customisation layers
// are not made from the store and are reported NotChecked. Errors are those
// that stop every check (an image storepack did not build, an unreadable
// store); a layer that differs is a result.
func Check(ctx context.Context, img Image, opt Options) (Report, error) {
	layout, err := LayoutOf(img)
	if err != nil {
		return Report{}, err
	}
	if in := opt.Against; in != nil {
		if len(in.Plan.Layers) != len(layout.Plan.Layers) {
			return Report{}, fmt.Errorf("the inputs make a plan of %d store layers, the image records %d: rebuild it with the options it was built with (--max-layers, --strategy)", len(in.Plan.Layers), len(layout.Plan.Layers))
		}
		custom := layout.Kinds[len(layout.Kinds)-1] == Customisation
		if in.HostWritten && custom != (len(in.Customisation) > 0) {
			return Report{}, fmt.Errorf("the inputs make %s, the image has %s", customisationLayer(len(in.Customisation) > 0), customisationLayer(custom))
		}
	}
	report := Report{Layout: layout, Layers: make([]LayerResult, len(layout.Kinds))}
	// Layers are written side by side, a few at a time: each waits on the
	// disk as much as on a core.
	eg, egCtx := errgroup.WithContext(ctx)
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for i, kind := range layout.Kinds {
		res := &report.Layers[i]
		*res = LayerResult{Index: i, Kind: kind, DiffID: img.DiffIDs[i], Status: NotChecked}
		switch kind {
		case Base:
			res.Note = "a base image's layer, not made from the store"
		case Customisation:
			res.Note = "LINK, DIR, COPY and RUN, not made from the store"
			if in := opt.Against; in != nil && in.HostWritten {
				eg.Go(func() error {
					if err := checkCustomisation(egCtx, img, res, in.Customisation, layout); err != nil {
						return fmt.Errorf("layer %d: %w", i+1, err)
					}
					return nil
				})
			}
		case Store:
			s := i - layout.FirstStore
			res.Paths = layout.Plan.Layers[s].Paths
			var want []store.Path
			var rebuilt digest.Digest
			if in := opt.Against; in != nil {
				want = in.Plan.Layers[s].Paths
				if in.DiffIDs != nil {
					rebuilt = in.DiffIDs[s]
				}
			}
			eg.Go(func() error {
				if err := checkStoreLayer(egCtx, img, res, want, rebuilt, layout.Epoch, opt.StoreRoot); err != nil {
					return fmt.Errorf("layer %d: %w", i+1, err)
				}
				return nil
			})
		}
	}
	if err := eg.Wait(); err != nil {
		return Report{}, err
	}
	return report, nil
}

// customisationLayer names a customisation layer, or none.
func customisationLayer(has bool) string {
	if has {
		return "a customisation layer (LINK, DIR, COPY)"
	}
	return "no customisation layer"
}

// checkCustomisation fills res for the customisation layer, written of the
// inputs' entries.
func checkCustomisation(ctx context.Context, img Image, res *LayerResult, entries []layerllb.Entry, layout Layout) error {
	var buf bytes.Buffer
	if err := layertar.WriteEntries(ctx, &buf, entries, layout.Epoch); err != nil {
		return err
	}
	res.Rebuilt = digest.FromBytes(buf.Bytes())
	switch {
	case res.Rebuilt == res.DiffID:
		res.Status, res.Note = Match, ""
		return nil
	case img.Layer == nil:
		res.Status, res.Note = Differs, "other bytes than the inputs' LINK, DIR and COPY; the image's layer cannot be read here to compare its files"
		return nil
	}
	r, err := img.Layer(ctx, res.Index)
	if err != nil {
		return fmt.Errorf("reading the image's layer: %w", err)
	}
	defer r.Close()
	theirs, err := Trees(r, layout.storeDir())
	if err != nil {
		return fmt.Errorf("reading the image's layer: %w", err)
	}
	ours, err := Trees(&buf, layout.storeDir())
	if err != nil {
		return err
	}
	if maps.Equal(theirs, ours) {
		res.Status, res.Note = SameFiles, "the same files, in another builder's tar bytes"
	} else {
		res.Status, res.Note = Differs, "other files than the inputs' LINK, DIR and COPY"
	}
	return nil
}

// checkStoreLayer fills res for a store layer: want, when not nil, are the
// store paths the inputs put in it, and rebuilt, when not "", its diffID as
// the host wrote it of them.
func checkStoreLayer(ctx context.Context, img Image, res *LayerResult, want []store.Path, rebuilt digest.Digest, epoch time.Time, storeRoot string) error {
	if want != nil {
		if extra := symmetricDifference(res.Paths, want); len(extra) > 0 {
			res.Status, res.Culprits = Differs, extra
			res.Note = "the inputs put other store paths in this layer"
			return nil
		}
	}
	storeDir := res.Paths[0].Dir
	hostDir := filepath.Join(storeRoot, filepath.FromSlash(storeDir))
	if storeRoot == "" {
		hostDir = filepath.FromSlash(storeDir)
	}
	for _, p := range res.Paths {
		if _, err := os.Lstat(filepath.Join(hostDir, p.Base())); errors.Is(err, fs.ErrNotExist) {
			res.Culprits = append(res.Culprits, p)
		} else if err != nil {
			return err
		}
	}
	if len(res.Culprits) > 0 {
		res.Status, res.Note = Missing, "not in the store at "+hostDir
		return nil
	}
	layer := layertar.Layer{StoreDir: storeDir, HostDir: hostDir, Paths: res.Paths, Epoch: epoch}
	if rebuilt == "" {
		var err error
		if rebuilt, _, err = layertar.Digest(ctx, layer); err != nil {
			return err
		}
	}
	res.Rebuilt = rebuilt
	if rebuilt == res.DiffID {
		res.Status = Match
		return nil
	}
	res.Status, res.Culprits = Differs, res.Paths
	if img.Layer == nil {
		res.Note = "other bytes; the image's layer cannot be read here to tell which store path differs"
		return nil
	}
	differing, err := differingPaths(ctx, img, res.Index, layer)
	if err != nil {
		return err
	}
	if len(differing) == 0 {
		res.Status, res.Culprits = SameFiles, nil
		res.Note = "the same files, in another builder's tar bytes"
		return nil
	}
	res.Culprits = differing
	res.Note = "other files than the store's"
	return nil
}

// differingPaths compares the files of img's layer i with those of the
// layer written from the store, store path by store path, and returns the
// paths whose files differ (all of them when the store directory's own
// entries differ).
func differingPaths(ctx context.Context, img Image, i int, layer layertar.Layer) ([]store.Path, error) {
	r, err := img.Layer(ctx, i)
	if err != nil {
		return nil, fmt.Errorf("reading the image's layer: %w", err)
	}
	defer r.Close()
	theirs, err := Trees(r, layer.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("reading the image's layer: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(layertar.Write(ctx, pw, layer)) }()
	ours, err := Trees(pr, layer.StoreDir)
	pr.CloseWithError(errors.New("read"))
	if err != nil {
		return nil, err
	}
	var differing []store.Path
	for _, p := range layer.Paths {
		if theirs[p.Base()] != ours[p.Base()] {
			differing = append(differing, p)
		}
	}
	if len(differing) == 0 && !maps.Equal(theirs, ours) {
		// Files outside the layer's store paths, or the store
		// directory's own entries: no one path to blame.
		return layer.Paths, nil
	}
	return differing, nil
}

// symmetricDifference lists the paths in one of a and b only, sorted.
func symmetricDifference(a, b []store.Path) []store.Path {
	count := map[store.Path]int{}
	for _, p := range a {
		count[p]++
	}
	for _, p := range b {
		count[p]--
	}
	var out []store.Path
	for p, n := range count {
		if n != 0 {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(x, y store.Path) int { return strings.Compare(x.String(), y.String()) })
	return out
}
