package manifest2llb_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/solver/pb"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/llbtest"
)

// fakeBase is a base image of n layers for the platforms it is asked for,
// as a builder's resolver returns it.
func fakeBase(t *testing.T, n int, asked *[]string) manifest2llb.ImageResolver {
	return func(_ context.Context, ref string, p ocispecs.Platform) (string, []byte, error) {
		*asked = append(*asked, ref+" "+p.Architecture)
		if strings.Contains(ref, "missing") {
			return "", nil, errors.New("docker.io/library/missing:latest: not found")
		}
		img := dockerspec.DockerOCIImage{Image: ocispecs.Image{Platform: p, RootFS: ocispecs.RootFS{Type: "layers"}}}
		for i := range n {
			img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, digest.FromString(ref+string(rune('a'+i))))
			img.History = append(img.History, ocispecs.History{CreatedBy: "base layer"})
		}
		img.History = append(img.History, ocispecs.History{CreatedBy: "base config", EmptyLayer: true})
		img.Config = dockerspec.DockerOCIImageConfig{ImageConfig: ocispecs.ImageConfig{
			Env: []string{"PATH=/usr/sbin:/usr/bin:/bin", "HOME=/root"},
			Cmd: []string{"sh"},
		}}
		data, err := json.Marshal(img)
		if err != nil {
			t.Fatal(err)
		}
		return "docker.io/library/" + ref + "@" + digest.FromBytes(data).String(), data, nil
	}
}

// TestConvertBase: FROM puts the base image's file system under the store
// layers, its layers count against the budget, its config is the start of
// the image's (the manifest's ENV overlaid), and its history comes first.
func TestConvertBase(t *testing.T) {
	f := newFixture(t, "/nix/store")
	var asked []string
	opt := manifest2llb.ConvertOpt{ResolveImage: fakeBase(t, 5, &asked)}
	src := "FROM busybox:1.36\nCLOSURE ./result-amd64\nGRAPH graph.json\nLAYERS --max=7 --strategy=per-path\nENV HOME=/home/app\nLINK /app -> bin\n"
	img := f.mustConvert(t, src, opt).Images[0]
	if !slices.Equal(asked, []string{"busybox:1.36 amd64"}) {
		t.Errorf("resolved %v", asked)
	}
	// 7 = 5 base layers + 1 store layer + the customisation layer.
	if n := len(img.Plan.Layers); n != 1 {
		t.Errorf("%d store layers within 7 with a 5-layer base and a LINK, want 1", n)
	}
	o := llbtest.Marshal(t, img.State, llbtest.AllCaps())
	var images []string
	for _, s := range o.Source {
		if strings.HasPrefix(s.Identifier, "docker-image://") {
			images = append(images, s.Identifier)
		}
	}
	if len(images) != 1 || !strings.HasPrefix(images[0], "docker-image://docker.io/library/busybox:1.36@sha256:") {
		t.Errorf("image sources %v, want the base pinned to its digest", images)
	}
	cfg := img.Config.Config
	if want := []string{"PATH=/usr/sbin:/usr/bin:/bin", "HOME=/home/app"}; !slices.Equal(cfg.Env, want) {
		t.Errorf("env %q, want %q", cfg.Env, want)
	}
	if !slices.Equal(cfg.Cmd, []string{"sh"}) {
		t.Errorf("cmd %q, want the base's", cfg.Cmd)
	}
	h := img.Config.History
	if len(h) != 6+len(img.Plan.Layers)+1 || h[0].CreatedBy != "base layer" || h[5].CreatedBy != "base config" || !strings.HasPrefix(h[6].CreatedBy, "storepack: store layer") {
		t.Errorf("history %+v, want the base's (5 layers, 1 empty) then the store layers and the customisation layer", h)
	}

	// An ENTRYPOINT replaces the base's entrypoint and its CMD.
	img = f.mustConvert(t, "FROM busybox\nCLOSURE ./result-amd64\nGRAPH graph.json\nENTRYPOINT [\"${ROOT}/bin/app\"]\n", opt).Images[0]
	if cfg := img.Config.Config; len(cfg.Entrypoint) != 1 || cfg.Cmd != nil {
		t.Errorf("entrypoint %q, cmd %q: want the manifest's entrypoint and no cmd", cfg.Entrypoint, cfg.Cmd)
	}
}

// TestConvertBaseLayerMethods: on a builder without MergeOp the store
// layers are applied on the base image's file system.
func TestConvertBaseLayerMethods(t *testing.T) {
	f := newFixture(t, "/nix/store")
	var asked []string
	noMerge := llbtest.CapsWithout(pb.CapMergeOp)
	img := f.mustConvert(t, "FROM busybox\nCLOSURE ./result-amd64\nGRAPH graph.json\n", manifest2llb.ConvertOpt{ResolveImage: fakeBase(t, 2, &asked), LLBCaps: &noMerge}).Images[0]
	o := llbtest.Marshal(t, img.State, noMerge)
	if len(o.Merge) != 0 {
		t.Fatal("a MergeOp without the cap")
	}
	var images int
	for _, s := range o.Source {
		if strings.HasPrefix(s.Identifier, "docker-image://") {
			images++
		}
	}
	if images != 1 {
		t.Errorf("%d image sources, want the base", images)
	}
}

// TestConvertBaseErrors: a base that cannot be read, or that leaves no
// room for the store, is an error at its FROM line.
func TestConvertBaseErrors(t *testing.T) {
	f := newFixture(t, "/nix/store")
	var asked []string
	for _, tc := range []struct {
		name, src, want string
		line            int
		resolve         manifest2llb.ImageResolver
	}{
		{"missing", "CLOSURE ./result-amd64\nGRAPH graph.json\nFROM missing\n", "FROM missing: docker.io/library/missing:latest: not found", 3, fakeBase(t, 1, &asked)},
		{"too many layers", "FROM busybox\nCLOSURE ./result-amd64\nGRAPH graph.json\nLAYERS --max=5\n", "FROM busybox: the base image has 5 layers, which leaves no store layer within the budget of 5", 1, fakeBase(t, 5, &asked)},
		{"no resolver", "FROM busybox\nCLOSURE ./result-amd64\nGRAPH graph.json\n", "FROM busybox: this conversion cannot read images", 1, nil},
		{"other platform", "FROM busybox\nCLOSURE ./result-amd64\nGRAPH graph.json\n", "FROM busybox: the image is for linux/arm64, not linux/amd64", 1, func(ctx context.Context, ref string, _ ocispecs.Platform) (string, []byte, error) {
			return fakeBase(t, 1, &asked)(ctx, ref, ocispecs.Platform{OS: "linux", Architecture: "arm64"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.convert(t, tc.src, manifest2llb.ConvertOpt{ResolveImage: tc.resolve})
			var le *parser.LocationError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &le) || le.Locations[0][0].Start.Line != tc.line {
				t.Errorf("error %v, want %q at line %d", err, tc.want, tc.line)
			}
		})
	}
}
