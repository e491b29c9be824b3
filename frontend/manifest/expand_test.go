package manifest

import (
	"reflect"
	"sync"
	"testing"
)

const rootsSrc = `CLOSURE --platform=linux/amd64 --name=app ./result-x86_64
CLOSURE --platform=linux/arm/v7 --name=app ./result-armv7l
ENV APP=${app} HOME=/root
LINK /bin -> ${ROOT}/bin
LABEL root=${ROOT}
WORKDIR ${app}
ENTRYPOINT ["${app}/bin/hello", "$HOME", "${HOME}"]
CMD ${ROOT}/share
`

func TestRootReferences(t *testing.T) {
	m, err := Parse([]byte(rootsSrc))
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.Expand(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Closures[0].Name != "app" || first.Links[0].Target != "${ROOT}/bin" || first.Image.Entrypoint[0] != "${app}/bin/hello" {
		t.Errorf("without roots, references stay as written: %+v %+v", first.Links, first.Image)
	}
	roots := map[string]string{"ROOT": "/nix/store/rrrr-hello", "app": "/nix/store/aaaa-hello"}
	spec, err := m.Expand(Options{Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"APP=/nix/store/aaaa-hello", "HOME=/root"}; !reflect.DeepEqual(spec.Image.Env, want) {
		t.Errorf("env = %q", spec.Image.Env)
	}
	if spec.Links[0].Target != "/nix/store/rrrr-hello/bin" {
		t.Errorf("link = %+v", spec.Links[0])
	}
	if spec.Image.WorkingDir != "/nix/store/aaaa-hello" || spec.Image.Labels["root"] != "/nix/store/rrrr-hello" {
		t.Errorf("workdir %q, labels %v", spec.Image.WorkingDir, spec.Image.Labels)
	}
	// Only root references are expanded in ENTRYPOINT and CMD.
	if want := []string{"/nix/store/aaaa-hello/bin/hello", "$HOME", "${HOME}"}; !reflect.DeepEqual(spec.Image.Entrypoint, want) {
		t.Errorf("entrypoint = %q", spec.Image.Entrypoint)
	}
	if want := []string{"/bin/sh", "-c", "/nix/store/rrrr-hello/share"}; !reflect.DeepEqual(spec.Image.Cmd, want) {
		t.Errorf("cmd = %q", spec.Image.Cmd)
	}
}

// platformRoots are the root variables of two platforms.
var platformRoots = []map[string]string{
	{"ROOT": "/nix/store/aaaa-hello-x86_64", "app": "/nix/store/aaaa-hello-x86_64"},
	{"ROOT": "/nix/store/bbbb-hello-armv7l", "app": "/nix/store/bbbb-hello-armv7l"},
}

// wantSpecs expands rootsSrc, parsed afresh each time, for every platform.
func wantSpecs(t *testing.T) []*Spec {
	var want []*Spec
	for _, roots := range platformRoots {
		want = append(want, expand(t, rootsSrc, Options{Roots: roots}))
	}
	return want
}

func TestExpandLeavesManifest(t *testing.T) {
	want := wantSpecs(t)
	m, err := Parse([]byte(rootsSrc))
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.Expand(Options{Roots: platformRoots[0]})
	if err != nil {
		t.Fatal(err)
	}
	second, err := m.Expand(Options{Roots: platformRoots[1]})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, want[0]) || !reflect.DeepEqual(second, want[1]) {
		t.Errorf("specs\n%+v\n%+v\nwant\n%+v\n%+v", first, second, want[0], want[1])
	}
	if first.Image.Entrypoint[0] != "/nix/store/aaaa-hello-x86_64/bin/hello" {
		t.Errorf("first entrypoint = %q", first.Image.Entrypoint)
	}
	// A Spec is the caller's: changing it changes no later Expand.
	first.Image.Entrypoint[0] = "changed"
	first.Image.Env[0] = "changed"
	first.Closures[0].Roots[0] = "changed"
	again, err := m.Expand(Options{Roots: platformRoots[1]})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, want[1]) {
		t.Errorf("after changing a Spec: %+v", again)
	}
}

func TestExpandConcurrently(t *testing.T) {
	want := wantSpecs(t)
	m, err := Parse([]byte(rootsSrc))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			p := i % len(platformRoots)
			spec, err := m.Expand(Options{Roots: platformRoots[p]})
			if err != nil {
				t.Error(err)
				return
			}
			if !reflect.DeepEqual(spec, want[p]) {
				t.Errorf("platform %d: %+v", p, spec)
			}
		})
	}
	wg.Wait()
}
