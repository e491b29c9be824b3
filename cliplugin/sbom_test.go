package cliplugin

import (
	"bytes"
	"context"
	"testing"

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
	res, err := frontend.Build(context.Background(), gw)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Attestations["linux/amd64"]); n != 1 {
		t.Fatalf("%d attestations for linux/amd64, want the SBOM", n)
	}
	// The document is the content of the file the attestation's state
	// makes.
	var attached []byte
	for _, def := range gw.Solved() {
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
	want, err := frontend.AttachedSBOM(attached)
	if err != nil {
		t.Fatal(err)
	}
	got := mustRun(t, "sbom", "--platform", "linux/amd64", file)
	if got != string(want)+"\n" {
		t.Errorf("sbom printed:\n%s\nthe frontend attaches:\n%s", got, want)
	}
	if _, err := spdxjson.Read(bytes.NewReader([]byte(got))); err != nil {
		t.Errorf("the SPDX library cannot read what sbom printed: %v", err)
	}
}

func TestSBOMErrors(t *testing.T) {
	f := storetest.New(t, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sbom", "--format", "table", f.CtxDir}, "--format=table: want spdx-json"},
		{[]string{"sbom", "--build-arg", "A=1", "registry.example/app:1"}, "--build-arg applies to a manifest or ROOTs, not to an image (registry.example/app:1)"},
		{[]string{"sbom", "--platform", "linux/amd64,linux/arm64", "registry.example/app:1"}, "a plan is of one platform"},
	} {
		mustFail(t, []string{tc.want}, tc.args...)
	}
}
