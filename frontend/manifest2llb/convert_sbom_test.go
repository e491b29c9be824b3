package manifest2llb_test

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/frontend/spdxsbom"
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
