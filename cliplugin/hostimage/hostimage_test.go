package hostimage

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

var epoch = time.Unix(1, 0).UTC()

func platform(arch string, config string) Platform {
	layer := digest.FromString("layer " + arch)
	return Platform{
		Platform: ocispecs.Platform{OS: "linux", Architecture: arch},
		Config:   []byte(config),
		Layers:   []Layer{{Blob: ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: digest.FromString("blob " + arch), Size: 3}, DiffID: layer}},
		Epoch:    epoch,
	}
}

// TestConfig: the config gets the layers' diffIDs as its root file system,
// times after the epoch clamped to it, a created time from the history
// when it has none, its other fields as they were, its keys in order.
func TestConfig(t *testing.T) {
	later := `"2030-01-01T00:00:00Z"`
	img, err := Write(context.Background(), []Platform{platform("amd64", `{"os":"linux","architecture":"amd64","config":{"Env":["A=1"]},"history":[{"created":`+later+`,"created_by":"x"},{"created_by":"y","empty_layer":true}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	config := string(img.Blobs[img.Config])
	want := `{"architecture":"amd64","config":{"Env":["A=1"]},"created":"1970-01-01T00:00:01Z","history":[{"created":"1970-01-01T00:00:01Z","created_by":"x"},{"created":"1970-01-01T00:00:01Z","created_by":"y","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["` + digest.FromString("layer amd64").String() + `"]}}`
	if config != want {
		t.Errorf("config:\n%s\nwant:\n%s", config, want)
	}
	if img.Root.Annotations[ocispecs.AnnotationCreated] != "1970-01-01T00:00:01Z" || img.Root.Platform == nil || img.Root.MediaType != ocispecs.MediaTypeImageManifest {
		t.Errorf("root %+v: want the manifest, its platform and creation time", img.Root)
	}
	var m ocispecs.Manifest
	if err := json.Unmarshal(img.Blobs[img.Root.Digest], &m); err != nil || m.Config.Digest != img.Config || len(m.Layers) != 1 || m.Layers[0].Digest != digest.FromString("blob amd64") {
		t.Errorf("manifest %+v (%v)", m, err)
	}
	if !strings.Contains(string(img.Blobs[img.Root.Digest]), "\n  ") {
		t.Errorf("manifest not indented as the exporter writes it:\n%s", img.Blobs[img.Root.Digest])
	}
}

// TestIndex: several platforms make an index of their manifests, in their
// order, each with its platform; the same input gives the same bytes.
func TestIndex(t *testing.T) {
	ps := []Platform{platform("amd64", `{"os":"linux","architecture":"amd64"}`), platform("arm", `{"os":"linux","architecture":"arm","variant":"v7"}`)}
	ps[1].Platform.Variant = "v7"
	a, err := Write(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Write(context.Background(), ps)
	if a.Root.Digest != b.Root.Digest || a.Config != "" {
		t.Errorf("roots %s and %s, config %q", a.Root.Digest, b.Root.Digest, a.Config)
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(a.Blobs[a.Root.Digest], &idx); err != nil || idx.MediaType != ocispecs.MediaTypeImageIndex || len(idx.Manifests) != 2 {
		t.Fatalf("index %+v (%v)", idx, err)
	}
	if p := idx.Manifests[1].Platform; p == nil || p.Architecture != "arm" || p.Variant != "v7" {
		t.Errorf("second manifest's platform %+v", p)
	}
}

// TestBadConfig: a config that is not a JSON object is an error.
func TestBadConfig(t *testing.T) {
	for _, config := range []string{"", "null", "[]", `{"created":"yesterday"}`} {
		if _, err := Write(context.Background(), []Platform{platform("amd64", config)}); err == nil {
			t.Errorf("config %q: no error", config)
		}
	}
}
