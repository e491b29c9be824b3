// Package sbomtest is a small image for tests of the SBOM writers: an
// application, its library, data it references by path, and a path whose
// name holds characters SPDX identifiers cannot, over three store layers.
package sbomtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

// LibHash is the library's NAR hash, the only one the graph has.
const LibHash = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// Fixture is the image's parts; Infos in the order given.
type Fixture struct {
	App, Lib, Data, Odd store.Path
	Infos               []store.Info
	Plan                layering.Plan
}

// Path is the store path of name in store directory dir whose hash part
// is hash repeated.
func Path(t testing.TB, dir string, hash byte, name string) store.Path {
	t.Helper()
	p, err := store.ParsePath(dir + "/" + strings.Repeat(string(hash), 32) + "-" + name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// New is the fixture in store directory dir.
func New(t testing.TB, dir string) Fixture {
	t.Helper()
	f := Fixture{
		App:  Path(t, dir, 'a', "app-1.0"),
		Lib:  Path(t, dir, 'b', "libgreet-2.3.1-dev"),
		Data: Path(t, dir, 'c', "greeting-data"),
		Odd:  Path(t, dir, 'd', "py_x+y-0.1"),
	}
	f.Infos = []store.Info{
		{Path: f.App, References: []store.Path{f.App, f.Lib, f.Data}, NarSize: 4096},
		{Path: f.Lib, References: []store.Path{f.Data, f.Odd}, NarSize: 1024, NarHash: LibHash},
		{Path: f.Data, NarSize: 0},
		{Path: f.Odd, NarSize: 512},
	}
	f.Plan = layering.Plan{Strategy: "storepack", Layers: []layering.Layer{
		{Key: "greeting-data", Paths: []store.Path{f.Data}},
		{Key: "libgreet-2.3.1", Paths: []store.Path{f.Lib, f.Odd}},
		{Key: "app-1.0", Paths: []store.Path{f.App}},
	}}
	return f
}

// Image is the image of the graph of infos for linux/arm/v7, rooted at
// the application, at epoch 1.
func (f Fixture) Image(t testing.TB, infos []store.Info) sbommodel.Image {
	t.Helper()
	g, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	return sbommodel.Image{
		Platform: ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"},
		Graph:    g,
		Roots:    []store.Path{f.App},
		Plan:     f.Plan,
		Epoch:    time.Unix(1, 0),
	}
}

// Document is what img's documents state.
func Document(t testing.TB, img sbommodel.Image) *sbommodel.Document {
	t.Helper()
	doc, err := sbommodel.New(img)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// Writer writes a document in a format.
type Writer func(*sbommodel.Document) ([]byte, error)

// Bytes is img's document as write writes it.
func Bytes(t testing.TB, write Writer, img sbommodel.Image) []byte {
	t.Helper()
	data, err := write(Document(t, img))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Fields reads what a format says of a document's identity (a namespace,
// a serial number) and of its creation time.
type Fields struct {
	ID, Created func(*testing.T, []byte) string
}

// CheckReproducible checks that write gives the same bytes for the
// fixture's image, its files listed, whatever the order of the graph's
// records, of the roots and of the files, that another closure has another identity, and that the creation
// time is the epoch's, in UTC.
func CheckReproducible(t *testing.T, write Writer, read Fields) {
	t.Helper()
	f := New(t, "/nix/store")
	img := f.Image(t, f.Infos)
	img.Roots = []store.Path{f.App, f.Lib}
	img.Files = f.Files()
	first := Bytes(t, write, img)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10 {
		infos := slices.Clone(f.Infos)
		rng.Shuffle(len(infos), func(i, j int) { infos[i], infos[j] = infos[j], infos[i] })
		shuffled := f.Image(t, infos)
		shuffled.Roots = []store.Path{f.Lib, f.App, f.Lib}
		shuffled.Files = f.Files()
		for _, files := range shuffled.Files {
			rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		}
		if again := Bytes(t, write, shuffled); !bytes.Equal(again, first) {
			t.Fatalf("another order gives other bytes:\n%s\n%s", first, again)
		}
	}
	if withoutFiles := Bytes(t, write, f.Image(t, f.Infos)); read.ID(t, withoutFiles) == read.ID(t, first) {
		t.Errorf("the document without files has the same identity %s", read.ID(t, first))
	}
	changed := slices.Clone(f.Infos)
	changed[3].NarSize++
	if read.ID(t, first) == read.ID(t, Bytes(t, write, f.Image(t, changed))) {
		t.Errorf("another closure has the same identity %s", read.ID(t, first))
	}
	img.Epoch = time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 2*3600))
	if got := read.Created(t, Bytes(t, write, img)); got != "2024-05-06T05:08:09Z" {
		t.Errorf("created %q", got)
	}
}

// The library's metadata, as Metadata gives it.
const (
	LibLicense     = "MIT OR Apache-2.0"
	LibHomepage    = "https://greet.example/"
	LibDescription = "Greets <you> & yours"
)

// FileSum is a file of a store path named name with contents.
func FileSum(name, contents string) store.FileSum {
	s1, s256 := sha1.Sum([]byte(contents)), sha256.Sum256([]byte(contents))
	return store.FileSum{Name: name, SHA1: hex.EncodeToString(s1[:]), SHA256: hex.EncodeToString(s256[:])}
}

// Files are the regular files of the fixture's paths, some out of order:
// the application's and library's in directories, the data a file itself
// (its name ""), and none in Odd (directories and symlinks only).
func (f Fixture) Files() map[store.Path][]store.FileSum {
	return map[store.Path][]store.FileSum{
		f.App:  {FileSum("share/doc/README", "read me\n"), FileSum("bin/app", "#!/bin/sh\necho hello\n")},
		f.Lib:  {FileSum("lib/libgreet.so", "\x7fELF")},
		f.Data: {FileSum("", "hello\n")},
		f.Odd:  {},
	}
}

// Metadata is a metadata file's for the library (by name; HTML's
// characters in its description).
func (f Fixture) Metadata(t testing.TB) *sbommodel.Metadata {
	t.Helper()
	m, err := sbommodel.ParseMetadata("meta.json", []byte(`{"libgreet": {"license": "`+LibLicense+`", "homepage": "`+LibHomepage+`", "description": "`+LibDescription+`"}}`), f.Lib.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
