package spdxsbom

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/internal/sbomtest"
	"github.com/storepack/storepack/internal/version"
	"github.com/storepack/storepack/store"
)

// read parses a document with the SPDX project's library and validates it
// there.
func read(t *testing.T, data []byte) *spdx.Document {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the SPDX library cannot read the document: %v\n%s", err, data)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatalf("the SPDX library finds the document invalid: %v\n%s", err, data)
	}
	return doc
}

func relationships(doc *spdx.Document) []string {
	var rels []string
	for _, r := range doc.Relationships {
		rels = append(rels, fmt.Sprintf("%s %s %s", r.RefA.ElementRefID, r.Relationship, r.RefB.ElementRefID))
	}
	return rels
}

// TestDocument: every store path is a package with its name, version, NAR
// hash and size, package URL and layer; references are DEPENDS_ON; the
// roots, the base image and the customisation layer are what the document
// describes.
func TestDocument(t *testing.T) {
	f := sbomtest.New(t, "/nix/store")
	img := f.Image(t, f.Infos)
	img.Base = &sbommodel.Base{Ref: "localhost:5000/library/busybox:1.36@sha256:" + strings.Repeat("e", 64), Layers: 2}
	img.Customisation = true
	data := sbomtest.Bytes(t, JSON, img)
	doc := read(t, data)
	v, _ := version.Get()

	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("header %q %q %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
	}
	if got, want := doc.DocumentName, "storepack image for linux/arm/v7: app-1.0"; got != want {
		t.Errorf("name %q, want %q", got, want)
	}
	if doc.CreationInfo.Created != "1970-01-01T00:00:01Z" || len(doc.CreationInfo.Creators) != 1 || doc.CreationInfo.Creators[0].Creator != "storepack-"+v {
		t.Errorf("creation info %+v", doc.CreationInfo)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(NamespacePrefix) + `[0-9a-f]{64}$`).MatchString(doc.DocumentNamespace) {
		t.Errorf("namespace %q", doc.DocumentNamespace)
	}

	type pkg struct{ id, name, version, file, purl, checksum, comment, layer string }
	var got []pkg
	for _, p := range doc.Packages {
		g := pkg{id: string(p.PackageSPDXIdentifier), name: p.PackageName, version: p.PackageVersion, file: p.PackageFileName, comment: p.PackageComment}
		for _, r := range p.PackageExternalReferences {
			if r.Category != "PACKAGE-MANAGER" || r.RefType != "purl" {
				t.Errorf("%s: external reference %+v", g.id, r)
			}
			g.purl = r.Locator
		}
		for _, c := range p.PackageChecksums {
			g.checksum = string(c.Algorithm) + ":" + c.Value
		}
		if len(p.Annotations) != 1 || p.Annotations[0].AnnotationType != "OTHER" || p.Annotations[0].AnnotationDate != "1970-01-01T00:00:01Z" || p.Annotations[0].Annotator.Annotator != "storepack-"+v {
			t.Errorf("%s: annotations %+v", g.id, p.Annotations)
		} else {
			g.layer = p.Annotations[0].AnnotationComment
		}
		if p.FilesAnalyzed || p.PackageDownloadLocation != "NOASSERTION" {
			t.Errorf("%s: filesAnalyzed %v, downloadLocation %q", g.id, p.FilesAnalyzed, p.PackageDownloadLocation)
		}
		got = append(got, g)
	}
	hashes := func(c byte) string { return strings.Repeat(string(c), 32) }
	oddID := "StorePath-" + hashes('d') + "-py-x-y-0.1-" + digest.FromString(hashes('d') + "-py_x+y-0.1").Encoded()[:16]
	want := []pkg{
		{id: "BaseImage", name: "localhost:5000/library/busybox", version: "sha256:" + strings.Repeat("e", 64),
			purl:    "pkg:oci/busybox@sha256:" + strings.Repeat("e", 64) + "?repository_url=localhost:5000%2Flibrary%2Fbusybox&tag=1.36",
			comment: "the base image (FROM); its contents are not listed", layer: "the base image: the image's layers 1 to 2 of 6"},
		{id: "CustomisationLayer", name: "customisation layer",
			comment: "the files of the manifest's LINK, DIR, COPY, RUN, ACCOUNT, STORE --with-db; they are not listed", layer: "the customisation layer: the image's layer 6 of 6"},
		{id: "StorePath-" + hashes('a') + "-app-1.0", name: "app", version: "1.0", file: f.App.String(),
			purl: "pkg:nix/app@1.0?outputhash=" + hashes('a'), comment: "NAR size 4096 bytes", layer: "store layer 3 of 3 (app-1.0): the image's layer 5 of 6"},
		{id: "StorePath-" + hashes('b') + "-libgreet-2.3.1-dev", name: "libgreet", version: "2.3.1-dev", file: f.Lib.String(),
			purl: "pkg:nix/libgreet@2.3.1-dev?outputhash=" + hashes('b'), checksum: "SHA256:" + strings.TrimPrefix(sbomtest.LibHash, "sha256:"),
			comment: "NAR size 1024 bytes", layer: "store layer 2 of 3 (libgreet-2.3.1): the image's layer 4 of 6"},
		{id: "StorePath-" + hashes('c') + "-greeting-data", name: "greeting-data", file: f.Data.String(),
			purl: "pkg:nix/greeting-data?outputhash=" + hashes('c'), layer: "store layer 1 of 3 (greeting-data): the image's layer 3 of 6"},
		{id: oddID, name: "py_x+y", version: "0.1", file: f.Odd.String(),
			purl: "pkg:nix/py_x%2By@0.1?outputhash=" + hashes('d'), comment: "NAR size 512 bytes", layer: "store layer 2 of 3 (libgreet-2.3.1): the image's layer 4 of 6"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packages:\n got %+v\nwant %+v", got, want)
	}

	id := func(p store.Path) string { return "StorePath-" + p.Base() }
	wantRels := []string{
		"DOCUMENT DESCRIBES BaseImage",
		"DOCUMENT DESCRIBES CustomisationLayer",
		"DOCUMENT DESCRIBES " + id(f.App),
		id(f.App) + " DEPENDS_ON " + id(f.Lib),
		id(f.App) + " DEPENDS_ON " + id(f.Data),
		id(f.Lib) + " DEPENDS_ON " + id(f.Data),
		id(f.Lib) + " DEPENDS_ON " + oddID,
	}
	if got := relationships(doc); !reflect.DeepEqual(got, wantRels) {
		t.Errorf("relationships:\n got %q\nwant %q", got, wantRels)
	}

	// What an SPDX identifier may hold, each once.
	checkIdentifiers(t, data, "packages", `^SPDXRef-[A-Za-z0-9.-]+$`)
}

// checkIdentifiers checks that the SPDX identifiers of the elements of a
// document's array match pattern, each once, and returns how many there
// are.
func checkIdentifiers(t *testing.T, data []byte, array, pattern string) int {
	t.Helper()
	var raw map[string]json.RawMessage
	var elements []struct{ SPDXID string }
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw[array], &elements); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range elements {
		if !regexp.MustCompile(pattern).MatchString(e.SPDXID) || seen[e.SPDXID] {
			t.Errorf("SPDX identifier %q is not one, or not unique", e.SPDXID)
		}
		seen[e.SPDXID] = true
	}
	return len(seen)
}

// TestLibraryKeepsEverything: what the SPDX library reads of a document
// and writes again is the same JSON, so it understands every field.
func TestLibraryKeepsEverything(t *testing.T) {
	f := sbomtest.New(t, "/nix/store")
	img := f.Image(t, f.Infos)
	img.Customisation = true
	img.Files = f.Files()
	data := sbomtest.Bytes(t, JSON, img)
	var again bytes.Buffer
	if err := spdxjson.Write(read(t, data), &again); err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("the SPDX library's copy differs:\n ours %s\nagain %s", data, again.Bytes())
	}
}

// TestFiles: listed, each store path's package CONTAINS its files, named
// by their path in the image, with their SHA-1 and SHA-256; it is analysed
// with the verification code SPDX 2.3 §7.9 defines (also for a package of
// no files); the files' identifiers are unique identifiers.
func TestFiles(t *testing.T) {
	f := sbomtest.New(t, "/gnu/store")
	img := f.Image(t, f.Infos)
	img.Files = f.Files()
	data := sbomtest.Bytes(t, JSON, img)
	doc := read(t, data)
	files := map[string]string{}
	for _, file := range doc.Files {
		var sums []string
		for _, c := range file.Checksums {
			sums = append(sums, string(c.Algorithm)+":"+c.Value)
		}
		files[string(file.FileSPDXIdentifier)] = file.FileName + " " + strings.Join(sums, " ")
	}
	packages := map[string]string{}
	got := map[string][]string{}
	for _, p := range doc.Packages {
		packages[string(p.PackageSPDXIdentifier)] = p.PackageFileName
		var sha1s []string
		for _, file := range img.Files[pathOf(t, p.PackageFileName)] {
			sha1s = append(sha1s, file.SHA1)
		}
		slices.Sort(sha1s)
		sum := sha1.Sum([]byte(strings.Join(sha1s, "")))
		if !p.FilesAnalyzed || p.PackageVerificationCode == nil || p.PackageVerificationCode.Value != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: filesAnalyzed %t, verification code %+v, want %x", p.PackageFileName, p.FilesAnalyzed, p.PackageVerificationCode, sum)
		}
		got[p.PackageFileName] = []string{}
	}
	for _, r := range doc.Relationships {
		if r.Relationship == "CONTAINS" {
			p := packages[string(r.RefA.ElementRefID)]
			got[p] = append(got[p], files[string(r.RefB.ElementRefID)])
			delete(files, string(r.RefB.ElementRefID))
		}
	}
	if len(files) > 0 {
		t.Errorf("files no package contains: %v", files)
	}
	sums := func(file store.FileSum) string { return " SHA1:" + file.SHA1 + " SHA256:" + file.SHA256 }
	want := map[string][]string{
		f.App.String(): {f.App.String() + "/bin/app" + sums(img.Files[f.App][1]), f.App.String() + "/share/doc/README" + sums(img.Files[f.App][0])},
		f.Lib.String(): {f.Lib.String() + "/lib/libgreet.so" + sums(img.Files[f.Lib][0])},
		// A store path that is a file.
		f.Data.String(): {f.Data.String() + sums(img.Files[f.Data][0])},
		f.Odd.String():  {},
	}
	for p := range got {
		slices.Sort(got[p])
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files:\n got %q\nwant %q", got, want)
	}

	if n := checkIdentifiers(t, data, "files", `^SPDXRef-File-[0-9a-f]{32}$`); n != 4 {
		t.Errorf("%d files, want 4", n)
	}
}

func pathOf(t *testing.T, s string) store.Path {
	t.Helper()
	p, err := store.ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReproducible: the same image gives the same bytes whatever the order
// of the graph's records and of the roots; the namespace follows the
// content; the creation time is the epoch's.
func TestReproducible(t *testing.T) {
	sbomtest.CheckReproducible(t, JSON, sbomtest.Fields{
		ID:      func(t *testing.T, data []byte) string { return read(t, data).DocumentNamespace },
		Created: func(t *testing.T, data []byte) string { return read(t, data).CreationInfo.Created },
	})
}

// TestGuix: a /gnu/store path's package URL is pkg:guix.
func TestGuix(t *testing.T) {
	f := sbomtest.New(t, "/gnu/store")
	doc := read(t, sbomtest.Bytes(t, JSON, f.Image(t, f.Infos)))
	for _, p := range doc.Packages {
		if p.PackageFileName == f.Lib.String() {
			if got, want := p.PackageExternalReferences[0].Locator, "pkg:guix/libgreet@2.3.1-dev?outputhash="+f.Lib.Hash; got != want {
				t.Errorf("purl %q, want %q", got, want)
			}
			return
		}
	}
	t.Errorf("no package for %s", f.Lib)
}

// TestIdentifiersDiffer: paths whose names differ only in characters an
// SPDX identifier cannot hold get identifiers of their own.
func TestIdentifiersDiffer(t *testing.T) {
	names := []string{"a-b", "a+b", "a_b", "a?b", "a=b"}
	seen := map[string]string{}
	for _, n := range names {
		id := string(storePathRef(sbomtest.Path(t, "/nix/store", '1', n)))
		if other, ok := seen[id]; ok {
			t.Errorf("%q and %q share identifier %q", n, other, id)
		}
		seen[id] = n
	}
}

// TestMetadata: a metadata file's licence, homepage and description are
// the package's declared licence, homepage and description.
func TestMetadata(t *testing.T) {
	f := sbomtest.New(t, "/nix/store")
	img := f.Image(t, f.Infos)
	img.Metadata = f.Metadata(t)
	for _, p := range read(t, sbomtest.Bytes(t, JSON, img)).Packages {
		want := [3]string{}
		if p.PackageFileName == f.Lib.String() {
			want = [3]string{sbomtest.LibLicense, sbomtest.LibHomepage, sbomtest.LibDescription}
		}
		if got := [3]string{p.PackageLicenseDeclared, p.PackageHomePage, p.PackageDescription}; got != want {
			t.Errorf("%s: %q, want %q", p.PackageFileName, got, want)
		}
	}
}
