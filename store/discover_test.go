package store

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// discoverStore writes a store of a few paths that refer to each other in
// the ways the scanner knows, plus entries Discover must ignore, and returns
// its directory and the graph of app's closure.
func discoverStore(t *testing.T) (string, *Graph) {
	dir := t.TempDir()
	app, lib, libc, data, unrelated := testPath("app"), testPath("lib"), testPath("libc"), testPath("data"), testPath("unrelated")
	files := map[string]string{
		app.Base() + "/bin/app":             "x:\x7fELF " + lib.String() + "/lib/liblib.so " + app.String(),
		app.Base() + "/share/data":          "->" + data.String(),
		lib.Base() + "/lib/liblib.so":       "\x7fELF " + libc.String() + "/lib/libc.so",
		libc.Base() + "/lib/libc.so":        "\x7fELF " + libc.String(),
		data.Base():                         "a single file that mentions " + testPath("gone").String() + ", which is not in the store",
		unrelated.Base() + "/x":             "mentions " + app.String() + " but nothing mentions it",
		app.Base() + ".lock":                "", // Nix's temporaries share the hash part of their path
		libc.Base() + ".check/lib/x":        "a --check build of libc",
		".links/0a0a0a":                     "Nix's hard link directory",
		"not-a-store-path":                  "",
		testPath("x").Hash + "-.bad":        "an entry whose name is not valid",
		testPath("orphan").Base() + ".lock": "a lock without its path is an ordinary path",
	}
	storeFiles(t, dir, files)
	infos := []Info{
		{Path: app, References: []Path{app, lib, data}},
		{Path: lib, References: []Path{libc}},
		{Path: libc, References: []Path{libc}},
		{Path: data},
	}
	fsys := os.DirFS(dir)
	for i := range infos {
		size, err := NarSize(fsys, infos[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		infos[i].NarSize = size
	}
	want, err := NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	return dir, want
}

func TestDiscover(t *testing.T) {
	dir, want := discoverStore(t)
	g, err := Discover(context.Background(), dir, []Path{testPath("app")})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, g)
	if !sameGraph(g, want) {
		t.Errorf("Discover:\n got %v\nwant %v", dumpGraph(g), dumpGraph(want))
	}

	// Several roots, repeated, some inside the others' closure.
	g, err = Discover(context.Background(), dir, []Path{testPath("lib"), testPath("app"), testPath("lib")})
	if err != nil || !sameGraph(g, want) {
		t.Errorf("Discover with several roots = %v, %v", dumpGraph(g), err)
	}
}

func TestDiscoverErrors(t *testing.T) {
	dir, _ := discoverStore(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		dir     string
		roots   []Path
		wantErr string
	}{
		{"no roots", dir, nil, "no roots"},
		{"missing root", dir, []Path{testPath("app"), testPath("gone")}, "root " + testPath("gone").String() + " is not in " + dir},
		{"root with another name", dir, []Path{{Dir: "/nix/store", Hash: testPath("app").Hash, Name: "other"}}, "is not in " + dir},
		{"roots in two store directories", dir, []Path{testPath("app"), {Dir: "/gnu/store", Hash: testPath("lib").Hash, Name: "lib"}}, "roots: "},
		{"invalid root", dir, []Path{{Dir: "/nix/store", Hash: "x", Name: "y"}}, "invalid store path"},
		{"missing store directory", filepath.Join(dir, "nowhere"), []Path{testPath("app")}, "nowhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Discover(ctx, tc.dir, tc.roots); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Discover error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestDiscoverRejectsCycles(t *testing.T) {
	dir := t.TempDir()
	a, b := testPath("a"), testPath("b")
	storeFiles(t, dir, map[string]string{a.Base(): b.String(), b.Base(): a.String()})
	_, err := Discover(context.Background(), dir, []Path{a})
	if want := dir + ": reference cycle between distinct store paths, which Nix and Guix cannot build: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Discover error = %v, want %q", err, want)
	}
}

func TestMeasureSizes(t *testing.T) {
	dir, want := discoverStore(t)
	var infos []Info
	for _, p := range want.Paths() {
		info, _ := want.Info(p)
		if p != testPath("lib") { // a known size is kept, even if wrong
			info.NarSize = 0
		} else {
			info.NarSize = 12345
		}
		infos = append(infos, info)
	}
	unsized, err := NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	g, err := MeasureSizes(context.Background(), os.DirFS(dir), unsized)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, g)
	for _, p := range want.Paths() {
		got, _ := g.Info(p)
		wantInfo, _ := want.Info(p)
		if p == testPath("lib") {
			wantInfo.NarSize = 12345
		}
		if got.NarSize != wantInfo.NarSize || !slices.Equal(got.References, wantInfo.References) {
			t.Errorf("%s: size %d, references %v; want %d, %v", p.Name, got.NarSize, got.References, wantInfo.NarSize, wantInfo.References)
		}
	}

	if _, err := MeasureSizes(context.Background(), os.DirFS(t.TempDir()), unsized); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("MeasureSizes in an empty store: error %v", err)
	}
}

func TestReadPathList(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "guix-requisites"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	paths, err := ReadPathList("guix-requisites", f)
	if err != nil {
		t.Fatal(err)
	}
	if want := helloGraphIn(t, "/gnu/store", false, true).Paths(); !slices.Equal(paths, want) {
		t.Errorf("ReadPathList = %v, want %v", paths, want)
	}

	tests := []struct {
		input, want string // want: the paths, space-separated, or the error
	}{
		{helloPath + "\n" + glibcPath + "\n" + helloPath + "\n\n\n", glibcPath + " " + helloPath},
		{helloPath, helloPath},
		{"", "list: no store paths"},
		{"\n", `list:1: invalid store path ""`},
		{helloPath + "\n\n" + glibcPath, `list:3: expected a store path, found "` + glibcPath + `" after a blank line`},
		{helloPath + "\n" + "/gnu/store/" + glibcBase, "list:2: invalid store path"},
		{helloPath + "\n/nix/store/../etc/passwd", "list:2: invalid store path"},
		{helloPath + "\n" + helloPath + "/bin/hello", "list:2: invalid store path"},
		{"1\n", `list:1: invalid store path "1"`},
		{strings.Repeat("/", maxLineLen+1), "list:1: line longer than"},
	}
	for _, tc := range tests {
		paths, err := ReadPathList("list", strings.NewReader(tc.input))
		got := joinPaths(paths, " ")
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("ReadPathList(%.40q) = %q, want %q", tc.input, got, tc.want)
		}
	}
}

func TestCycle(t *testing.T) {
	a, b, c, d := testPath("a"), testPath("b"), testPath("c"), testPath("d")
	tests := []struct {
		name  string
		infos []Info
		want  []Path
	}{
		{"none", []Info{{Path: a, References: []Path{a, b}}, {Path: b, References: []Path{c}}, {Path: c}}, nil},
		{"self-references only", []Info{{Path: a, References: []Path{a}}}, nil},
		{"diamond", []Info{{Path: a, References: []Path{b, c}}, {Path: b, References: []Path{d}}, {Path: c, References: []Path{d}}, {Path: d}}, nil},
		{"two paths", []Info{{Path: a, References: []Path{b}}, {Path: b, References: []Path{a}}}, []Path{a, b, a}},
		{"three paths", []Info{{Path: a, References: []Path{b}}, {Path: b, References: []Path{c, b}}, {Path: c, References: []Path{a}}}, []Path{a, b, c, a}},
	}
	for _, tc := range tests {
		g, err := NewGraph(tc.infos)
		if err != nil {
			t.Fatal(err)
		}
		got := g.Cycle()
		if len(got) != len(tc.want) {
			t.Errorf("%s: Cycle() = %v, want %v", tc.name, got, tc.want)
			continue
		}
		// A cycle may start anywhere; check it is one, in reference order.
		for i := 1; i < len(got); i++ {
			info, _ := g.Info(got[i-1])
			if !slices.Contains(info.References, got[i]) || got[0] != got[len(got)-1] {
				t.Errorf("%s: Cycle() = %v is not a cycle", tc.name, got)
			}
		}
	}
}
