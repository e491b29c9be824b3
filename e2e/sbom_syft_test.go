//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
)

// runSyft runs syft (built by the test bed) and returns its stdout. It
// stays off the network: no check for a newer syft, and a cache directory
// of the test's own.
func runSyft(t *testing.T, args ...string) []byte {
	t.Helper()
	env := []string{"SYFT_CHECK_FOR_APP_UPDATE=false", "SYFT_CACHE_DIR=" + t.TempDir()}
	c := boundedCommand(commandBound, env, "syft", append([]string{"--quiet"}, args...)...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		t.Fatalf("syft %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.Bytes()
}

// TestSBOMSyft checks storepack's SBOM against syft, a scanner nobody here
// wrote: syft scanning each platform's image of the four-platform manifest
// (an OCI archive built by `docker storepack build --sbom`) finds no Nix
// package that the image's SBOM lacks, with the same name and version,
// and finds some; `syft convert` of the SBOM to CycloneDX keeps every
// package.
func TestSBOMSyft(t *testing.T) {
	installPlugin(t)
	dir := multiarchClosures(t, "1")
	addNotes(t, dir)
	df := multiarchManifest(t, dir, "CLOSURE ./result-notes", "LINK /bin -> bin", `ENTRYPOINT ["/bin/hello"]`)
	oci := filepath.Join(t.TempDir(), "image.tar")
	mustPluginEnv(t, buildkitEnv, "build", "--sbom", "-f", df, "--platform", strings.Join(systemPlatforms(), ","), "-o", "type=oci,dest="+oci, dir)
	for platform, doc := range archiveSBOMs(t, oci, systemPlatforms()) {
		t.Run(platform, func(t *testing.T) {
			stated := map[string]string{} // store path → name and version
			sbom, err := spdxjson.Read(bytes.NewReader(doc))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range sbom.Packages {
				if p.PackageFileName != "" {
					stated[p.PackageFileName] = p.PackageName + " " + p.PackageVersion
				}
			}

			found := syftNixPackages(t, "oci-archive:"+oci, platform)
			if len(found) == 0 {
				t.Fatal("syft found no Nix package in the image")
			}
			var missing []string
			for path, nameVersion := range found {
				if stated[path] != nameVersion {
					missing = append(missing, path+" ("+nameVersion+"; the SBOM: "+stated[path]+")")
				}
			}
			if len(missing) > 0 {
				t.Errorf("syft found Nix packages that the SBOM lacks:\n%s", strings.Join(sortedCopy(missing), "\n"))
			}
			t.Logf("syft found %d Nix packages of the SBOM's %d: %v", len(found), len(stated), found)

			checkSyftConvert(t, doc)
		})
	}
}

// syftNixPackages scans an image for one platform with syft and returns
// the Nix packages it finds, by store path: name and version.
func syftNixPackages(t *testing.T, image, platform string) map[string]string {
	t.Helper()
	out := runSyft(t, "scan", "--platform", platform, "-o", "syft-json", image)
	var scan struct {
		Artifacts []struct {
			Name, Version, Type string
			Metadata            struct{ Path string }
		}
	}
	if err := json.Unmarshal(out, &scan); err != nil {
		t.Fatalf("syft's output: %v\n%s", err, out)
	}
	found := map[string]string{}
	for _, a := range scan.Artifacts {
		if a.Type == "nix" {
			found[a.Metadata.Path] = a.Name + " " + a.Version
		}
	}
	return found
}

// checkSyftConvert checks that `syft convert` of an SPDX document to
// CycloneDX keeps every package: as many components, with the same names.
// It asks for CycloneDX 1.6, the version storepack writes and the
// CycloneDX library reads (syft's default is newer).
func checkSyftConvert(t *testing.T, doc []byte) {
	t.Helper()
	sbom, err := spdxjson.Read(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range sbom.Packages {
		want = append(want, p.PackageName)
	}
	in := writeFile(t, t.TempDir(), "sbom.spdx.json", string(doc))
	out := runSyft(t, "convert", in, "-o", "cyclonedx-json@1.6")
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("syft convert's CycloneDX: %v", err)
	}
	var got []string
	if bom.Components != nil {
		for _, c := range *bom.Components {
			got = append(got, c.Name)
		}
	}
	if !slices.Equal(sortedCopy(got), sortedCopy(want)) {
		t.Errorf("syft convert to CycloneDX gave %d components %v, the SPDX document has %d packages %v", len(got), sortedCopy(got), len(want), sortedCopy(want))
	}
}
