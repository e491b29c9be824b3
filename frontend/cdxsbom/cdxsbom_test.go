package cdxsbom

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/internal/sbomtest"
	"github.com/storepack/storepack/internal/version"
	"github.com/storepack/storepack/store"
)

// read decodes a document with the CycloneDX project's library.
func read(t *testing.T, data []byte) *cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("the CycloneDX library cannot read the document: %v\n%s", err, data)
	}
	return &bom
}

// component is what a test compares of a component.
type component struct {
	typ                 cdx.ComponentType
	name, version, purl string
	hash                string
	props               string
}

func components(t *testing.T, bom *cdx.BOM) map[string]component {
	t.Helper()
	got := map[string]component{}
	for _, c := range *bom.Components {
		g := component{typ: c.Type, name: c.Name, version: c.Version, purl: c.PackageURL}
		if c.Hashes != nil {
			for _, h := range *c.Hashes {
				g.hash += string(h.Algorithm) + ":" + h.Value
			}
		}
		if c.Properties != nil {
			var props []string
			for _, p := range *c.Properties {
				props = append(props, p.Name+"="+p.Value)
			}
			g.props = strings.Join(props, "; ")
		}
		if _, dup := got[c.BOMRef]; dup || c.BOMRef == "" {
			t.Errorf("bom-ref %q is empty or not unique", c.BOMRef)
		}
		got[c.BOMRef] = g
	}
	return got
}

// TestDocument: the image is the metadata's component; every store path is
// a library with its name, version, package URL, NAR hash and properties;
// references are dependencies; the image depends on its roots, its base
// image and its customisation layer.
func TestDocument(t *testing.T) {
	f := sbomtest.New(t, "/nix/store")
	img := f.Image(t, f.Infos)
	img.Base = &sbommodel.Base{Ref: "localhost:5000/library/busybox:1.36@sha256:" + strings.Repeat("e", 64), Layers: 2}
	img.Customisation = true
	bom := read(t, sbomtest.Bytes(t, JSON, img))
	v, _ := version.Get()

	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != cdx.SpecVersion1_6 || bom.Version != 1 {
		t.Errorf("header %q %v %d", bom.BOMFormat, bom.SpecVersion, bom.Version)
	}
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bom.SerialNumber) {
		t.Errorf("serial number %q", bom.SerialNumber)
	}
	m := bom.Metadata
	if m.Timestamp != "1970-01-01T00:00:01Z" || m.Tools == nil || m.Tools.Components == nil || len(*m.Tools.Components) != 1 ||
		(*m.Tools.Components)[0].Name != "storepack" || (*m.Tools.Components)[0].Version != v {
		t.Errorf("metadata %+v", m)
	}
	if m.Component == nil || m.Component.BOMRef != "image" || m.Component.Type != cdx.ComponentTypeContainer || m.Component.Name != "storepack image for linux/arm/v7: app-1.0" {
		t.Errorf("metadata component %+v", m.Component)
	}

	hashes := func(c byte) string { return strings.Repeat(string(c), 32) }
	layer := func(store, key string, at int) string {
		return fmt.Sprintf("storepack:store-layer=%s of 3 (%s); storepack:layers=%d of 6", store, key, at)
	}
	want := map[string]component{
		"base-image": {typ: cdx.ComponentTypeContainer, name: "localhost:5000/library/busybox", version: "sha256:" + strings.Repeat("e", 64),
			purl: "pkg:oci/busybox@sha256:" + strings.Repeat("e", 64) + "?repository_url=localhost:5000%2Flibrary%2Fbusybox&tag=1.36", props: "storepack:layers=1-2 of 6"},
		"customisation-layer": {typ: cdx.ComponentTypeData, name: "customisation layer", props: "storepack:layers=6 of 6"},
		f.App.String(): {typ: cdx.ComponentTypeLibrary, name: "app", version: "1.0", purl: "pkg:nix/app@1.0?outputhash=" + hashes('a'),
			props: "storepack:store-path=" + f.App.String() + "; storepack:nar-size=4096; " + layer("3", "app-1.0", 5)},
		f.Lib.String(): {typ: cdx.ComponentTypeLibrary, name: "libgreet", version: "2.3.1-dev", purl: "pkg:nix/libgreet@2.3.1-dev?outputhash=" + hashes('b'),
			hash: "SHA-256:" + strings.TrimPrefix(sbomtest.LibHash, "sha256:"), props: "storepack:store-path=" + f.Lib.String() + "; storepack:nar-size=1024; " + layer("2", "libgreet-2.3.1", 4)},
		f.Data.String(): {typ: cdx.ComponentTypeLibrary, name: "greeting-data", purl: "pkg:nix/greeting-data?outputhash=" + hashes('c'),
			props: "storepack:store-path=" + f.Data.String() + "; " + layer("1", "greeting-data", 3)},
		f.Odd.String(): {typ: cdx.ComponentTypeLibrary, name: "py_x+y", version: "0.1", purl: "pkg:nix/py_x%2By@0.1?outputhash=" + hashes('d'),
			props: "storepack:store-path=" + f.Odd.String() + "; storepack:nar-size=512; " + layer("2", "libgreet-2.3.1", 4)},
	}
	if got := components(t, bom); !reflect.DeepEqual(got, want) {
		t.Errorf("components:\n got %+v\nwant %+v", got, want)
	}

	deps := map[string][]string{}
	for _, d := range *bom.Dependencies {
		if _, dup := deps[d.Ref]; dup {
			t.Errorf("two dependency entries for %s", d.Ref)
		}
		deps[d.Ref] = []string{}
		if d.Dependencies != nil {
			deps[d.Ref] = *d.Dependencies
		}
	}
	wantDeps := map[string][]string{
		"image":         {"base-image", f.App.String(), "customisation-layer"},
		f.App.String():  {f.Lib.String(), f.Data.String()},
		f.Lib.String():  {f.Data.String(), f.Odd.String()},
		f.Data.String(): {},
		f.Odd.String():  {},
	}
	if !reflect.DeepEqual(deps, wantDeps) {
		t.Errorf("dependencies:\n got %q\nwant %q", deps, wantDeps)
	}
}

// TestReproducible: the same image gives the same bytes whatever the
// order of the graph's records and of the roots; the serial number follows
// the content; the timestamp is the epoch's.
func TestReproducible(t *testing.T) {
	sbomtest.CheckReproducible(t, JSON, sbomtest.Fields{
		ID:      func(t *testing.T, data []byte) string { return read(t, data).SerialNumber },
		Created: func(t *testing.T, data []byte) string { return read(t, data).Metadata.Timestamp },
	})
}

// TestFiles: listed, each store path's regular files are file components
// nested in its component, by name, named by their path in the image, with
// their SHA-1 and SHA-256 hashes; not asked for, no component has any.
func TestFiles(t *testing.T) {
	f := sbomtest.New(t, "/gnu/store")
	img := f.Image(t, f.Infos)
	for _, c := range *read(t, sbomtest.Bytes(t, JSON, img)).Components {
		if c.Components != nil {
			t.Errorf("files not asked for: %s has components %+v", c.BOMRef, *c.Components)
		}
	}
	img.Files = f.Files()
	got := map[string][]string{}
	for _, c := range *read(t, sbomtest.Bytes(t, JSON, img)).Components {
		if c.Type != cdx.ComponentTypeLibrary || c.Components == nil {
			continue
		}
		for _, file := range *c.Components {
			line := fmt.Sprintf("%s %s %s", file.Type, file.BOMRef, file.Name)
			for _, h := range *file.Hashes {
				line += " " + string(h.Algorithm) + ":" + h.Value
			}
			got[c.BOMRef] = append(got[c.BOMRef], line)
		}
	}
	file := func(name string, sum store.FileSum) string {
		return "file " + name + " " + name + " SHA-1:" + sum.SHA1 + " SHA-256:" + sum.SHA256
	}
	want := map[string][]string{
		f.App.String():  {file(f.App.String()+"/bin/app", img.Files[f.App][1]), file(f.App.String()+"/share/doc/README", img.Files[f.App][0])},
		f.Lib.String():  {file(f.Lib.String()+"/lib/libgreet.so", img.Files[f.Lib][0])},
		f.Data.String(): {file(f.Data.String(), img.Files[f.Data][0])}, // a store path that is a file
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("files:\n got %q\nwant %q", got, want)
	}
}

// TestMetadata: a metadata file's licence, homepage and description are
// the component's licence expression, website and description.
func TestMetadata(t *testing.T) {
	f := sbomtest.New(t, "/nix/store")
	img := f.Image(t, f.Infos)
	img.Metadata = f.Metadata(t)
	for _, c := range *read(t, sbomtest.Bytes(t, JSON, img)).Components {
		if c.Type != cdx.ComponentTypeLibrary {
			continue
		}
		var got, want [3]string
		if c.BOMRef == f.Lib.String() {
			want = [3]string{sbomtest.LibLicense, sbomtest.LibHomepage, sbomtest.LibDescription}
		}
		if c.Licenses != nil && len(*c.Licenses) == 1 {
			got[0] = (*c.Licenses)[0].Expression
		}
		if c.ExternalReferences != nil && len(*c.ExternalReferences) == 1 && (*c.ExternalReferences)[0].Type == cdx.ERTypeWebsite {
			got[1] = (*c.ExternalReferences)[0].URL
		}
		got[2] = c.Description
		if got != want {
			t.Errorf("%s: %q, want %q", c.BOMRef, got, want)
		}
	}
}

// TestSchema: the document is valid against the CycloneDX project's JSON
// schema of its version (from the cyclonedx-go module), formats asserted.
func TestSchema(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("where is the cyclonedx-go module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	// The schemas by their $id; the JSF one's file is named .schemax.json.
	for id, file := range map[string]string{
		"http://cyclonedx.org/schema/bom-1.6.schema.json":  "bom-1.6.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schemax.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	schema, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	f := sbomtest.New(t, "/gnu/store")
	img := f.Image(t, f.Infos)
	img.Base = &sbommodel.Base{Ref: "localhost:5000/library/busybox:1.36@sha256:" + strings.Repeat("e", 64), Layers: 2}
	img.Customisation = true
	img.Metadata = f.Metadata(t)
	img.Files = f.Files()
	data := sbomtest.Bytes(t, JSON, img)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("the document is not valid CycloneDX 1.6: %v\n%s", err, data)
	}
	// The schema tells: a component type it does not know is invalid.
	bad, err := jsonschema.UnmarshalJSON(bytes.NewReader(bytes.Replace(data, []byte(`"type":"library"`), []byte(`"type":"libary"`), 1)))
	if err != nil {
		t.Fatal(err)
	}
	if schema.Validate(bad) == nil {
		t.Error("the schema takes a component of type libary")
	}
}
