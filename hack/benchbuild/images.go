package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
)

// imageInfo is what the harness checks of a built image: that it has the
// layers of the shared plan.
type imageInfo struct {
	layers int
	labels map[string]string
}

// engineImage reads an image of the engine.
func (b *bed) engineImage(ctx context.Context, ref string) (imageInfo, error) {
	r, err := b.run(ctx, nil, b.docker, "image", "inspect", "--format", "{{json .}}", ref)
	if err != nil {
		return imageInfo{}, err
	}
	var img struct {
		RootFS struct{ Layers []string }
		Config struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(r.out), &img); err != nil {
		return imageInfo{}, fmt.Errorf("docker image inspect %s: %w", ref, err)
	}
	return imageInfo{layers: len(img.RootFS.Layers), labels: img.Config.Labels}, nil
}

// ociManifest is the part of an OCI index or manifest (or their docker
// equivalents) read here.
type ociManifest struct {
	Manifests []struct {
		Digest    string `json:"digest"`
		Platform  *struct{ OS, Architecture string }
		MediaType string `json:"mediaType"`
	} `json:"manifests"`
	Config struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []json.RawMessage `json:"layers"`
}

// resolveImage follows indexes to the linux/amd64 manifest and reads its
// config; blob fetches a manifest (the top one when digest is "") or a
// config.
func resolveImage(blob func(kind, digest string) ([]byte, error)) (imageInfo, error) {
	data, err := blob("manifest", "")
	for range 4 {
		if err != nil {
			return imageInfo{}, err
		}
		var m ociManifest
		if err := json.Unmarshal(data, &m); err != nil {
			return imageInfo{}, err
		}
		if len(m.Manifests) == 0 {
			cfg, err := blob("config", m.Config.Digest)
			if err != nil {
				return imageInfo{}, err
			}
			var img struct {
				Config struct{ Labels map[string]string } `json:"config"`
			}
			if err := json.Unmarshal(cfg, &img); err != nil {
				return imageInfo{}, err
			}
			return imageInfo{layers: len(m.Layers), labels: img.Config.Labels}, nil
		}
		next := ""
		for _, d := range m.Manifests {
			if d.Platform == nil || d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
				next = d.Digest
				break
			}
		}
		if next == "" {
			return imageInfo{}, errors.New("no linux/amd64 manifest")
		}
		data, err = blob("manifest", next)
	}
	return imageInfo{}, errors.New("indexes nested too deep")
}

// ociArchiveImage reads an OCI archive (buildx -o type=oci): its small
// blobs are kept on one pass over the tar.
func ociArchiveImage(file string) (imageInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return imageInfo{}, err
	}
	defer f.Close()
	small := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return imageInfo{}, fmt.Errorf("%s: %w", file, err)
		}
		if h.Typeflag == tar.TypeReg && h.Size < 4<<20 {
			if small[h.Name], err = io.ReadAll(tr); err != nil {
				return imageInfo{}, err
			}
		}
	}
	info, err := resolveImage(func(_, digest string) ([]byte, error) {
		name := "index.json"
		if digest != "" {
			name = "blobs/" + strings.Replace(digest, ":", "/", 1)
		}
		data, ok := small[name]
		if !ok {
			return nil, fmt.Errorf("%s has no %s", file, name)
		}
		return data, nil
	})
	if err != nil {
		return imageInfo{}, fmt.Errorf("%s: %w", file, err)
	}
	return info, nil
}

// registryImage reads repo:tag from the test bed's registry (plain HTTP).
func (b *bed) registryImage(ctx context.Context, repo, tag string) (imageInfo, error) {
	get := func(url, accept string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return data, nil
	}
	accept := strings.Join([]string{
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json",
	}, ", ")
	base := "http://" + b.registry + "/v2/" + repo
	return resolveImage(func(kind, digest string) ([]byte, error) {
		switch {
		case kind == "config":
			return get(base+"/blobs/"+digest, "")
		case digest == "":
			return get(base+"/manifests/"+tag, accept)
		}
		return get(base+"/manifests/"+digest, accept)
	})
}

// planNote compares the plan an image records with the shared plan, and
// says how they differ ("" when they agree).
func planNote(info imageInfo, want layering.Plan) string {
	got, err := layerllb.RecordedPlan(info.labels)
	if err != nil {
		return err.Error()
	}
	if len(got.Layers) != len(want.Layers) {
		return fmt.Sprintf("its plan has %d store layers, the shared plan %d", len(got.Layers), len(want.Layers))
	}
	differ := 0
	for i := range got.Layers {
		if !slices.Equal(got.Layers[i].Paths, want.Layers[i].Paths) {
			differ++
		}
	}
	if differ > 0 {
		return fmt.Sprintf("%d of its %d store layers differ from the shared plan's", differ, len(want.Layers))
	}
	return ""
}
