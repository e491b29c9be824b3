package manifest2llb_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/frontend/inputs"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

// TestConvertStoreDB: STORE --with-db puts the store's database in the
// customisation layer, at the store's standard place, registering exactly
// the closure with its references; Nix and Guix stores alike.
func TestConvertStoreDB(t *testing.T) {
	for storeName, dbDir := range map[string]string{"/nix/store": "/nix/var/nix/db", "/gnu/store": "/var/guix/db"} {
		t.Run(storeName, func(t *testing.T) {
			f := newFixture(t, storeName)
			img := f.mustConvert(t, "STORE --with-db "+storeName+"\nCLOSURE ./result-amd64\nGRAPH graph.json\n", manifest2llb.ConvertOpt{}).Images[0]
			files := map[string][]byte{}
			for _, fo := range llbtest.Marshal(t, img.State, llbtest.AllCaps()).File {
				for _, a := range fo.Actions {
					if m := a.GetMkfile(); m != nil {
						files[m.Path] = m.Data
					}
				}
			}
			db, ok := files[dbDir+"/db.sqlite"]
			if !ok || files[dbDir+"/schema"] == nil {
				t.Fatalf("files %v, want %s/db.sqlite and schema", slices.Collect(maps.Keys(files)), dbDir)
			}
			file := filepath.Join(t.TempDir(), "db.sqlite")
			if err := os.WriteFile(file, db, 0o644); err != nil {
				t.Fatal(err)
			}
			g, err := store.LoadDB(file)
			if err != nil {
				t.Fatal(err)
			}
			want := []store.Path{f.Data, f.Lib, f.Apps["amd64"]}
			slices.SortFunc(want, store.Path.Compare)
			if got := g.Paths(); !slices.Equal(got, want) {
				t.Errorf("registered %v, want the closure %v", got, want)
			}
			if refs := g.Referrers(f.Lib); !slices.Contains(refs, f.Apps["amd64"]) {
				t.Errorf("referrers of the library %v, want the app", refs)
			}
			if len(img.Config.History) != len(img.Plan.Layers)+1 {
				t.Errorf("history %+v: want the customisation layer last", img.Config.History)
			}
		})
	}
}

// hashesAsked records whether StoreState was asked for NAR hashes.
type hashesAsked struct {
	hostbuild.HostSource
	asked *bool
}

func (h hashesAsked) StoreState(ctx context.Context, c *inputs.PlatformClosure, plan layering.Plan, opt manifest2llb.StoreOptions) (manifest2llb.Store, error) {
	*h.asked = *h.asked || opt.NarHashes
	return h.HostSource.StoreState(ctx, c, plan, opt)
}

// TestConvertStoreDBPlanOnly: converting for the plan alone does not read
// the closure's NAR hashes, and plans the same layers.
func TestConvertStoreDBPlanOnly(t *testing.T) {
	f := newFixture(t, "/nix/store")
	src := "STORE --with-db /nix/store\nCLOSURE ./result-amd64\nGRAPH graph.json\n"
	plans := map[bool]layering.Plan{}
	for _, planOnly := range []bool{false, true} {
		asked := false
		img := f.mustConvertWith(t, src, nil, hashesAsked{f.source(), &asked}, manifest2llb.ConvertOpt{PlanOnly: planOnly}).Images[0]
		if asked == planOnly {
			t.Errorf("PlanOnly %v: NAR hashes asked for: %v", planOnly, asked)
		}
		plans[planOnly] = img.Plan
	}
	if !reflect.DeepEqual(plans[true], plans[false]) {
		t.Errorf("plan for the plan alone %+v, for the build %+v", plans[true], plans[false])
	}
}
