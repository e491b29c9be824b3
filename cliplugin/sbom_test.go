package cliplugin

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/moby/buildkit/solver/pb"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/storepack/storepack/frontend"
	"github.com/storepack/storepack/internal/storetest"
)

// TestSBOMIsTheFrontendsSBOM: `sbom` of a manifest prints the document
// that the frontend attaches to the image it builds from the same inputs
// with an SBOM asked for, as BuildKit's exporter writes it.
func TestSBOMIsTheFrontendsSBOM(t *testing.T) {
	file, gw := frontendBuild(t, "LAYERS --max=3\nLINK /bin -> bin\n")
	gw.Opts["attest:sbom"] = ""
	// The graph, from a scan, has no NAR hashes: the frontend's helper
	// reads them in the builder, the plugin on the host.
	gw.Frontend, gw.WorkDir = "storepack:test", t.TempDir()
	res, err := frontend.Build(context.Background(), gw)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Attestations["linux/amd64"]); n != 1 {
		t.Fatalf("%d attestations for linux/amd64, want the SBOM", n)
	}
	want := attachedSBOM(t, gw.Solved())
	got := mustRun(t, "sbom", "--platform", "linux/amd64", file)
	if got != string(want)+"\n" {
		t.Errorf("sbom printed:\n%s\nthe frontend attaches:\n%s", got, want)
	}
	doc, err := spdxjson.Read(bytes.NewReader([]byte(got)))
	if err != nil {
		t.Fatalf("the SPDX library cannot read what sbom printed: %v", err)
	}
	if len(doc.Files) != 0 {
		t.Errorf("files not asked for, but listed: %+v", doc.Files)
	}

	// With the files: the frontend reads them in the builder, sbom on the
	// host, and the documents are the same.
	gw.Opts["attest:sbom"] = "files=true"
	solved := len(gw.Solved())
	if _, err := frontend.Build(context.Background(), gw); err != nil {
		t.Fatal(err)
	}
	withFiles := attachedSBOM(t, gw.Solved()[solved:])
	if got := mustRun(t, "sbom", "--sbom-files", "--platform", "linux/amd64", file); got != string(withFiles)+"\n" {
		t.Errorf("sbom --sbom-files printed:\n%s\nthe frontend attaches:\n%s", got, withFiles)
	}
	if filesDoc, err := spdxjson.Read(bytes.NewReader(withFiles)); err != nil || len(filesDoc.Files) == 0 {
		t.Errorf("files asked for, but none listed (%v):\n%s", err, withFiles)
	}

	// The CycloneDX document has the same store paths, with the same
	// package URLs.
	var bom cdx.BOM
	out := mustRun(t, "sbom", "--format", "cyclonedx-json", "--platform", "linux/amd64", file)
	if err := cdx.NewBOMDecoder(strings.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("the CycloneDX library cannot read what sbom printed: %v\n%s", err, out)
	}
	spdxPURLs, cdxPURLs := map[string]string{}, map[string]string{}
	for _, p := range doc.Packages {
		if p.PackageFileName != "" {
			spdxPURLs[p.PackageFileName] = p.PackageExternalReferences[0].Locator
		}
	}
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeLibrary {
			cdxPURLs[c.BOMRef] = c.PackageURL
		}
	}
	for _, p := range doc.Packages {
		if p.PackageFileName != "" && len(p.PackageChecksums) != 1 {
			t.Errorf("%s: checksums %+v, want its NAR hash", p.PackageFileName, p.PackageChecksums)
		}
	}
	if len(spdxPURLs) == 0 || !maps.Equal(spdxPURLs, cdxPURLs) {
		t.Errorf("CycloneDX components %v, SPDX packages %v", cdxPURLs, spdxPURLs)
	}
}

// attachedSBOM is the SBOM that defs attach, as BuildKit's exporter writes
// it: the content of the file the attestation's state makes.
func attachedSBOM(t *testing.T, defs []*pb.Definition) []byte {
	t.Helper()
	var attached []byte
	for _, def := range defs {
		for _, dt := range def.Def {
			var op pb.Op
			if err := op.UnmarshalVT(dt); err != nil {
				t.Fatal(err)
			}
			for _, a := range op.GetFile().GetActions() {
				if mk := a.GetMkfile(); mk != nil && mk.Path == "/sbom.spdx.json" {
					attached = mk.Data
				}
			}
		}
	}
	if attached == nil {
		t.Fatal("the frontend solved no SBOM file")
	}
	doc, err := frontend.AttachedSBOM(attached)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestSBOMErrors(t *testing.T) {
	f := storetest.New(t, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sbom", "--format", "table", f.CtxDir}, "--format=table: want spdx-json or cyclonedx-json"},
		{[]string{"sbom", "--format", "cyclonedx-json", "registry.example/app:1"}, "--format=cyclonedx-json: an image's attached SBOM is SPDX (spdx-json)"},
		{[]string{"sbom", "--build-arg", "A=1", "registry.example/app:1"}, "--build-arg applies to a manifest or ROOTs, not to an image (registry.example/app:1)"},
		{[]string{"sbom", "--sbom-files", "registry.example/app:1"}, "--sbom-files applies to a manifest or ROOTs, not to an image (registry.example/app:1)"},
		{[]string{"sbom", "--platform", "linux/amd64,linux/arm64", "registry.example/app:1"}, "a plan is of one platform"},
	} {
		mustFail(t, []string{tc.want}, tc.args...)
	}
}
