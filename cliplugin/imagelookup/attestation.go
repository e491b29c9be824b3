package imagelookup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// How BuildKit attaches attestations to an image in an index: a manifest
// of platform unknown/unknown, annotated as an attestation manifest of the
// image's digest, with a layer per in-toto statement annotated with the
// statement's predicate type.
const (
	referenceTypeAnnotation   = "vnd.docker.reference.type"
	referenceDigestAnnotation = "vnd.docker.reference.digest"
	attestationManifestType   = "attestation-manifest"
	predicateTypeAnnotation   = "in-toto.io/predicate-type"
)

// maxStatementSize bounds an attestation's statement, held in memory.
const maxStatementSize = 64 << 20

// Attestation returns the predicate, as the registry holds it, of the
// in-toto statement of predicateType that image ref's index in its
// registry attaches to its image for platform p (the best match, as
// ImageConfig picks it). Errors start with ref; when the image has no such
// attestation, the error satisfies cerrdefs.IsNotFound.
func Attestation(ctx context.Context, ref string, p ocispecs.Platform, predicateType string, src Sources) (json.RawMessage, error) {
	ctx = quietResolver(ctx)
	r, err := resolve(ctx, ref, src, "")
	if err != nil {
		return nil, err
	}
	if !images.IsIndexType(r.root.MediaType) {
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s: a lone image manifest, which has no attestations (they are in an image index)", ref))
	}
	data, err := content.ReadBlob(ctx, r.blobs, r.root)
	if err != nil {
		return nil, fmt.Errorf("%s: index: %w", ref, err)
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: index %s: %w", ref, r.root.Digest, err)
	}
	image, ok := platformManifest(idx, platforms.Normalize(p))
	if !ok {
		if err := missingPlatform(ctx, r.blobs, r.root, p); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s: no image for %s", ref, platforms.Format(p)))
	}
	for _, d := range idx.Manifests {
		if d.Annotations[referenceTypeAnnotation] != attestationManifestType || d.Annotations[referenceDigestAnnotation] != image.Digest.String() {
			continue
		}
		data, err := content.ReadBlob(ctx, r.blobs, d)
		if err != nil {
			return nil, fmt.Errorf("%s: attestation manifest %s: %w", ref, d.Digest, err)
		}
		var m ocispecs.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: attestation manifest %s: %w", ref, d.Digest, err)
		}
		for _, l := range m.Layers {
			if l.Annotations[predicateTypeAnnotation] == predicateType {
				return statementPredicate(ctx, r.fetched, ref, l)
			}
		}
	}
	return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s: the image for %s has no attestation of type %s", ref, platforms.Format(p), predicateType))
}

// platformManifest picks the image manifest of idx that best matches p,
// attestation manifests aside.
func platformManifest(idx ocispecs.Index, p ocispecs.Platform) (ocispecs.Descriptor, bool) {
	match := platforms.Only(p)
	var best ocispecs.Descriptor
	found := false
	for _, d := range idx.Manifests {
		if d.Platform == nil || d.Annotations[referenceTypeAnnotation] == attestationManifestType || !match.Match(*d.Platform) {
			continue
		}
		if !found || match.Less(*d.Platform, *best.Platform) {
			best, found = d, true
		}
	}
	return best, found
}

// statementPredicate reads the predicate of the in-toto statement in
// layer l, byte for byte as the statement holds it.
func statementPredicate(ctx context.Context, blobs content.Provider, ref string, l ocispecs.Descriptor) (json.RawMessage, error) {
	if l.Size > maxStatementSize {
		return nil, fmt.Errorf("%s: attestation %s is %d bytes, too large", ref, l.Digest, l.Size)
	}
	data, err := content.ReadBlob(ctx, blobs, l)
	if err != nil {
		return nil, fmt.Errorf("%s: attestation %s: %w", ref, l.Digest, err)
	}
	if err := l.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s: attestation %s: %w", ref, l.Digest, err)
	}
	if got := l.Digest.Algorithm().FromBytes(data); got != l.Digest {
		return nil, fmt.Errorf("%s: attestation %s: the registry sent content of digest %s", ref, l.Digest, got)
	}
	var statement struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(data, &statement); err != nil {
		return nil, fmt.Errorf("%s: attestation %s: %w", ref, l.Digest, err)
	}
	if len(statement.Predicate) == 0 {
		return nil, fmt.Errorf("%s: attestation %s: %w", ref, l.Digest, errors.New("a statement without a predicate"))
	}
	return statement.Predicate, nil
}
