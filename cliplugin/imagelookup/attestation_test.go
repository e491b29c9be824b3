package imagelookup

import (
	"bytes"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

const spdxType = "https://spdx.dev/Document"

// attested stores, in r, an index with images for amd64 and arm64 and,
// as BuildKit attaches them, an attestation manifest for each with a
// statement of spdxType whose predicate names the platform, and one of
// another type; it returns the index's reference.
func (r *fakeRegistry) attested(t *testing.T, repo, tag string) string {
	t.Helper()
	unknown := ocispecs.Platform{OS: "unknown", Architecture: "unknown"}
	manifests := []ocispecs.Descriptor{}
	for _, p := range []ocispecs.Platform{amd64, arm64} {
		img := r.image(t, p, nil, false)
		var layers []ocispecs.Descriptor
		for _, s := range []struct{ predicateType, predicate string }{
			{"https://slsa.dev/provenance/v0.2", `{"builder":{}}`},
			{spdxType, `{"name":"<` + p.Architecture + `>"}`},
		} {
			l := r.add(t, "application/vnd.in-toto+json", []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"`+s.predicateType+`","subject":[],"predicate":`+s.predicate+`}`))
			l.Annotations = map[string]string{"in-toto.io/predicate-type": s.predicateType}
			layers = append(layers, l)
		}
		m := ocispecs.Manifest{MediaType: ocispecs.MediaTypeImageManifest, Config: r.add(t, ocispecs.MediaTypeImageConfig, []byte("{}")), Layers: layers}
		m.SchemaVersion = 2
		att := r.add(t, ocispecs.MediaTypeImageManifest, m)
		att.Platform = &unknown
		att.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": img.Digest.String()}
		manifests = append(manifests, img, att)
	}
	return r.tag(repo, tag, r.index(t, false, manifests...))
}

func TestAttestation(t *testing.T) {
	reg := newFakeRegistry(t, false)
	ref := reg.attested(t, "storepack/app", "1")
	for _, p := range []ocispecs.Platform{amd64, arm64} {
		got, err := Attestation(t.Context(), ref, p, spdxType, Sources{})
		if err != nil {
			t.Fatal(err)
		}
		// As the statement holds it, byte for byte.
		if want := `{"name":"<` + p.Architecture + `>"}`; string(got) != want {
			t.Errorf("%s: %s, want %s", p.Architecture, got, want)
		}
	}
	if got := reg.layerRequests(); len(got) > 0 {
		t.Errorf("image layers were fetched: %v", got)
	}

	// A statement whose content is not its digest's is refused.
	for d, data := range reg.blobs {
		if bytes.Contains(data, []byte(`"predicate":{"name":"<amd64>"}`)) {
			reg.blobs[d] = bytes.Replace(data, []byte("amd64"), []byte("arm64"), 1)
		}
	}
	if _, err := Attestation(t.Context(), ref, amd64, spdxType, Sources{}); err == nil || !strings.Contains(err.Error(), "the registry sent content of digest") {
		t.Errorf("a tampered statement: error %v", err)
	}

	for _, tc := range []struct {
		name, ref     string
		p             ocispecs.Platform
		predicateType string
		want          string
	}{
		{"no such platform", ref, armv7, spdxType, "no image for linux/arm/v7 (the index has linux/amd64, linux/arm64)"},
		{"no such type", ref, amd64, "https://cyclonedx.org/bom", "the image for linux/amd64 has no attestation of type https://cyclonedx.org/bom"},
		{"no attestations", reg.multiPlatform(t, "storepack/bare", "1", false), amd64, spdxType, "the image for linux/amd64 has no attestation of type " + spdxType},
		{"a lone manifest", reg.tag("storepack/single", "1", reg.image(t, amd64, nil, false)), amd64, spdxType, "a lone image manifest, which has no attestations"},
		{"no such image", reg.host + "/storepack/none:1", amd64, spdxType, "no such image, in the registry " + reg.host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Attestation(t.Context(), tc.ref, tc.p, tc.predicateType, Sources{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.ref+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q after the reference", err, tc.want)
			}
			if !cerrdefs.IsNotFound(err) {
				t.Errorf("error %v is not a not-found error", err)
			}
		})
	}
}
