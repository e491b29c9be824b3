package hostbuild

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bkclient "github.com/moby/buildkit/client"

	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
)

func TestParseExport(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Export
		err  string
	}{
		{"type=oci,dest=out.tar", Export{Type: "oci", Attrs: map[string]string{"dest": "out.tar"}}, ""},
		{"type=registry", Export{Type: "image", Attrs: map[string]string{"push": "true"}}, ""},
		{"type=image,name=a,b", Export{}, `"b" is not KEY=VALUE`},
		{`type=image,"name=a,b"`, Export{Type: "image", Attrs: map[string]string{"name": "a,b"}}, ""},
		{"out", Export{Type: "local", Attrs: map[string]string{"dest": "out"}}, ""},
		{"-", Export{Type: "tar", Attrs: map[string]string{"dest": "-"}}, ""},
		{"type=local", Export{}, "needs dest=DIRECTORY"},
		{"type=zip,dest=x", Export{}, `unknown type "zip"`},
		{"dest=x", Export{}, "no type="},
	} {
		got, err := ParseExport(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

// storePath makes a store path in a temporary store directory with the
// given files (name → mode).
func storePath(t *testing.T, dir, name string, files map[string]os.FileMode) store.Path {
	t.Helper()
	p, err := store.ParsePath(dir + "/" + strings.Repeat("a", 32) + "-" + name)
	if err != nil {
		t.Fatal(err)
	}
	for file, mode := range files {
		f := filepath.Join(p.String(), file)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestRootsManifest(t *testing.T) {
	for _, tc := range []struct {
		name       string
		files      map[string]os.FileMode
		entrypoint []string
		link       bool
		note       string
	}{
		{"one executable", map[string]os.FileMode{"bin/hello": 0o555, "bin/README": 0o444}, []string{"/bin/hello"}, true, ""},
		{"two executables", map[string]os.FileMode{"bin/a": 0o555, "bin/b": 0o555}, nil, true, "holds 2 executables"},
		{"no bin", map[string]os.FileMode{"share/data": 0o444}, nil, false, "has no bin directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := storePath(t, dir, "app", tc.files)
			src, note, err := RootsManifest([]store.Path{root}, "")
			if err != nil {
				t.Fatal(err)
			}
			if tc.note == "" && note != "" || !strings.Contains(note, tc.note) {
				t.Errorf("note %q, want %q", note, tc.note)
			}
			m, err := manifest.Parse(src)
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			spec, err := m.Expand(manifest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if spec.StoreDir != dir || len(spec.Closures) != 1 || spec.Closures[0].Roots[0] != root.String() {
				t.Errorf("store %s, closures %+v", spec.StoreDir, spec.Closures)
			}
			if !reflect.DeepEqual(spec.Image.Entrypoint, tc.entrypoint) {
				t.Errorf("entrypoint %v, want %v", spec.Image.Entrypoint, tc.entrypoint)
			}
			if hasLink := len(spec.Links) == 1 && spec.Links[0].Path == "/bin" && spec.Links[0].Target == "bin"; hasLink != tc.link {
				t.Errorf("links %+v", spec.Links)
			}
			if tc.link && !reflect.DeepEqual(spec.Image.Env, []string{"PATH=/bin"}) {
				t.Errorf("env %v", spec.Image.Env)
			}
		})
	}
	missing, _ := store.ParsePath(t.TempDir() + "/" + strings.Repeat("b", 32) + "-gone")
	if _, _, err := RootsManifest([]store.Path{missing}, ""); err == nil || !strings.Contains(err.Error(), "is not in") {
		t.Errorf("a missing root: %v", err)
	}
}

// TestFileOutputIsAllOrNothing: an archive reaches its destination only
// when the build succeeded; a failed build leaves no file.
func TestFileOutputIsAllOrNothing(t *testing.T) {
	for _, failed := range []bool{false, true} {
		dest := filepath.Join(t.TempDir(), "image.tar")
		entries, finish, err := exportEntries(context.Background(), []Export{{Type: "oci", Attrs: map[string]string{"dest": dest}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w, err := entries[0].Output(nil)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "archive")
		w.Close()
		var buildErr error
		if failed {
			buildErr = errors.New("the build failed")
		}
		if err := finish(nil, buildErr); err != nil {
			t.Fatal(err)
		}
		_, err = os.Stat(dest)
		if failed != os.IsNotExist(err) {
			t.Errorf("failed build %v: stat %v", failed, err)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".*")); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
}

// TestLoadReceivesTheArchive: a load export streams what the exporter
// writes to the loader, and a loader's error fails the build.
func TestLoadReceivesTheArchive(t *testing.T) {
	var got string
	load := func(_ context.Context, r io.Reader) error {
		data, err := io.ReadAll(r)
		got = string(data)
		if got == "bad" {
			return errors.New("not an archive")
		}
		return err
	}
	for _, tc := range []struct{ archive, err string }{{"archive", ""}, {"bad", "not an archive"}} {
		entries, finish, err := exportEntries(context.Background(), []Export{{Type: "docker", Load: load}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := entries[0].Output(nil)
		io.WriteString(w, tc.archive)
		w.Close()
		err = finish(nil, nil)
		if tc.err == "" && (err != nil || got != tc.archive) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: loaded %q, err %v", tc.archive, got, err)
		}
	}
}

// TestFrontendImageAttrs: through a frontend image, the build's options
// are frontend attributes beside those the build asks for already, such as
// an SBOM.
func TestFrontendImageAttrs(t *testing.T) {
	f := storetest.New(t, "")
	in, err := Open(context.Background(), Request{
		Manifest:   []byte("# syntax=storepack\nSTORE " + f.StoreName + "\nCLOSURE ./result-amd64\nGRAPH graph.json\n"),
		ContextDir: f.CtxDir,
		BuildArgs:  map[string]string{"A": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := throughFrontendImage(bkclient.SolveOpt{FrontendAttrs: map[string]string{"attest:sbom": ""}}, in, "storepack:test", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"attest:sbom": "", "build-arg:A": "1", "source": "storepack:test", "filename": defaultManifestName} {
		if got, ok := opt.FrontendAttrs[k]; !ok || got != v {
			t.Errorf("attribute %s = %q (given: %v), want %q", k, got, ok, v)
		}
	}
}
