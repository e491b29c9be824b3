// Package cdxsbom writes the software bill of materials of an image as a
// CycloneDX 1.6 JSON document, through the CycloneDX project's library:
// what sbommodel states from the closure graph and the layer plan. The
// image is the metadata's component; each store path is a library
// component (name and version, package URL, its NAR hash as its SHA-256
// hash, properties for its store path, NAR size and layers, the licence,
// website and description of the metadata file); references are
// dependencies; the base image and the customisation layer are components
// of their own, which the image depends on with its roots. When the files
// are listed, each store path's regular files are file components nested
// in its component, named by their path in the image, with their SHA-1
// and SHA-256 hashes.
//
// It is pure: the same document gives the same bytes (components by store
// path, dependencies sorted, the serial number a digest of the content,
// the timestamp the build's epoch).
package cdxsbom

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/store"
)

// SpecVersion is the CycloneDX version of the documents.
const SpecVersion = cdx.SpecVersion1_6

// The properties of components, in storepack's namespace.
const (
	PropertyStorePath  = "storepack:store-path"
	PropertyNarSize    = "storepack:nar-size"
	PropertyStoreLayer = "storepack:store-layer" // "3 of 4 (KEY)"
	PropertyLayers     = "storepack:layers"      // "5 of 7", "1-2 of 7": the image's layers
)

// The bom-refs of the image's content besides the store paths, whose
// bom-ref is the store path.
const (
	imageRef         = "image"
	baseRef          = "base-image"
	customisationRef = "customisation-layer"
)

// serialSpace is the UUID namespace of the documents' serial numbers:
// storepack's URL for them, as RFC 9562 names a namespace by a URL.
var serialSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://storepack.dev/cyclonedx/"))

// JSON returns m as CycloneDX JSON.
func JSON(m *sbommodel.Document) ([]byte, error) {
	bom := document(m)
	// The serial number must be unique to the document: a name-based
	// UUID of the rest of it, so that the same image always gives the
	// same one.
	body, err := encode(bom)
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = uuid.NewSHA1(serialSpace, body).URN()
	return encode(bom)
}

func encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetEscapeHTML(false).EncodeVersion(bom, SpecVersion); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// document is m's BOM, without its serial number.
func document(m *sbommodel.Document) *cdx.BOM {
	bom := cdx.NewBOM()
	layers := func(at sbommodel.Layers) cdx.Property {
		v := fmt.Sprintf("%d of %d", at.First, m.Layers)
		if at.Last != at.First {
			v = fmt.Sprintf("%d-%d of %d", at.First, at.Last, m.Layers)
		}
		return cdx.Property{Name: PropertyLayers, Value: v}
	}
	bom.Metadata = &cdx.Metadata{
		Timestamp: m.Created.Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "storepack", Version: m.Version,
		}}},
		Component: &cdx.Component{
			BOMRef:      imageRef,
			Type:        cdx.ComponentTypeContainer,
			Name:        m.Name,
			Description: "Stated by storepack from the store's reference graph and the image's layer plan, not found by scanning the image.",
		},
	}
	var components []cdx.Component
	imageDeps := []string{}
	if m.Base != nil {
		b := m.Base
		components = append(components, cdx.Component{
			BOMRef:      baseRef,
			Type:        cdx.ComponentTypeContainer,
			Name:        b.Name,
			Version:     b.Version,
			PackageURL:  b.PURL,
			Description: "the base image (FROM); its contents are not listed",
			Properties:  &[]cdx.Property{layers(b.Layers)},
		})
		imageDeps = append(imageDeps, baseRef)
	}
	for _, p := range m.Roots {
		imageDeps = append(imageDeps, p.String())
	}
	if m.Customisation != nil {
		components = append(components, cdx.Component{
			BOMRef:      customisationRef,
			Type:        cdx.ComponentTypeData,
			Name:        "customisation layer",
			Description: "the files of the manifest's " + manifest.CustomisationInstructions + "; they are not listed",
			Properties:  &[]cdx.Property{layers(*m.Customisation)},
		})
		imageDeps = append(imageDeps, customisationRef)
	}
	deps := []cdx.Dependency{{Ref: imageRef, Dependencies: &imageDeps}}
	for _, p := range m.Packages {
		props := []cdx.Property{{Name: PropertyStorePath, Value: p.Path.String()}}
		if p.NarSize != 0 {
			props = append(props, cdx.Property{Name: PropertyNarSize, Value: strconv.FormatUint(p.NarSize, 10)})
		}
		props = append(props,
			cdx.Property{Name: PropertyStoreLayer, Value: fmt.Sprintf("%d of %d (%s)", p.StoreLayer, p.StoreLayers, p.StoreLayerKey)},
			layers(p.Layers))
		c := cdx.Component{
			BOMRef:     p.Path.String(),
			Type:       cdx.ComponentTypeLibrary,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: p.PURL,
			Properties: &props,
		}
		if p.License != "" {
			c.Licenses = &cdx.Licenses{{Expression: p.License}}
		}
		if p.Homepage != "" {
			c.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeWebsite, URL: p.Homepage}}
		}
		c.Description = p.Description
		if p.NarHash != "" {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: p.NarHash.Encoded()}}
		}
		if len(p.Files) > 0 {
			c.Components = files(p)
		}
		components = append(components, c)
		deps = append(deps, cdx.Dependency{Ref: p.Path.String(), Dependencies: refs(p.References)})
	}
	bom.Components = &components
	bom.Dependencies = &deps
	return bom
}

// files are the file components of store path p's files, named by their
// path in the image, which is their bom-ref.
func files(p sbommodel.Package) *[]cdx.Component {
	out := make([]cdx.Component, len(p.Files))
	for i, f := range p.Files {
		name := p.FileName(f)
		out[i] = cdx.Component{
			BOMRef: name,
			Type:   cdx.ComponentTypeFile,
			Name:   name,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA1, Value: f.SHA1}, {Algorithm: cdx.HashAlgoSHA256, Value: f.SHA256}},
		}
	}
	return &out
}

// refs are the bom-refs of store paths, in their order; nil for none.
func refs(paths []store.Path) *[]string {
	if len(paths) == 0 {
		return nil
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p.String()
	}
	return &out
}
