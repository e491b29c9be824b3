//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/testdir"
)

// verifyRow is a row of verify's table: LAYER KIND STATUS DIFFID PATHS.
var verifyRow = regexp.MustCompile(`(?m)^(\d+)\s+(base|store|customisation)\s+(match|same files|DIFFERS|MISSING|not checked)\s+[0-9a-f]{12}\s*(.*)$`)

// verifyStatuses reads verify's table: the status of each layer, by
// number, and the rest of its row.
func verifyStatuses(t *testing.T, stdout string) (statuses map[string]string, rest map[string]string) {
	t.Helper()
	statuses, rest = map[string]string{}, map[string]string{}
	for _, m := range verifyRow.FindAllStringSubmatch(stdout, -1) {
		statuses[m[1]] = m[2] + " " + m[3]
		rest[m[1]] = m[4]
	}
	if len(statuses) == 0 {
		t.Fatalf("no layer in verify's output:\n%s", stdout)
	}
	return statuses, rest
}

// mustVerify runs verify with env on IMAGE, which must pass with every
// store layer rebuilt as it is (want: "match", or "same files" where a
// builder writes other tars), and returns the statuses.
func mustVerify(t *testing.T, env []string, want string, args ...string) map[string]string {
	t.Helper()
	stdout, _ := mustPluginEnv(t, env, append([]string{"verify"}, args...)...)
	t.Logf("verify %s:\n%s", strings.Join(args, " "), stdout)
	statuses, _ := verifyStatuses(t, stdout)
	stores := 0
	for n, s := range statuses {
		if kind, status, _ := strings.Cut(s, " "); kind == "store" {
			stores++
			if status != want {
				t.Errorf("layer %s: %s, want %s:\n%s", n, status, want, stdout)
			}
		}
	}
	if stores < 3 {
		t.Errorf("%d store layers checked, want at least 3:\n%s", stores, stdout)
	}
	return statuses
}

// TestVerify: verify passes on an unchanged image from each builder: the
// plugin writing it on the host (an OCI archive, and pushed: read from the
// registry), the plugin through buildkitd with COPY, docker buildx build
// with the frontend, and docker build on each engine of the bed (read from
// the engine). Docker 20.10's BuildKit writes other tars of the same files:
// there the layers pass by their files.
func TestVerify(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	perPath := "LAYERS --strategy=per-path"

	t.Run("plugin on the host", func(t *testing.T) {
		df := writeFile(t, c.dir, "verify-host.storepack", manifest("./result", "path-info.json", perPath))
		oci := filepath.Join(t.TempDir(), "image.tar")
		mustPluginEnv(t, buildkitEnv, "build", "-f", df, "-o", "type=oci,dest="+oci, c.dir)
		statuses := mustVerify(t, nil, "match", oci)
		if last := statuses[fmt.Sprint(len(statuses))]; last != "customisation not checked" {
			t.Errorf("top layer %q, want the customisation layer, not checked", last)
		}
		tag := bed.registry + "/storepack-e2e/verify:host"
		mustPluginEnv(t, buildkitEnv, "build", "-f", df, "-t", tag, "--push", c.dir)
		mustVerify(t, nil, "match", tag) // not in the engine: from the registry
		// Against the manifest, and the root: their plans put the same
		// paths in each layer.
		// The host writes the manifest's customisation layer: checked too.
		statuses = mustVerify(t, nil, "match", "--against", df, oci)
		if last := statuses[fmt.Sprint(len(statuses))]; last != "customisation match" {
			t.Errorf("top layer against the manifest %q, want the customisation layer, matching", last)
		}
		otherLink := writeFile(t, c.dir, "verify-other-link.storepack", strings.Replace(manifest("./result", "path-info.json", perPath), "LINK /bin -> bin", "LINK /bin -> share", 1))
		stdout, stderr, err := runPluginEnv(nil, "verify", "--against", otherLink, oci)
		got, _ := verifyStatuses(t, stdout)
		if last := got[fmt.Sprint(len(got))]; err == nil || last != "customisation DIFFERS" || !strings.Contains(stderr, "differs, the customisation layer (") {
			t.Errorf("against another LINK: %v, top layer %q, stderr %q", err, last, stderr)
		}
		mustVerify(t, nil, "match", "--against", c.root.String(), "--strategy", "per-path", oci)
	})

	t.Run("plugin on buildkitd with FROM", func(t *testing.T) {
		df := writeFile(t, c.dir, "verify-from.storepack", manifest("./result", "path-info.json", perPath, "FROM "+bed.registry+"/library/busybox:latest"))
		tag := bed.registry + "/storepack-e2e/verify:from"
		mustPluginEnv(t, buildkitEnv, "build", "-f", df, "-t", tag, "--push", c.dir)
		statuses := mustVerify(t, nil, "match", tag)
		if first := statuses["1"]; first != "base not checked" {
			t.Errorf("bottom layer %q, want the base image's, not checked", first)
		}
	})

	builders := append(bothBuilders(t), buildxBuilder)
	for _, b := range builders {
		t.Run(b.name, func(t *testing.T) {
			b.use(t)
			result, graph := b.paths(c)
			text := manifest(result, graph, perPath)
			if !b.engine {
				// COPY needs the builder.
				text = manifest(result, graph, perPath, "COPY path-info.json /etc/path-info.json")
			}
			tag := b.build(t, c, "verify-"+strings.NewReplacer(" ", "-", "/", "-", "=", "-").Replace(b.name), text)
			want := "match"
			if b.engine && !b.on.merges() && strings.HasPrefix(b.on.name, "docker20") {
				want = "same files"
			}
			mustVerify(t, nil, want, tag)
		})
	}
}

// TestVerifyAltered: an image built from a copy of the closure in which one
// file of one store path was changed fails verify against the original
// store, naming that layer and that store path in one line (and its row),
// and passes against the copy; so does the original image against the
// altered copy. verify leaves no temporary file behind.
func TestVerifyAltered(t *testing.T) {
	installPlugin(t)
	c := nixClosure(t)
	// No GRAPH: the graph's NAR sizes and hashes would refuse the altered
	// path before it is built.
	df := writeFile(t, c.dir, "verify-altered.storepack", "# syntax=storepack\nCLOSURE ./result\nLINK /bin -> bin\nLAYERS --strategy=per-path\n")
	root := testdir.ForStore(t)
	storeCopy := filepath.Join(root, "nix", "store")
	if err := os.MkdirAll(storeCopy, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.paths {
		must(t, nil, "cp", "-a", p.String(), storeCopy+"/")
	}
	// One file of the application's store path, changed in the copy.
	altered := filepath.Join(storeCopy, c.root.Base(), "bin", "hello")
	must(t, nil, "chmod", "u+w", filepath.Dir(altered), altered)
	f, err := os.OpenFile(altered, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n# altered\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	must(t, nil, "chmod", "a-w", filepath.Dir(altered), altered)

	build := func(extra ...string) string {
		oci := filepath.Join(t.TempDir(), "image.tar")
		mustPluginEnv(t, buildkitEnv, append(append([]string{"build", "--no-cache"}, extra...), "-f", df, "-o", "type=oci,dest="+oci, c.dir)...)
		return oci
	}
	fromCopy, original := build("--store-root", root), build()
	// Docker 20.10's builder, from the store: its layers are compared by
	// their files, saved from the engine.
	engineDF := writeFile(t, c.dir, "verify-engine.storepack", manifest(c.dir+"/result", c.dir+"/path-info.json", "LAYERS --strategy=per-path"))
	engineTag := "storepack-e2e/verify-altered:engine"
	if r := engineBuild(t, "-f", engineDF, "-t", engineTag, "/"); r.err != nil {
		t.Fatalf("build failed:\n%s", r)
	}
	t.Cleanup(func() { cmd(nil, bed.docker, "rmi", "-f", engineTag) })
	// The copy's image in the registry: its layer is fetched to compare.
	pushedTag := bed.registry + "/storepack-e2e/verify-altered:copy"
	mustPluginEnv(t, buildkitEnv, "build", "--store-root", root, "-f", df, "-t", pushedTag, "--push", c.dir)

	for _, tc := range []struct {
		name, image string
		storeRoot   []string // where the store verify reads is
		passing     string   // the status of the layers that pass
	}{
		{"from the copy, against the store", fromCopy, nil, "match"},
		{"from the copy in the registry, against the store", pushedTag, nil, "match"},
		{"from the store, against the copy", original, []string{"--store-root", root}, "match"},
		{"from the store by Docker 20.10, against the copy", engineTag, []string{"--store-root", root}, "same files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			stdout, stderr, err := runPluginEnv([]string{"TMPDIR=" + tmp}, append(append([]string{"verify"}, tc.storeRoot...), tc.image)...)
			if err == nil {
				t.Fatalf("verify passed:\n%s", stdout)
			}
			t.Logf("verify:\n%s%s", stdout, stderr)
			statuses, rest := verifyStatuses(t, stdout)
			var differs []string
			for n, s := range statuses {
				kind, status, _ := strings.Cut(s, " ")
				switch {
				case kind != "store":
				case status == "DIFFERS":
					differs = append(differs, n)
					if rest[n] != c.root.String()+" (other files than the store's)" {
						t.Errorf("layer %s names %q, want %s alone", n, rest[n], c.root)
					}
				case status != tc.passing:
					t.Errorf("layer %s: %s, want %s", n, status, tc.passing)
				}
			}
			if len(differs) != 1 {
				t.Fatalf("layers %v differ, want one", differs)
			}
			wantLine := fmt.Sprintf("layer %s differs: %s (", differs[0], c.root)
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], wantLine) {
				t.Errorf("stderr %q: want one line with %q", stderr, wantLine)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("verify left %d entries in its temporary directory", len(left))
			}
		})
	}
	mustVerify(t, nil, "match", "--store-root", root, fromCopy)
}

// TestVerifyNotStorepack: an image storepack did not build fails verify
// with one line that says so, nothing on stdout and nothing left behind.
func TestVerifyNotStorepack(t *testing.T) {
	installPlugin(t)
	tmp := t.TempDir()
	busybox := os.Getenv("TESTBED_BUSYBOX_IMAGE")
	for _, image := range []string{busybox, bed.registry + "/library/busybox:latest"} {
		stdout, stderr, err := runPluginEnv([]string{"TMPDIR=" + tmp}, "verify", image)
		if err == nil {
			t.Fatalf("verify %s passed:\n%s", image, stdout)
		}
		want := image + " was not built by storepack: it records no layer plan"
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
			t.Errorf("verify %s: stderr %q, want one line starting %q", image, stderr, want)
		}
		if stdout != "" {
			t.Errorf("verify %s wrote %q", image, stdout)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("verify left %d entries in its temporary directory", len(left))
	}
}

// TestVerifyGuix: a Guix store (/gnu/store) kept under a root: its image
// verifies against it, and after one file of one store path changed, fails
// naming that path.
func TestVerifyGuix(t *testing.T) {
	installPlugin(t)
	g := guixClosure(t)
	df := writeFile(t, t.TempDir(), "guix.storepack", "# syntax=storepack\nCLOSURE ./result\nSTORE /gnu/store\nLINK /bin -> bin\nLAYERS --strategy=per-path\n")
	oci := filepath.Join(t.TempDir(), "guix.tar")
	mustPluginEnv(t, buildkitEnv, "build", "--store-root", g.root, "-f", df, "-o", "type=oci,dest="+oci, g.root)
	mustVerify(t, nil, "match", "--store-root", g.root, oci)

	greeting := filepath.Join(g.root, g.data, "share", "greeting.txt")
	must(t, nil, "chmod", "u+w", greeting)
	if err := os.WriteFile(greeting, []byte("hello from elsewhere\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runPluginEnv(nil, "verify", "--store-root", g.root, oci)
	if want := "differs: " + g.data + " ("; err == nil || !strings.Contains(stderr, want) {
		t.Errorf("verify after %s changed: %v, stderr %q, want %q\n%s", greeting, err, stderr, want, stdout)
	}
}
