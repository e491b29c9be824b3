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
	for _, tc := range []struct {
		arg, name, file string
		args            []string
		image           bool
		err             string
	}{
		{arg: filepath.Join(dir, "result"), name: "hello", args: []string{filepath.Join(dir, "result")}},
		{arg: app + "/bin/hello", name: "hello", args: []string{app + "/bin/hello"}},
		{arg: manifestFile, name: "app", file: manifestFile, args: []string{dir}},
		{arg: filepath.Join(ctxDir, "Storepackfile"), err: "no such file"},
		{arg: ctxDir, name: "svc", args: []string{ctxDir}},
		{arg: "busybox", image: true},
		{arg: "registry.example:5000/team/app:1", image: true},
		{arg: "./no-such-result", err: "no-such-result"},
		// Missing from the store: the build says so (RootsManifest).
		{arg: "/nix/store/" + strings.Repeat("0", 32) + "-gone-1.0", name: "gone", args: []string{"/nix/store/" + strings.Repeat("0", 32) + "-gone-1.0"}},
		{arg: "/nix/store/not-a-store-path", err: "not-a-store-path"},
	} {
		var opts buildOptions
		name, ok, err := runInput(tc.arg, &opts)
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
		case !ok || name != tc.name || opts.file != tc.file || strings.Join(opts.args, " ") != strings.Join(tc.args, " "):
			t.Errorf("%s: %q, %v, file %q, args %q; want %q, file %q, args %q", tc.arg, name, ok, opts.file, opts.args, tc.name, tc.file, tc.args)
		}
	}
}
