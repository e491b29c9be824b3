package sbommodel_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/internal/sbomtest"
	"github.com/storepack/storepack/store"
)

// TestNew: packages by store path, each with its name and version, NAR
// hash and size, package URL, references (without itself) and layers
// counted above the base image's; the roots sorted and once each; the base
// image and the customisation layer at their layers.
func TestNew(t *testing.T) {
	f := sbomtest.New(t, "/gnu/store")
	img := f.Image(t, f.Infos)
	img.Roots = []store.Path{f.Lib, f.App, f.Lib}
	img.Base = &sbommodel.Base{Ref: "localhost:5000/base:1@sha256:" + strings.Repeat("e", 64), Layers: 2}
	img.Customisation = true
	doc := sbomtest.Document(t, img)

	if doc.Name != "storepack image for linux/arm/v7: app-1.0, libgreet-2.3.1-dev" || doc.Layers != 6 || doc.Created.Unix() != 1 {
		t.Errorf("name %q, %d layers, created %s", doc.Name, doc.Layers, doc.Created)
	}
	if !slices.Equal(doc.Roots, []store.Path{f.App, f.Lib}) {
		t.Errorf("roots %v", doc.Roots)
	}
	want := []sbommodel.Package{
		{Path: f.App, Name: "app", Version: "1.0", PURL: "pkg:guix/app@1.0?outputhash=" + f.App.Hash, NarSize: 4096,
			References: []store.Path{f.Lib, f.Data}, StoreLayer: 3, StoreLayers: 3, StoreLayerKey: "app-1.0", Layers: sbommodel.Layers{First: 5, Last: 5}},
		{Path: f.Lib, Name: "libgreet", Version: "2.3.1-dev", PURL: "pkg:guix/libgreet@2.3.1-dev?outputhash=" + f.Lib.Hash, NarHash: sbomtest.LibHash, NarSize: 1024,
			References: []store.Path{f.Data, f.Odd}, StoreLayer: 2, StoreLayers: 3, StoreLayerKey: "libgreet-2.3.1", Layers: sbommodel.Layers{First: 4, Last: 4}},
		{Path: f.Data, Name: "greeting-data", PURL: "pkg:guix/greeting-data?outputhash=" + f.Data.Hash,
			StoreLayer: 1, StoreLayers: 3, StoreLayerKey: "greeting-data", Layers: sbommodel.Layers{First: 3, Last: 3}},
		{Path: f.Odd, Name: "py_x+y", Version: "0.1", PURL: "pkg:guix/py_x%2By@0.1?outputhash=" + f.Odd.Hash, NarSize: 512,
			StoreLayer: 2, StoreLayers: 3, StoreLayerKey: "libgreet-2.3.1", Layers: sbommodel.Layers{First: 4, Last: 4}},
	}
	slices.SortFunc(want, func(a, b sbommodel.Package) int { return a.Path.Compare(b.Path) })
	if !reflect.DeepEqual(doc.Packages, want) {
		t.Errorf("packages:\n got %+v\nwant %+v", doc.Packages, want)
	}
	wantBase := &sbommodel.BasePackage{Ref: img.Base.Ref, Name: "localhost:5000/base", Version: "sha256:" + strings.Repeat("e", 64),
		PURL: "pkg:oci/base@sha256:" + strings.Repeat("e", 64) + "?repository_url=localhost:5000%2Fbase&tag=1", Layers: sbommodel.Layers{First: 1, Last: 2}}
	if !reflect.DeepEqual(doc.Base, wantBase) {
		t.Errorf("base %+v, want %+v", doc.Base, wantBase)
	}
	if doc.Customisation == nil || *doc.Customisation != (sbommodel.Layers{First: 6, Last: 6}) {
		t.Errorf("customisation layer %+v", doc.Customisation)
	}

	// The order of the graph's records does not matter.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10 {
		infos := slices.Clone(f.Infos)
		rng.Shuffle(len(infos), func(i, j int) { infos[i], infos[j] = infos[j], infos[i] })
		shuffled := img
		shuffled.Graph = f.Image(t, infos).Graph
		if again := sbomtest.Document(t, shuffled); !reflect.DeepEqual(again, doc) {
			t.Fatalf("another order of the graph states another document:\n%+v\n%+v", again, doc)
		}
	}
}

// TestFiles: files are listed only when asked for, each path's sorted by
// name; asked for, a path without files lists none, and a path whose files
// were not read is an error.
func TestFiles(t *testing.T) {
	f := sbomtest.New(t, "/nix/store")
	img := f.Image(t, f.Infos)
	doc := sbomtest.Document(t, img)
	for _, p := range doc.Packages {
		if doc.FilesListed || p.Files != nil {
			t.Errorf("not asked for: %s lists files %v", p.Path, p.Files)
		}
	}
	img.Files = f.Files()
	doc = sbomtest.Document(t, img)
	want := map[store.Path][]store.FileSum{
		f.App:  {sbomtest.FileSum("bin/app", "#!/bin/sh\necho hello\n"), sbomtest.FileSum("share/doc/README", "read me\n")},
		f.Lib:  {sbomtest.FileSum("lib/libgreet.so", "\x7fELF")},
		f.Data: {sbomtest.FileSum("", "hello\n")},
		f.Odd:  {},
	}
	got := map[store.Path][]store.FileSum{}
	for _, p := range doc.Packages {
		got[p.Path] = p.Files
	}
	if !doc.FilesListed || !reflect.DeepEqual(got, want) {
		t.Errorf("files listed %t:\n got %v\nwant %v", doc.FilesListed, got, want)
	}
	delete(img.Files, f.Lib)
	if _, err := sbommodel.New(img); err == nil || !strings.Contains(err.Error(), f.Lib.String()+": its files were not read") {
		t.Errorf("err = %v", err)
	}
}

// TestInconsistentImage: a closure path that no store layer holds, or a
// root outside the closure, is an error that names it.
func TestInconsistentImage(t *testing.T) {
	f := sbomtest.New(t, "/nix/store")
	img := f.Image(t, f.Infos)
	img.Plan.Layers = img.Plan.Layers[1:]
	if _, err := sbommodel.New(img); err == nil || !strings.Contains(err.Error(), f.Data.String()+" is in none of the image's store layers") {
		t.Errorf("err = %v", err)
	}
	img = f.Image(t, f.Infos)
	other := sbomtest.Path(t, "/nix/store", 'f', "other")
	img.Roots = append(img.Roots, other)
	if _, err := sbommodel.New(img); err == nil || !strings.Contains(err.Error(), "root "+other.String()+" is not in the closure") {
		t.Errorf("err = %v", err)
	}
}
