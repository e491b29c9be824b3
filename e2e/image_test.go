//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
)

// image is an image read from a `docker save` or OCI archive.
type image struct {
	config       ocispecs.Image
	configDigest string
	layers       []layer
}

type layer struct {
	diffID  string // sha256 of the uncompressed tar
	entries []*tar.Header
}

// plan returns the layer plan recorded in the image's label.
func (img *image) plan(t *testing.T) layering.Plan {
	t.Helper()
	var p layering.Plan
	if err := json.Unmarshal([]byte(img.config.Config.Labels[layerllb.PlanLabel]), &p); err != nil {
		t.Fatalf("label %s: %v", layerllb.PlanLabel, err)
	}
	return p
}

func (img *image) diffIDs() []string {
	ids := make([]string, len(img.layers))
	for i, l := range img.layers {
		ids[i] = l.diffID
	}
	return ids
}

// readArchive reads the single image of an OCI layout archive (index.json)
// or of a `docker save` archive (manifest.json).
func readArchive(t *testing.T, file string) *image {
	t.Helper()
	blobs := readTar(t, file)
	img := &image{}
	var configData []byte
	var layerFiles []string
	if index, ok := blobs["index.json"]; ok {
		manifest := ociManifest(t, blobs, index)
		configData = blobs[blobPath(manifest.Config.Digest.String())]
		img.configDigest = manifest.Config.Digest.String()
		for _, l := range manifest.Layers {
			layerFiles = append(layerFiles, blobPath(l.Digest.String()))
		}
	} else {
		var saved []struct {
			Config string
			Layers []string
		}
		if err := json.Unmarshal(blobs["manifest.json"], &saved); err != nil || len(saved) != 1 {
			t.Fatalf("%s: want one image in manifest.json: %v", file, err)
		}
		configData = blobs[saved[0].Config]
		img.configDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(configData))
		layerFiles = saved[0].Layers
	}
	if err := json.Unmarshal(configData, &img.config); err != nil {
		t.Fatalf("image config: %v", err)
	}
	for _, name := range layerFiles {
		img.layers = append(img.layers, readLayer(t, blobs[name]))
	}
	return img
}

// readTar returns the regular files of a tar archive by name.
func readTar(t *testing.T, file string) map[string][]byte {
	t.Helper()
	blobs := map[string][]byte{}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return blobs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			blobs[path.Clean(h.Name)] = data
		}
	}
}

// ociManifest follows index.json (and a nested index) to the image manifest.
func ociManifest(t *testing.T, blobs map[string][]byte, index []byte) ocispecs.Manifest {
	t.Helper()
	for depth := 0; depth < 3; depth++ {
		var idx ocispecs.Index
		if err := json.Unmarshal(index, &idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 1 {
			t.Fatalf("want one manifest in the index, have %d", len(idx.Manifests))
		}
		d := idx.Manifests[0]
		data := blobs[blobPath(d.Digest.String())]
		if d.MediaType == ocispecs.MediaTypeImageIndex {
			index = data
			continue
		}
		var m ocispecs.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatal("index nesting too deep")
	return ocispecs.Manifest{}
}

func blobPath(digest string) string {
	return "blobs/" + strings.Replace(digest, ":", "/", 1)
}

func readLayer(t *testing.T, blob []byte) layer {
	t.Helper()
	var r io.Reader = bytes.NewReader(blob)
	if len(blob) > 2 && blob[0] == 0x1f && blob[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	h := sha256.New()
	tee := io.TeeReader(r, h)
	tr := tar.NewReader(tee)
	var l layer
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		l.entries = append(l.entries, hdr)
	}
	// Read the tar's padding so the digest covers the whole stream.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		t.Fatal(err)
	}
	l.diffID = fmt.Sprintf("sha256:%x", h.Sum(nil))
	return l
}
