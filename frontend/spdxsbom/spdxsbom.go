// Package spdxsbom writes the software bill of materials of an image the
// conversion makes as an SPDX 2.3 JSON document: what sbommodel states
// from the closure graph and the layer plan, so nothing scans the image.
// One package per store path (name and version, NAR hash and size, package
// URL, an annotation naming the store layer that holds it, the declared
// licence, homepage and description of the metadata file), DEPENDS_ON
// relationships from the references, and the image's other content (base
// image, customisation layer) as packages of their own. When the files are
// listed, each store path's package CONTAINS its regular files (named by
// their path in the image, with SHA-1 and SHA-256 checksums) and has the
// package verification code of SPDX 2.3 §7.9.
//
// It is pure: the same document gives the same bytes (arrays sorted, SPDX
// identifiers from store paths, the namespace from the content, the
// creation time from the build's epoch).
package spdxsbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdx/v2/v2_3"
	"github.com/spdx/tools-golang/utils"

	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/sbommodel"
	"github.com/storepack/storepack/store"
)

// The SPDX identifiers of the image's content besides the store paths;
// a store path's starts with storePathID.
const (
	documentID      = "DOCUMENT"
	baseID          = "BaseImage"
	customisationID = "CustomisationLayer"
	storePathID     = "StorePath-"
	fileID          = "File-"
)

// NamespacePrefix starts every document's namespace, which the document's
// content completes.
const NamespacePrefix = "https://storepack.dev/spdx/"

// noAssertion is SPDX's value for a field nothing is stated about.
const noAssertion = "NOASSERTION"

// JSON returns m as SPDX 2.3 JSON.
func JSON(m *sbommodel.Document) ([]byte, error) {
	doc := document(m)
	// The namespace must be unique to the document: a digest of the rest
	// of it, so that the same image always gives the same one.
	body, err := encode(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	doc.DocumentNamespace = NamespacePrefix + hex.EncodeToString(sum[:])
	return encode(doc)
}

func encode(doc *v2_3.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.EscapeHTML(false)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// document is m's SPDX document, without its namespace.
func document(m *sbommodel.Document) *v2_3.Document {
	l := layout{doc: m, tool: "storepack-" + m.Version, created: m.Created.Format(time.RFC3339)}
	doc := &v2_3.Document{
		SPDXVersion:    v2_3.Version,
		DataLicense:    v2_3.DataLicense,
		SPDXIdentifier: documentID,
		DocumentName:   m.Name,
		DocumentComment: "Stated by storepack from the store's reference graph and the image's layer plan, not found by scanning the image. " +
			"The SHA256 checksum of a store path's package is its NAR hash.",
		CreationInfo: &v2_3.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: l.tool}},
			Created:  l.created,
		},
	}
	for _, p := range m.Roots {
		doc.Relationships = append(doc.Relationships, describes(storePathRef(p)))
	}
	for _, p := range m.Packages {
		pkg := l.storePath(p)
		doc.Packages = append(doc.Packages, pkg)
		if m.FilesListed {
			files := storePathFiles(p)
			code, _ := utils.GetVerificationCode(files, "") // fails for a nil file only
			pkg.FilesAnalyzed, pkg.PackageVerificationCode = true, &code
			for _, f := range files {
				doc.Files = append(doc.Files, f)
				doc.Relationships = append(doc.Relationships, &v2_3.Relationship{
					RefA:         common.MakeDocElementID("", string(pkg.PackageSPDXIdentifier)),
					RefB:         common.MakeDocElementID("", string(f.FileSPDXIdentifier)),
					Relationship: common.TypeRelationshipContains,
				})
			}
		}
		for _, ref := range p.References {
			doc.Relationships = append(doc.Relationships, &v2_3.Relationship{
				RefA:         common.MakeDocElementID("", string(pkg.PackageSPDXIdentifier)),
				RefB:         common.MakeDocElementID("", string(storePathRef(ref))),
				Relationship: common.TypeRelationshipDependsOn,
			})
		}
	}
	if m.Base != nil {
		doc.Packages = append(doc.Packages, l.base())
		doc.Relationships = append(doc.Relationships, describes(baseID))
	}
	if m.Customisation != nil {
		doc.Packages = append(doc.Packages, l.customisation())
		doc.Relationships = append(doc.Relationships, describes(customisationID))
	}
	slices.SortFunc(doc.Packages, func(a, b *v2_3.Package) int {
		return strings.Compare(string(a.PackageSPDXIdentifier), string(b.PackageSPDXIdentifier))
	})
	slices.SortFunc(doc.Files, func(a, b *v2_3.File) int { return strings.Compare(a.FileName, b.FileName) })
	slices.SortFunc(doc.Relationships, func(a, b *v2_3.Relationship) int {
		return strings.Compare(relationshipKey(a), relationshipKey(b))
	})
	return doc
}

func describes(id common.ElementID) *v2_3.Relationship {
	return &v2_3.Relationship{
		RefA:         common.MakeDocElementID("", documentID),
		RefB:         common.MakeDocElementID("", string(id)),
		Relationship: common.TypeRelationshipDescribe,
	}
}

func relationshipKey(r *v2_3.Relationship) string {
	return string(r.RefA.ElementRefID) + " " + r.Relationship + " " + string(r.RefB.ElementRefID)
}

// layout is what the packages of one document share.
type layout struct {
	doc     *sbommodel.Document
	tool    string // the creator and annotator
	created string
}

// storePath is the package of store path p.
func (l layout) storePath(p sbommodel.Package) *v2_3.Package {
	pkg := &v2_3.Package{
		PackageName:             p.Name,
		PackageSPDXIdentifier:   storePathRef(p.Path),
		PackageVersion:          p.Version,
		PackageFileName:         p.Path.String(),
		PackageDownloadLocation: noAssertion,
		PackageLicenseDeclared:  p.License,
		PackageHomePage:         p.Homepage,
		PackageDescription:      p.Description,
		PackageExternalReferences: []*v2_3.PackageExternalReference{{
			Category: common.CategoryPackageManager,
			RefType:  common.TypePackageManagerPURL,
			Locator:  p.PURL,
		}},
	}
	if p.NarHash != "" {
		pkg.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: p.NarHash.Encoded()}}
	}
	if p.NarSize != 0 {
		pkg.PackageComment = fmt.Sprintf("NAR size %d bytes", p.NarSize)
	}
	pkg.Annotations = l.layers(fmt.Sprintf("store layer %d of %d (%s)", p.StoreLayer, p.StoreLayers, p.StoreLayerKey), p.Layers)
	return pkg
}

// base is the package of the FROM image.
func (l layout) base() *v2_3.Package {
	b := l.doc.Base
	pkg := &v2_3.Package{
		PackageName:             b.Name,
		PackageSPDXIdentifier:   baseID,
		PackageVersion:          b.Version,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
		PackageComment:          "the base image (FROM); its contents are not listed",
		Annotations:             l.layers("the base image", b.Layers),
	}
	if b.PURL != "" {
		pkg.PackageExternalReferences = []*v2_3.PackageExternalReference{{
			Category: common.CategoryPackageManager,
			RefType:  common.TypePackageManagerPURL,
			Locator:  b.PURL,
		}}
	}
	return pkg
}

// customisation is the package of the customisation layer.
func (l layout) customisation() *v2_3.Package {
	return &v2_3.Package{
		PackageName:             "customisation layer",
		PackageSPDXIdentifier:   customisationID,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "OTHER",
		PackageComment:          "the files of the manifest's " + manifest.CustomisationInstructions + "; they are not listed",
		Annotations:             l.layers("the customisation layer", *l.doc.Customisation),
	}
}

// layers is the annotation that says which of the image's layers hold
// what (a store layer, the base image).
func (l layout) layers(what string, at sbommodel.Layers) []v2_3.Annotation {
	where := fmt.Sprintf("layer %d", at.First)
	if at.Last != at.First {
		where = fmt.Sprintf("layers %d to %d", at.First, at.Last)
	}
	return []v2_3.Annotation{{
		Annotator:         common.Annotator{AnnotatorType: "Tool", Annotator: l.tool},
		AnnotationDate:    l.created,
		AnnotationType:    "OTHER",
		AnnotationComment: fmt.Sprintf("%s: the image's %s of %d", what, where, l.doc.Layers),
	}}
}

// storePathFiles are the files of store path p's package, named by their
// path in the image, their identifiers a digest of it.
func storePathFiles(p sbommodel.Package) []*v2_3.File {
	files := make([]*v2_3.File, len(p.Files))
	for i, f := range p.Files {
		name := p.FileName(f)
		sum := sha256.Sum256([]byte(name))
		files[i] = &v2_3.File{
			FileName:           name,
			FileSPDXIdentifier: common.ElementID(fileID + hex.EncodeToString(sum[:16])),
			Checksums: []common.Checksum{
				{Algorithm: common.SHA1, Value: f.SHA1},
				{Algorithm: common.SHA256, Value: f.SHA256},
			},
			FileCopyrightText: noAssertion,
		}
	}
	return files
}

// storePathRef is store path p's SPDX identifier (without its "SPDXRef-"
// prefix): its base name, with the characters a store path name may hold
// and an identifier may not ("+", "_", "?", "=") as "-". A name that has
// some also gets a digest of its base name, so that no two paths of a
// graph share an identifier.
func storePathRef(p store.Path) common.ElementID {
	base := p.Base()
	id := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, base)
	if id != base {
		sum := sha256.Sum256([]byte(base))
		id += "-" + hex.EncodeToString(sum[:8])
	}
	return common.ElementID(storePathID + id)
}
