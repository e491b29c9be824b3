package manifest2llb_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/frontend/spdxsbom"
	"github.com/storepack/storepack/store"
)

// TestConvertSBOM: asked for, each platform's image comes with a document
// of exactly its plan's store paths, each at its layer above the base
// image's, and the base image and the customisation layer; a conversion
// for the plan alone gives the same bytes. Not asked for, there is none.
func TestConvertSBOM(t *testing.T) {
	f := newFixture(t, "/nix/store")
	var asked []string
	src := "FROM busybox\nCLOSURE ./result-amd64\nCLOSURE ./result-arm\nGRAPH graph.json\nLAYERS --strategy=per-path\nLINK /app -> bin\n"
	opt := manifest2llb.ConvertOpt{TargetPlatforms: []ocispecs.Platform{amd64, armV7}, ResolveImage: fakeBase(t, 2, &asked), SBOM: true}
	res := f.mustConvert(t, src, opt)
	opt.PlanOnly = true
	planOnly := f.mustConvert(t, src, opt)
	for i, img := range res.Images {
		data, err := spdxsbom.JSON(img.SBOM)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := spdxjson.Read(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v\n%s", img.Platform.Architecture, err, data)
		}
		want := map[string]string{
			"BaseImage":          "the base image: the image's layers 1 to 2 of 6",
			"CustomisationLayer": "the customisation layer: the image's layer 6 of 6",
		}
		for j, l := range img.Plan.Layers {
			for _, p := range l.Paths {
				want[p.String()] = fmt.Sprintf("store layer %d of 3 (%s): the image's layer %d of 6", j+1, l.Key, j+3)
			}
		}
		got := map[string]string{}
		for _, p := range doc.Packages {
			key := p.PackageFileName
			if key == "" {
				key = string(p.PackageSPDXIdentifier)
			}
			got[key] = p.Annotations[0].AnnotationComment
		}
		if len(img.Plan.Layers) != 3 || !maps.Equal(got, want) {
			t.Errorf("%s: packages by layer %q, want %q", img.Platform.Architecture, got, want)
		}
		if !reflect.DeepEqual(planOnly.Images[i].SBOM, img.SBOM) {
			t.Errorf("%s: the plan's conversion gives another document", img.Platform.Architecture)
		}
	}

	opt.SBOM = false
	if img := f.mustConvert(t, src, opt).Images[0]; img.SBOM != nil {
		t.Errorf("a document nobody asked for: %+v", img.SBOM)
	}
}

// TestConvertSBOMMetadata: the manifest's SBOM --metadata file is merged
// into every platform's document, by package name and by store path (a
// path of one platform's closure only is not outside); a file that is
// missing, does not parse or names a path outside every closure is an
// error naming the file and line. Without an SBOM asked for, the file is
// not read.
func TestConvertSBOMMetadata(t *testing.T) {
	f := newFixture(t, "/nix/store")
	meta := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(f.CtxDir, "meta.json"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := "CLOSURE ./result-amd64\nCLOSURE ./result-arm\nGRAPH graph.json\nSBOM --metadata=meta.json\n"
	opt := manifest2llb.ConvertOpt{TargetPlatforms: []ocispecs.Platform{amd64, armV7}, SBOM: true}
	meta(`{
  "libgreet": {"license": "MIT", "homepage": "https://greet.example/", "description": "greets"},
  "` + f.Lib.String() + `": {"description": "greets, built"},
  "` + f.Apps["arm"].String() + `": {"license": ["Apache-2.0", "MIT OR BSD-3-Clause"]}
}`)
	res := f.mustConvert(t, src, opt)
	for _, img := range res.Images {
		got := map[string]sbommodel.Info{}
		for _, p := range img.SBOM.Packages {
			got[p.Path.String()] = p.Info
		}
		want := map[string]sbommodel.Info{
			f.Data.String(): {},
			f.Lib.String():  {License: "MIT", Homepage: "https://greet.example/", Description: "greets, built"},
			f.Apps[img.Platform.Architecture].String(): {},
		}
		if img.Platform.Architecture == "arm" {
			want[f.Apps["arm"].String()] = sbommodel.Info{License: "Apache-2.0 AND (MIT OR BSD-3-Clause)"}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: %v, want %v", img.Platform.Architecture, got, want)
		}
	}

	for content, want := range map[string]string{
		"":                                "meta.json:1: want a JSON object",
		"{\n  \"a\": {\"license\": 1}\n}": `meta.json:2: a: "license" is not a string nor a list of strings`,
		"{\n\"a\": {},\n\"b\": {\"licence\": \"MIT\"}}":      `meta.json:3: b: unknown field "licence"`,
		"{\n\"a\": {}\n\"b\": {}}":                           "meta.json:3: invalid character '\"' after object key:value pair",
		"{\n\"a\": {},\n\n\"" + f.Extra.String() + "\": {}}": "meta.json:4: " + f.Extra.String() + " is outside the image's closure",
		"{\n\"/gnu/store/" + f.Extra.Base() + "\": {}}":      "meta.json:2: /gnu/store/" + f.Extra.Base() + " is not a store path of /nix/store",
	} {
		meta(content)
		if _, err := f.convert(t, src, opt); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", content, err, want)
		}
	}
	// Not read without an SBOM.
	opt.SBOM = false
	f.mustConvert(t, src, opt)

	if err := os.Remove(filepath.Join(f.CtxDir, "meta.json")); err != nil {
		t.Fatal(err)
	}
	opt.SBOM = true
	_, err := f.convert(t, src, opt)
	if err == nil || errorLine(err) != 4 || !strings.Contains(err.Error(), "SBOM --metadata=meta.json: ") {
		t.Errorf("a missing file: error %v at line %d, want one at line 4", err, errorLine(err))
	}
}

// TestConvertSBOMScanned: a closure found by scanning (no GRAPH) gets its
// NAR hashes read from the files, its references from the scan, and
// pkg:guix package URLs in /gnu/store; the plan's conversion states the
// same.
func TestConvertSBOMScanned(t *testing.T) {
	for _, storeName := range []string{"/nix/store", "/gnu/store"} {
		t.Run(storeName, func(t *testing.T) {
			f := newFixture(t, storeName)
			src := "STORE " + storeName + "\nCLOSURE ./result-amd64\n"
			opt := manifest2llb.ConvertOpt{SBOM: true}
			img := f.mustConvert(t, src, opt).Images[0]
			opt.PlanOnly = true
			if planned := f.mustConvert(t, src, opt).Images[0]; !reflect.DeepEqual(planned.SBOM, img.SBOM) {
				t.Errorf("the plan's conversion states\n%+v\nthe build's\n%+v", planned.SBOM, img.SBOM)
			}
			purlType := map[string]string{"/nix/store": "nix", "/gnu/store": "guix"}[storeName]
			refs := map[string][]string{}
			for _, p := range img.SBOM.Packages {
				sum, _, err := store.NarHash(context.Background(), os.DirFS(f.StoreDir), p.Path)
				if err != nil {
					t.Fatal(err)
				}
				if p.NarHash != sum || !strings.HasPrefix(p.PURL, "pkg:"+purlType+"/") {
					t.Errorf("%s: NAR hash %s (want %s), purl %s", p.Path, p.NarHash, sum, p.PURL)
				}
				for _, r := range p.References {
					refs[p.Path.Name] = append(refs[p.Path.Name], r.Name)
				}
			}
			if want := map[string][]string{"app-amd64": {"libgreet-1.0"}, "libgreet-1.0": {"data"}}; !reflect.DeepEqual(refs, want) {
				t.Errorf("references %v, want %v", refs, want)
			}
		})
	}
}
