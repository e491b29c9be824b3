// Package spdxsbom writes the software bill of materials of an image the
// conversion makes: an SPDX 2.3 JSON document stated from the closure graph
// and the layer plan, so nothing scans the image. One package per store
// path (name and version as Nix's parseDrvName splits them, its NAR hash
// and size, a package URL, the store layer that holds it), DEPENDS_ON
// relationships from the references, and the image's other content (base
// image, customisation layer) as packages of their own.
//
// It is pure: the same image gives the same bytes (arrays sorted, SPDX
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

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/internal/version"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/store"
)

// Image is what a document describes: one platform's image.
type Image struct {
	Platform ocispecs.Platform
	Graph    *store.Graph // the closure
	Roots    []store.Path
	Plan     layering.Plan // the store layers, which hold every path of Graph
	// Base is the FROM image under the store layers; nil for none.
	Base *Base
	// Customisation says that the image ends with a customisation layer.
	Customisation bool
	Epoch         time.Time // the build's, the document's creation time
}

// Base is a FROM image as a document names it.
type Base struct {
	Ref    string // pinned to its digest where the builder gave one
	Layers int
}

// The SPDX identifiers of the image's content besides the store paths;
// a store path's starts with storePathID.
const (
	documentID      = "DOCUMENT"
	baseID          = "BaseImage"
	customisationID = "CustomisationLayer"
	storePathID     = "StorePath-"
)

// NamespacePrefix starts every document's namespace, which the document's
// content completes.
const NamespacePrefix = "https://storepack.dev/spdx/"

// noAssertion is SPDX's value for a field nothing is stated about.
const noAssertion = "NOASSERTION"

// JSON returns img's document as SPDX 2.3 JSON.
func JSON(img Image) ([]byte, error) {
	doc, err := document(img)
	if err != nil {
		return nil, err
	}
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

// document builds img's document, without its namespace.
func document(img Image) (*v2_3.Document, error) {
	v, _ := version.Get()
	tool := "storepack-" + v
	created := img.Epoch.UTC().Format(time.RFC3339)
	l := layout{img: img, tool: tool, created: created, layerOf: map[store.Path]int{}}
	for i, layer := range img.Plan.Layers {
		for _, p := range layer.Paths {
			l.layerOf[p] = i
		}
	}
	l.total = len(img.Plan.Layers)
	if img.Base != nil {
		l.total += img.Base.Layers
	}
	if img.Customisation {
		l.total++
	}

	doc := &v2_3.Document{
		SPDXVersion:    v2_3.Version,
		DataLicense:    v2_3.DataLicense,
		SPDXIdentifier: documentID,
		DocumentComment: "Stated by storepack from the store's reference graph and the image's layer plan, not found by scanning the image. " +
			"The SHA256 checksum of a store path's package is its NAR hash.",
		CreationInfo: &v2_3.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: tool}},
			Created:  created,
		},
	}
	roots := slices.Clone(img.Roots)
	slices.SortFunc(roots, store.Path.Compare)
	roots = slices.Compact(roots)
	doc.DocumentName = documentName(img.Platform, roots)
	for _, p := range roots {
		if _, ok := img.Graph.Info(p); !ok {
			return nil, fmt.Errorf("root %s is not in the closure", p)
		}
		doc.Relationships = append(doc.Relationships, describes(storePathRef(p)))
	}
	for _, p := range img.Graph.Paths() {
		pkg, err := l.storePath(p)
		if err != nil {
			return nil, err
		}
		doc.Packages = append(doc.Packages, pkg)
		info, _ := img.Graph.Info(p)
		for _, ref := range info.References {
			if ref != p {
				doc.Relationships = append(doc.Relationships, &v2_3.Relationship{
					RefA:         common.MakeDocElementID("", string(pkg.PackageSPDXIdentifier)),
					RefB:         common.MakeDocElementID("", string(storePathRef(ref))),
					Relationship: common.TypeRelationshipDependsOn,
				})
			}
		}
	}
	if img.Base != nil {
		doc.Packages = append(doc.Packages, l.base())
		doc.Relationships = append(doc.Relationships, describes(baseID))
	}
	if img.Customisation {
		doc.Packages = append(doc.Packages, l.customisation())
		doc.Relationships = append(doc.Relationships, describes(customisationID))
	}
	slices.SortFunc(doc.Packages, func(a, b *v2_3.Package) int {
		return strings.Compare(string(a.PackageSPDXIdentifier), string(b.PackageSPDXIdentifier))
	})
	slices.SortFunc(doc.Relationships, func(a, b *v2_3.Relationship) int {
		return strings.Compare(relationshipKey(a), relationshipKey(b))
	})
	return doc, nil
}

// documentName names the image by its platform and its roots.
func documentName(p ocispecs.Platform, roots []store.Path) string {
	names := make([]string, len(roots))
	for i, r := range roots {
		names[i] = r.Name
	}
	return fmt.Sprintf("storepack image for %s: %s", platforms.Format(p), strings.Join(names, ", "))
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
	img     Image
	tool    string
	created string
	layerOf map[store.Path]int // the store layer of each path
	total   int                // the image's layers
}

// storePath is the package of store path p.
func (l layout) storePath(p store.Path) (*v2_3.Package, error) {
	layer, ok := l.layerOf[p]
	if !ok {
		return nil, fmt.Errorf("%s is in none of the image's store layers", p)
	}
	info, _ := l.img.Graph.Info(p)
	name, version := store.SplitName(p.Name)
	if name == "" { // a name that starts with "-" and no letter
		name = p.Name
	}
	purlType := packageurl.TypeNix
	if p.Dir == "/gnu/store" {
		purlType = packageurl.TypeGuix
	}
	// As syft writes a Nix package: the hash part tells the store path
	// apart from others of the same name and version.
	purl := packageurl.NewPackageURL(purlType, "", name, version, packageurl.Qualifiers{{Key: "outputhash", Value: p.Hash}}, "")
	pkg := &v2_3.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   storePathRef(p),
		PackageVersion:          version,
		PackageFileName:         p.String(),
		PackageDownloadLocation: noAssertion,
		PackageExternalReferences: []*v2_3.PackageExternalReference{{
			Category: common.CategoryPackageManager,
			RefType:  common.TypePackageManagerPURL,
			Locator:  purl.ToString(),
		}},
	}
	if info.NarHash != "" {
		pkg.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: info.NarHash.Encoded()}}
	}
	if info.NarSize != 0 {
		pkg.PackageComment = fmt.Sprintf("NAR size %d bytes", info.NarSize)
	}
	first := l.baseLayers() + layer + 1
	pkg.Annotations = l.layers(fmt.Sprintf("store layer %d of %d (%s)", layer+1, len(l.img.Plan.Layers), l.img.Plan.Layers[layer].Key), first, first)
	return pkg, nil
}

// base is the package of the FROM image.
func (l layout) base() *v2_3.Package {
	b := l.img.Base
	pkg := &v2_3.Package{
		PackageName:             b.Ref,
		PackageSPDXIdentifier:   baseID,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
		PackageComment:          "the base image (FROM); its contents are not listed",
	}
	if ref, err := reference.ParseNormalizedNamed(b.Ref); err == nil {
		pkg.PackageName = ref.Name()
		if d, ok := ref.(reference.Digested); ok {
			pkg.PackageVersion = d.Digest().String()
			pkg.PackageExternalReferences = []*v2_3.PackageExternalReference{{
				Category: common.CategoryPackageManager,
				RefType:  common.TypePackageManagerPURL,
				Locator:  ociPURL(ref, d).ToString(),
			}}
		}
	}
	pkg.Annotations = l.layers("the base image", 1, b.Layers)
	return pkg
}

// ociPURL is the package URL of an image pinned to its digest, as the
// package URL specification writes one: its last name component, the
// digest as the version, the repository and tag as qualifiers.
func ociPURL(ref reference.Named, d reference.Digested) *packageurl.PackageURL {
	path := reference.Path(ref)
	q := packageurl.Qualifiers{{Key: "repository_url", Value: reference.Domain(ref) + "/" + path}}
	if t, ok := ref.(reference.Tagged); ok {
		q = append(q, packageurl.Qualifier{Key: "tag", Value: t.Tag()})
	}
	return packageurl.NewPackageURL(packageurl.TypeOCI, "", path[strings.LastIndexByte(path, '/')+1:], d.Digest().String(), q, "")
}

// customisation is the package of the customisation layer.
func (l layout) customisation() *v2_3.Package {
	return &v2_3.Package{
		PackageName:             "customisation layer",
		PackageSPDXIdentifier:   customisationID,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "OTHER",
		PackageComment:          "the files of the manifest's " + manifest.CustomisationInstructions + "; they are not listed",
		Annotations:             l.layers("the customisation layer", l.total, l.total),
	}
}

func (l layout) baseLayers() int {
	if l.img.Base == nil {
		return 0
	}
	return l.img.Base.Layers
}

// layers is the annotation that says which of the image's layers, first
// to last counting from 1 at the bottom, hold what (a store layer, the
// base image): positions in the config's rootfs.diff_ids and the
// manifest's layers.
func (l layout) layers(what string, first, last int) []v2_3.Annotation {
	where := fmt.Sprintf("layer %d", first)
	if last != first {
		where = fmt.Sprintf("layers %d to %d", first, last)
	}
	return []v2_3.Annotation{{
		Annotator:         common.Annotator{AnnotatorType: "Tool", Annotator: l.tool},
		AnnotationDate:    l.created,
		AnnotationType:    "OTHER",
		AnnotationComment: fmt.Sprintf("%s: the image's %s of %d", what, where, l.total),
	}}
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
