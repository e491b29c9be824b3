// Package sbommodel states what an image's software bill of materials
// says, in no format: built once from the closure graph and the layer
// plan, it is what the SPDX (frontend/spdxsbom) and CycloneDX
// (frontend/cdxsbom) documents write. One package per store path (name and
// version as Nix's parseDrvName splits them, its NAR hash and size, a
// package URL, the store layer that holds it, its references, and what a
// metadata file says of it, and its files with their digests when they
// are asked for), the roots, and the image's other content (base image,
// customisation layer).
//
// It is pure and ordered: packages by store path, references sorted, roots
// sorted and unique, so that the documents are the same bytes for the same
// image.
package sbommodel

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/package-url/packageurl-go"

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
	Epoch         time.Time // the build's, the documents' creation time
	// Metadata says what the store cannot of its packages; nil: nothing.
	Metadata *Metadata
	// NarHashes are the NAR hashes of paths whose Graph has none, read
	// from their files.
	NarHashes map[store.Path]digest.Digest
	// Files are the regular files of every path of Graph, read from them,
	// when the files are asked for; nil: they are not listed.
	Files map[store.Path][]store.FileSum
}

// Base is a FROM image as a document names it.
type Base struct {
	Ref    string // pinned to its digest where the builder gave one
	Layers int
}

// Document is what an image's documents state.
type Document struct {
	Name    string    // the image's platform and roots' names
	Version string    // storepack's, the documents' creator's
	Created time.Time // the build's epoch, in UTC
	Layers  int       // the image's layers, every one
	Roots   []store.Path
	// Packages are the store paths of the closure, by path.
	Packages []Package
	// Base is the FROM image; nil for none.
	Base *BasePackage
	// Customisation is the customisation layer; nil for none.
	Customisation *Layers
	// FilesListed says that each package lists its files (Package.Files).
	FilesListed bool
}

// Package is a store path of the image.
type Package struct {
	Path          store.Path
	Name, Version string // Version "" for none
	PURL          string
	NarHash       digest.Digest // "" when the graph has none (a scan)
	NarSize       uint64        // 0 when unknown
	References    []store.Path  // without the path itself, sorted
	// StoreLayer is the store layer that holds the path, counting from 1
	// at the bottom, of StoreLayers, named by its key.
	StoreLayer, StoreLayers int
	StoreLayerKey           string
	Layers                  // where that layer is in the image
	Info                    // from the metadata file
	// Files are the path's regular files, by name, when the document
	// lists files (Document.FilesListed).
	Files []store.FileSum
}

// FileName is the path in the image of f, one of p's Files: an image
// scanner names files so, and a store path may be a file itself, which
// has no name relative to it.
func (p Package) FileName(f store.FileSum) string {
	if f.Name == "" {
		return p.Path.String()
	}
	return p.Path.String() + "/" + f.Name
}

// Layers are the image's layers that hold some content: positions in the
// config's rootfs.diff_ids and the manifest's layers, counting from 1 at
// the bottom.
type Layers struct{ First, Last int }

// BasePackage is the FROM image.
type BasePackage struct {
	Ref     string // as the build named it, pinned
	Name    string // its repository, normalised; Ref where it does not parse
	Version string // its digest where pinned, else ""
	PURL    string // "" unless pinned
	Layers
}

// New states img's document.
func New(img Image) (*Document, error) {
	v, _ := version.Get()
	doc := &Document{Version: v, Created: img.Epoch.UTC(), Layers: len(img.Plan.Layers), FilesListed: img.Files != nil}
	baseLayers := 0
	if img.Base != nil {
		baseLayers = img.Base.Layers
		doc.Layers += baseLayers
		doc.Base = base(*img.Base)
	}
	if img.Customisation {
		doc.Layers++
		doc.Customisation = &Layers{First: doc.Layers, Last: doc.Layers}
	}

	doc.Roots = slices.Clone(img.Roots)
	slices.SortFunc(doc.Roots, store.Path.Compare)
	doc.Roots = slices.Compact(doc.Roots)
	names := make([]string, len(doc.Roots))
	for i, p := range doc.Roots {
		if _, ok := img.Graph.Info(p); !ok {
			return nil, fmt.Errorf("root %s is not in the closure", p)
		}
		names[i] = p.Name
	}
	doc.Name = fmt.Sprintf("storepack image for %s: %s", platforms.Format(img.Platform), strings.Join(names, ", "))

	layerOf := map[store.Path]int{}
	for i, layer := range img.Plan.Layers {
		for _, p := range layer.Paths {
			layerOf[p] = i
		}
	}
	for _, p := range img.Graph.Paths() {
		layer, ok := layerOf[p]
		if !ok {
			return nil, fmt.Errorf("%s is in none of the image's store layers", p)
		}
		info, _ := img.Graph.Info(p)
		pkg := Package{
			Path:          p,
			PURL:          purl(p),
			NarHash:       cmp.Or(info.NarHash, img.NarHashes[p]),
			NarSize:       info.NarSize,
			StoreLayer:    layer + 1,
			StoreLayers:   len(img.Plan.Layers),
			StoreLayerKey: img.Plan.Layers[layer].Key,
			Layers:        Layers{First: baseLayers + layer + 1, Last: baseLayers + layer + 1},
		}
		pkg.Name, pkg.Version = name(p)
		if doc.FilesListed {
			files, ok := img.Files[p]
			if !ok {
				return nil, fmt.Errorf("%s: its files were not read", p)
			}
			pkg.Files = slices.Clone(files)
			slices.SortFunc(pkg.Files, func(a, b store.FileSum) int { return strings.Compare(a.Name, b.Name) })
		}
		if img.Metadata != nil {
			pkg.Info = img.Metadata.of(p, pkg.Name)
		}
		for _, ref := range info.References {
			if ref != p {
				pkg.References = append(pkg.References, ref)
			}
		}
		slices.SortFunc(pkg.References, store.Path.Compare)
		pkg.References = slices.Compact(pkg.References)
		doc.Packages = append(doc.Packages, pkg)
	}
	return doc, nil
}

// name splits p's name as Nix's parseDrvName does; a name that starts
// with "-" and no letter is all name.
func name(p store.Path) (string, string) {
	name, version := store.SplitName(p.Name)
	if name == "" {
		return p.Name, version
	}
	return name, version
}

// purl is store path p's package URL: pkg:nix for /nix/store and
// pkg:guix for /gnu/store (any other store directory is Nix's), with the
// hash part as syft writes a Nix package, which tells the path apart from
// others of the same name and version.
func purl(p store.Path) string {
	purlType := packageurl.TypeNix
	if p.Dir == "/gnu/store" {
		purlType = packageurl.TypeGuix
	}
	name, version := name(p)
	return packageurl.NewPackageURL(purlType, "", name, version, packageurl.Qualifiers{{Key: "outputhash", Value: p.Hash}}, "").ToString()
}

// base is the package of the FROM image b, at the image's bottom layers.
func base(b Base) *BasePackage {
	pkg := &BasePackage{Ref: b.Ref, Name: b.Ref, Layers: Layers{First: 1, Last: b.Layers}}
	ref, err := reference.ParseNormalizedNamed(b.Ref)
	if err != nil {
		return pkg
	}
	pkg.Name = ref.Name()
	if d, ok := ref.(reference.Digested); ok {
		pkg.Version = d.Digest().String()
		pkg.PURL = ociPURL(ref, d).ToString()
	}
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
