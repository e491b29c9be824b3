package cliplugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPackageAndImageName(t *testing.T) {
	for in, want := range map[string]string{
		"hello-2.12.1":           "hello",
		"python3-3.12.1-env":     "python3",
		"gnu-config-2024-01-01":  "gnu-config",
		"busybox":                "busybox",
		"archapp-mips64el-linux": "archapp-mips64el-linux",
		"Foo_Bar+baz":            "foo-bar-baz",
		"--":                     "image",
		"1.0":                    "1-0",
	} {
		if got := imageName(packageName(in)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestRunInput: what run makes of its argument, before any engine.
func TestRunInput(t *testing.T) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "nix", "store")
	app := filepath.Join(storeDir, strings.Repeat("a", 32)+"-hello-2.12")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(app, filepath.Join(dir, "result")); err != nil {
		t.Fatal(err)
	}
	manifestFile := filepath.Join(dir, "app.storepack")
	if err := os.WriteFile(manifestFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctxDir := filepath.Join(dir, "svc")
	if err := os.Mkdir(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	gone := "/nix/store/" + strings.Repeat("0", 32) + "-gone-1.0"
	for _, tc := range []struct {
		arg, name      string
		root           string // the store path of a ROOT
		file, contextD string // a manifest and its build context
		image          bool
		err            string
	}{
		{arg: filepath.Join(dir, "result"), name: "hello", root: app},
		{arg: app + "/bin/hello", name: "hello", root: app},
		{arg: manifestFile, name: "app", file: manifestFile, contextD: dir},
		{arg: filepath.Join(ctxDir, "Storepackfile"), err: "no such file"},
		{arg: ctxDir, name: "svc", file: filepath.Join(ctxDir, "Storepackfile"), contextD: ctxDir},
		{arg: "busybox", image: true},
		{arg: "registry.example:5000/team/app:1", image: true},
		{arg: "./no-such-result", err: "no-such-result"},
		// Missing from the store: the build says so (RootsManifest).
		{arg: gone, name: "gone", root: gone},
		{arg: "/nix/store/not-a-store-path", err: "not-a-store-path"},
	} {
		in, name, ok, err := runInput(tc.arg, rootOptions{})
		root := ""
		if len(in.roots) == 1 {
			root = in.roots[0].Path.String()
		}
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.arg, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.arg, err)
		case tc.image:
			if ok {
				t.Errorf("%s: built as %s, want run as an image", tc.arg, name)
			}
		case !ok || name != tc.name || root != tc.root || in.manifestFile != tc.file || in.contextDir != tc.contextD:
			t.Errorf("%s: %q, %v, root %q, file %q, context %q; want %q, root %q, file %q, context %q",
				tc.arg, name, ok, root, in.manifestFile, in.contextDir, tc.name, tc.root, tc.file, tc.contextD)
		}
	}
}
