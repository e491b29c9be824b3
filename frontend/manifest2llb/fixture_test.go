package manifest2llb_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/hostbuild"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/frontend/manifest2llb"
	"github.com/storepack/storepack/internal/llbtest"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/layering"
	"github.com/storepack/storepack/llb/layerllb"
)

var (
	amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	armV7 = ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
)

// fixture is storetest's build context and store.
type fixture struct{ *storetest.Fixture }

func newFixture(t *testing.T, storeName string) *fixture {
	return &fixture{storetest.New(t, storeName)}
}

// source reads the fixture as the CLI plugin does.
func (f *fixture) source() hostbuild.HostSource {
	return hostbuild.HostSource{ContextDir: f.CtxDir, StoreDir: f.StoreDir}
}

// convert converts src on the fixture for amd64 unless opt says otherwise.
func (f *fixture) convert(t *testing.T, src string, opt manifest2llb.ConvertOpt) (*manifest2llb.Result, error) {
	t.Helper()
	return f.convertWith(t, src, nil, f.source(), opt)
}

// convertWith converts src with build arguments, read through source.
func (f *fixture) convertWith(t *testing.T, src string, args map[string]string, source manifest2llb.Source, opt manifest2llb.ConvertOpt) (*manifest2llb.Result, error) {
	t.Helper()
	in, err := manifest2llb.ReadInput(context.Background(), []byte(src), args, source)
	if err != nil {
		return nil, err
	}
	if opt.BuildPlatform.OS == "" {
		opt.BuildPlatform = amd64
	}
	return manifest2llb.Convert(context.Background(), in, opt)
}

func (f *fixture) mustConvert(t *testing.T, src string, opt manifest2llb.ConvertOpt) *manifest2llb.Result {
	t.Helper()
	return f.mustConvertWith(t, src, nil, f.source(), opt)
}

func (f *fixture) mustConvertWith(t *testing.T, src string, args map[string]string, source manifest2llb.Source, opt manifest2llb.ConvertOpt) *manifest2llb.Result {
	t.Helper()
	res, err := f.convertWith(t, src, args, source, opt)
	if err != nil {
		t.Fatalf("%v\nmanifest:\n%s", manifest.WithFileLine("app.storepack", err), src)
	}
	return res
}

// copies are the copies of a definition as "src → dest", in definition
// order, checked for the fixed time and owner.
func copies(t *testing.T, o llbtest.Ops, epoch time.Time) []string {
	t.Helper()
	var found []string
	for _, c := range o.Copies() {
		if c.Owner.GetUser().GetByID() != 0 || c.Owner.GetGroup().GetByID() != 0 {
			t.Errorf("copy %s → %s is not owned by 0:0: %+v", c.Src, c.Dest, c.Owner)
		}
		if c.Timestamp != epoch.UnixNano() {
			t.Errorf("copy %s → %s has time %d, want %d", c.Src, c.Dest, c.Timestamp, epoch.UnixNano())
		}
		found = append(found, c.Src+" → "+c.Dest)
	}
	return found
}

// transfers are the include patterns of the local sources whose names
// start with prefix, sorted, by shared key.
func transfers(t *testing.T, o llbtest.Ops, prefix string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	for _, s := range o.Source {
		if !strings.HasPrefix(s.Identifier, "local://"+prefix) {
			continue
		}
		var patterns []string
		if err := json.Unmarshal([]byte(s.Attrs[pb.AttrIncludePatterns]), &patterns); err != nil {
			t.Fatal(err)
		}
		slices.Sort(patterns)
		found[s.Attrs[pb.AttrSharedKeyHint]] = patterns
	}
	return found
}

// planPaths lists a plan's store paths, layer by layer.
func planPaths(p layering.Plan) []string {
	var paths []string
	for _, sp := range p.Paths() {
		paths = append(paths, sp.String())
	}
	return paths
}

// recordedPlan decodes the plan label of an image's config.
func recordedPlan(t *testing.T, img manifest2llb.Image) layering.Plan {
	t.Helper()
	p, err := layerllb.RecordedPlan(img.Config.Config.Labels)
	if err != nil {
		t.Fatal(err)
	}
	return *p
}

// errorLine returns the manifest line a conversion error points at.
func errorLine(err error) int {
	var le *parser.LocationError
	if !errors.As(err, &le) || len(le.Locations) == 0 || len(le.Locations[0]) == 0 {
		return 0
	}
	return le.Locations[0][0].Start.Line
}
