package hostbuild

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestNodeFor(t *testing.T) {
	p := func(specs ...string) []ocispecs.Platform {
		var ps []ocispecs.Platform
		for _, s := range specs {
			ps = append(ps, platforms.MustParse(s))
		}
		return ps
	}
	for _, tc := range []struct {
		name    string
		nodes   [][]ocispecs.Platform
		ps      []ocispecs.Platform
		matcher func(ocispecs.Platform) platforms.MatchComparer
		want    []int
		perfect bool
	}{
		{"each on its declared node", [][]ocispecs.Platform{p("linux/amd64"), p("linux/arm/v7")}, p("linux/arm/v7", "linux/amd64"), platforms.OnlyStrict, []int{1, 0}, true},
		{"the first node declared for it", [][]ocispecs.Platform{p("linux/arm64"), p("linux/arm/v7"), p("linux/arm/v7", "linux/amd64")}, p("linux/arm/v7", "linux/amd64"), platforms.OnlyStrict, []int{1, 2}, true},
		{"none declared: the first node", [][]ocispecs.Platform{p("linux/amd64"), p("linux/arm/v7")}, p("linux/arm/v7", "linux/riscv64"), platforms.OnlyStrict, []int{1, 0}, false},
		{"strict: arm/v7 does not build arm/v6", [][]ocispecs.Platform{p("linux/amd64"), p("linux/arm/v7")}, p("linux/arm/v6"), platforms.OnlyStrict, []int{0}, false},
		{"what a node runs: arm/v7 runs arm/v6", [][]ocispecs.Platform{p("linux/amd64"), p("linux/arm/v7")}, p("linux/arm/v6"), platforms.Only, []int{1}, true},
		{"no platforms", [][]ocispecs.Platform{p("linux/amd64")}, nil, platforms.OnlyStrict, nil, true},
	} {
		idx, perfect := nodeFor(tc.nodes, tc.ps, tc.matcher)
		if !slices.Equal(idx, tc.want) || perfect != tc.perfect {
			t.Errorf("%s: nodes %v, perfect %v; want %v, %v", tc.name, idx, perfect, tc.want, tc.perfect)
		}
	}
}

func TestBuildOnNodesOnlyPushes(t *testing.T) {
	work := []nodeWork{{node: &Node{Name: "a"}, platforms: []ocispecs.Platform{platforms.MustParse("linux/amd64")}}, {node: &Node{Name: "b"}, platforms: []ocispecs.Platform{platforms.MustParse("linux/arm/v7")}}}
	in := &Input{}
	_, err := in.buildOnNodes(t.Context(), &Builder{Name: "two"}, work, Output{Exports: []Export{{Type: "oci", Attrs: map[string]string{"dest": "x.tar"}}}}, nil)
	want := `the builder "two" builds these platforms on 2 nodes (linux/amd64 on a; linux/arm/v7 on b): only --push joins their images`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err %v, want %q", err, want)
	}
}
