//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadManifests checks that bad input fails with an error naming the
// manifest line or the path, and tags nothing.
func TestBadManifests(t *testing.T) {
	c := nixClosure(t)
	dir := c.dir
	if err := os.Symlink("/tmp", filepath.Join(dir, "outside")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "garbage.json", "{\"/nix/store/not-a-store-path\": {\"references\": 7}}\n")
	// A graph that holds only the closure's busybox, not the root.
	var busybox string
	for _, p := range c.paths {
		if p.Name == "busybox" {
			busybox = p.String()
		}
	}
	writeFile(t, dir, "partial.json", must(t, nil, "nix", "path-info", "--json", busybox))
	graph := dir + "/path-info.json"
	for _, tc := range []struct {
		name     string
		manifest string
		want     []string // all of these in the output
	}{
		{"unknown instruction", "# syntax=storepack\nCLOSURE " + dir + "/result\nCLOSUR x\n",
			[]string{"app.storepack:3", "unknown instruction: CLOSUR"}},
		{"missing root", "# syntax=storepack\nGRAPH " + graph + "\nCLOSURE " + dir + "/no-such-result\n",
			[]string{"app.storepack:3", dir + "/no-such-result", "not in the build context"}},
		{"root outside the store", "# syntax=storepack\nGRAPH " + graph + "\nCLOSURE " + dir + "/outside\n",
			[]string{"app.storepack:3", "outside the store"}},
		{"malformed graph", "# syntax=storepack\nCLOSURE " + dir + "/result\nGRAPH " + dir + "/garbage.json\n",
			[]string{"app.storepack:3", "garbage.json"}},
		{"root not in the store", "# syntax=storepack\nCLOSURE /nix/store/00000000000000000000000000000000-absent\nGRAPH " + graph + "\n",
			[]string{"app.storepack:2", "root /nix/store/00000000000000000000000000000000-absent is not in the build context"}},
		{"COPY source outside the context", "# syntax=storepack\nCLOSURE " + dir + "/result\nGRAPH " + graph + "\nCOPY ../etc/passwd /etc/\n",
			[]string{"app.storepack:4", "COPY ../etc/passwd: a source outside the build context"}},
		{"COPY source missing", "# syntax=storepack\nCLOSURE " + dir + "/result\nGRAPH " + graph + "\nCOPY " + strings.TrimPrefix(dir, "/") + "/no-such-file /etc/\n",
			[]string{"app.storepack:4", "no-such-file: not in the build context"}},
		{"root not in graph", "# syntax=storepack\nCLOSURE " + dir + "/result\nGRAPH " + dir + "/partial.json\n",
			[]string{"app.storepack:2", c.root.String(), "not in the GRAPH"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			df := writeFile(t, t.TempDir(), "app.storepack", tc.manifest)
			tag := "storepack-e2e/bad:" + strings.ReplaceAll(tc.name, " ", "-")
			r := engineBuild(t, "-f", df, "-t", tag, "/")
			if r.err == nil {
				cmd(nil, bed.docker, "rmi", "-f", tag)
				t.Fatalf("build succeeded:\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r)
				}
			}
			checkNotTagged(t, tag)
		})
	}
}

// TestStorePathMissingFromContext names the store path the store context lacks.
func TestStorePathMissingFromContext(t *testing.T) {
	c := nixClosure(t)
	df := writeFile(t, c.dir, "app.storepack", manifest("./result", "path-info.json"))
	empty := t.TempDir()
	r := buildxBuild(t, "-f", df, "--build-context", "store="+empty, "-o", "type=oci,dest="+filepath.Join(t.TempDir(), "x.tar"), c.dir)
	if r.err == nil {
		t.Fatalf("build succeeded:\n%s", r)
	}
	if !strings.Contains(r.out, "is not in the build context \"store\"") || !strings.Contains(r.out, "/nix/store/") {
		t.Errorf("output does not name the missing store path:\n%s", r)
	}
}

// TestUnfitStoreContents checks that a store path the copy would put into
// the image as something Nix never builds (a setuid file, a fifo) or that
// is not the path the GRAPH describes is refused, naming the file, on
// Docker 20.10 (Chain path) and on buildkitd, and that nothing is tagged.
func TestUnfitStoreContents(t *testing.T) {
	c := nixClosure(t)
	// A build context holding a writable copy of the closure at
	// nix/store, as Docker 20.10 (no named contexts) needs it.
	contextWithStore := func(t *testing.T) (dir, storeCopy string) {
		dir = t.TempDir()
		storeCopy = filepath.Join(dir, "nix", "store")
		must(t, nil, "mkdir", "-p", storeCopy)
		for _, p := range c.paths {
			must(t, nil, "cp", "-a", p.String(), storeCopy)
		}
		must(t, nil, "chmod", "-R", "u+w", storeCopy)
		must(t, nil, "cp", filepath.Join(c.dir, "path-info.json"), dir)
		if err := os.Symlink(c.root.String(), filepath.Join(dir, "result")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "app.storepack", manifest("./result", "path-info.json"))
		return dir, storeCopy
	}
	root := c.root.Base()
	tests := []struct {
		name    string
		spoil   func(t *testing.T, storeCopy string)
		wantErr []string
	}{
		{"setuid", func(t *testing.T, s string) {
			must(t, nil, "chmod", "u+s", filepath.Join(s, root, "bin", "hello"))
		}, []string{c.root.String() + "/bin/hello", "setuid or setgid"}},
		{"fifo", func(t *testing.T, s string) {
			must(t, nil, "mkfifo", filepath.Join(s, root, "pipe"))
		}, []string{c.root.String() + "/pipe", "a NAR cannot hold it"}},
		{"changed", func(t *testing.T, s string) {
			f, err := os.OpenFile(filepath.Join(s, root, "bin", "hello"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("\n# edited\n"); err != nil {
				t.Fatal(err)
			}
		}, []string{"store path " + c.root.String(), "is not the one the GRAPH describes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, storeCopy := contextWithStore(t)
			tc.spoil(t, storeCopy)
			df := filepath.Join(dir, "app.storepack")
			tag := "storepack-e2e/unfit-" + tc.name + ":1"
			for _, builder := range []struct {
				name  string
				build func() result
			}{
				{"docker 20.10", func() result { return engineBuild(t, "-f", df, "-t", tag, dir) }},
				{"buildkitd", func() result {
					return buildxBuild(t, "-f", df, "-o", "type=oci,dest="+filepath.Join(t.TempDir(), "x.tar"), dir)
				}},
			} {
				r := builder.build()
				if r.err == nil {
					t.Fatalf("%s: build succeeded:\n%s", builder.name, r)
				}
				for _, want := range append(tc.wantErr, "app.storepack:2") {
					if !strings.Contains(r.out, want) {
						t.Errorf("%s: output does not say %q:\n%s", builder.name, want, r)
					}
				}
			}
			checkNotTagged(t, tag)
		})
	}
}
