package inputs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/store"
)

const (
	amd64ELF = "7f454c4602010100000000000000000002003e00"
	armELF   = "7f454c4601010100000000000000000002002800"
)

// testStore lays out a store under dir/nix/store: per architecture an app
// holding an ELF header, all referencing one shared data path, plus a
// registration graph and a result symlink in dir/ctx.
func testStore(t *testing.T) (ctxDir, storeDir string) {
	t.Helper()
	dir := t.TempDir()
	ctxDir, storeDir = filepath.Join(dir, "ctx"), filepath.Join(dir, "nix", "store")
	data := "/nix/store/00000000000000000000000000000000-data"
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(data+"/share/greeting", "hello")
	for i, arch := range []struct{ name, header string }{{"amd64", amd64ELF}, {"arm", armELF}} {
		app := fmt.Sprintf("/nix/store/%032d-app-%s", i+1, arch.name)
		header, _ := hex.DecodeString(arch.header)
		write(app+"/bin/app", string(header)+data)
		write(app+"/bin/readme.txt", "not an ELF file, long enough to be read")
		write("ctx/graph-"+arch.name, fmt.Sprintf("%s\n\n0\n%s\n\n1\n%s\n", data, app, data))
		if err := os.Symlink(app, filepath.Join(ctxDir, "result-"+arch.name)); err != nil {
			t.Fatal(err)
		}
	}
	return ctxDir, storeDir
}

func read(t *testing.T, src string) (*Inputs, error) {
	t.Helper()
	ctxDir, storeDir := testStore(t)
	return readIn(t, ctxDir, storeDir, src)
}

// readIn reads the manifest src with a context and store of testStore's.
func readIn(t *testing.T, ctxDir, storeDir, src string) (*Inputs, error) {
	t.Helper()
	parsed, err := manifest.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parsed.Expand(manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return Read(context.Background(), m, dirSource{ctx: ctxDir, store: storeDir})
}

// dirSource reads a context and a store directory of the host, as the
// plugin's source does; it discovers by scanning.
type dirSource struct{ ctx, store string }

func (d dirSource) Context(context.Context, []string) (Files, error) {
	return FSFiles{os.DirFS(d.ctx)}, nil
}

func (d dirSource) Store(ctx context.Context, paths []store.Path, graph *store.Graph) (StoreFiles, error) {
	files := FSFiles{os.DirFS(d.store)}
	return StoreFiles{Files: files}, CheckPresent(ctx, files, paths, graph, d.store)
}

func (d dirSource) Discover(ctx context.Context, _ ocispecs.Platform, roots []store.Path, _ Transfers) (Discovery, error) {
	g, err := store.Discover(ctx, d.store, roots)
	return Discovery{Graph: g}, err
}

func TestForPlatformByDetection(t *testing.T) {
	in, err := read(t, "CLOSURE ./result-amd64\nCLOSURE --name=app ./result-arm\nGRAPH graph-amd64\nGRAPH graph-arm\n")
	if err != nil {
		t.Fatal(err)
	}
	for spec, wantApp := range map[string]string{"linux/amd64": "app-amd64", "linux/arm/v7": "app-arm", "armhf-linux": "app-arm"} {
		p, _ := ParsePlatform(spec)
		c, err := in.ForPlatform(context.Background(), p)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if len(c.Roots) != 1 || c.Roots[0].Name != wantApp {
			t.Errorf("%s: roots %v, want %s", spec, c.Roots, wantApp)
		}
		if c.Graph.Len() != 2 || c.Vars[manifest.RootVariable] != c.Roots[0].String() {
			t.Errorf("%s: closure of %d paths, vars %v", spec, c.Graph.Len(), c.Vars)
		}
		if _, named := c.Vars["app"]; named != (wantApp == "app-arm") {
			t.Errorf("%s: ${app} defined = %v", spec, named)
		}
	}
	arm64, _ := ParsePlatform("linux/arm64")
	_, err = in.ForPlatform(context.Background(), arm64)
	if err == nil || !strings.Contains(err.Error(), "no CLOSURE for platform linux/arm64") || !strings.Contains(err.Error(), "./result-arm is built for linux/arm") {
		t.Errorf("arm64: %v", err)
	}
}

// TestGraphsAgreeOnNarHashes gives one path's NAR hash in two GRAPH files:
// the graph keeps it where they agree and is refused where they do not.
func TestGraphsAgreeOnNarHashes(t *testing.T) {
	const (
		data = "/nix/store/00000000000000000000000000000000-data"
		app  = "/nix/store/00000000000000000000000000000001-app-amd64"
		hash = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	)
	ctxDir, storeDir := testStore(t)
	// Registration records in the long form: path, NAR hash, size,
	// deriver, references.
	for name, content := range map[string]string{
		"with-app":  data + "\n" + hash + "\n5\n\n0\n" + app + "\n" + strings.Repeat("4", 64) + "\n1\n\n1\n" + data + "\n",
		"same-hash": data + "\n" + hash + "\n5\n\n0\n",
		"other":     data + "\n" + strings.Repeat("5", 64) + "\n5\n\n0\n",
	} {
		if err := os.WriteFile(filepath.Join(ctxDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	amd64, _ := ParsePlatform("linux/amd64")
	in, err := readIn(t, ctxDir, storeDir, "CLOSURE ./result-amd64\nGRAPH with-app\nGRAPH same-hash\n")
	if err != nil {
		t.Fatal(err)
	}
	c, err := in.ForPlatform(context.Background(), amd64)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := c.Graph.Info(store.Path{Dir: "/nix/store", Hash: strings.Repeat("0", 32), Name: "data"}); info.NarHash != hash {
		t.Errorf("NAR hash of data: %q, want %s", info.NarHash, hash)
	}

	in, err = readIn(t, ctxDir, storeDir, "CLOSURE ./result-amd64\nGRAPH with-app\nGRAPH other\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.ForPlatform(context.Background(), amd64)
	if err == nil || !strings.Contains(err.Error(), data+" is listed twice with different NAR hashes, "+hash+" and sha256:"+strings.Repeat("5", 64)) {
		t.Errorf("GRAPHs that disagree on a NAR hash: %v", err)
	}
}

func TestTagDisagreesWithBinaries(t *testing.T) {
	_, err := read(t, "CLOSURE --platform=x86_64-linux ./result-arm\nGRAPH graph-arm\n")
	if err == nil || !strings.Contains(err.Error(), "its binaries are built for linux/arm") || !strings.Contains(err.Error(), "-app-arm/bin/app") {
		t.Errorf("err = %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"CLOSURE ./no-such\nGRAPH graph-arm\n", "root ./no-such is not in the build context"},
		{"CLOSURE ./graph-arm\nGRAPH graph-arm\n", "not a symlink into the store"},
		{"CLOSURE ../escape\n", "may not leave the build context"},
		{"CLOSURE /nix/store/99999999999999999999999999999999-gone\nGRAPH graph-arm\n", "root /nix/store/99999999999999999999999999999999-gone is not in"},
		{"CLOSURE ./result-arm\nGRAPH no-graph\n", "GRAPH no-graph: cannot read it"},
		{"STORE /gnu/store\nCLOSURE /gnu/store/00000000000000000000000000000000-data\nGRAPH graph-arm\n", "its paths are in /nix/store, but the store directory is /gnu/store"},
	} {
		if _, err := read(t, tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.src, err, tc.want)
		}
	}
	in, err := read(t, "CLOSURE ./result-amd64\nGRAPH graph-arm\n")
	if err != nil {
		t.Fatal(err)
	}
	amd64, _ := ParsePlatform("linux/amd64")
	if _, err := in.ForPlatform(context.Background(), amd64); err == nil || !strings.Contains(err.Error(), "is not in the GRAPH files") {
		t.Errorf("root missing from the graph: %v", err)
	}
}

// TestCheckPresent names the first path the store lacks, also where the
// store holds entries whose names start like it or extend it.
func TestCheckPresent(t *testing.T) {
	dir := t.TempDir()
	hash := strings.Repeat("1", 32)
	for _, name := range []string{hash + "-app", hash + "-app-2", hash + "-ap", strings.Repeat("2", 32) + "-lib", hash, "other"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := func(hash, name string) store.Path { return store.Path{Dir: "/nix/store", Hash: hash, Name: name} }
	app, lib := path(hash, "app"), path(strings.Repeat("2", 32), "lib")
	// Enough more present paths that the store is listed, not each path
	// looked up.
	var more []store.Path
	for i := range maxLookups {
		p := path(strings.Repeat("4", 32), fmt.Sprintf("more-%d", i))
		if err := os.Mkdir(filepath.Join(dir, p.Base()), 0o755); err != nil {
			t.Fatal(err)
		}
		more = append(more, p)
	}
	files := FSFiles{os.DirFS(dir)}
	ctx := context.Background()
	for _, extra := range [][]store.Path{nil, more} {
		if err := CheckPresent(ctx, files, append([]store.Path{lib, app}, extra...), nil, dir); err != nil {
			t.Errorf("present paths (%d more): %v", len(extra), err)
		}
		for _, missing := range []store.Path{path(hash, "a"), path(hash, "app-"), path(hash, "app-3"), path(strings.Repeat("0", 32), "app"), path(strings.Repeat("3", 32), "app")} {
			err := CheckPresent(ctx, files, append([]store.Path{app, missing, lib}, extra...), nil, dir)
			if e, ok := err.(*MissingPathError); !ok || e.Path != missing || e.Referrer != nil {
				t.Errorf("%s missing (%d more): %v", missing, len(extra), err)
			}
		}
	}
	graph, err := store.NewGraph([]store.Info{{Path: app, References: []store.Path{lib}}, {Path: lib}})
	if err != nil {
		t.Fatal(err)
	}
	err = CheckPresent(ctx, FSFiles{os.DirFS(t.TempDir())}, []store.Path{app, lib}, graph, "the store")
	if err == nil || err.Error() != "store path "+app.String()+" is not in the store" {
		t.Errorf("empty store: %v", err)
	}
	err = CheckPresent(ctx, FSFiles{os.DirFS(t.TempDir())}, []store.Path{lib}, graph, "the store")
	if err == nil || err.Error() != "store path "+lib.String()+" is not in the store (it is referenced by "+app.String()+")" {
		t.Errorf("missing reference: %v", err)
	}
}

// TestCheckOnly: a directory of exactly the paths passes, one beside them
// is named, a missing path is a *MissingPathError as CheckPresent's.
func TestCheckOnly(t *testing.T) {
	dir := t.TempDir()
	path := func(hash, name string) store.Path {
		return store.Path{Dir: "/nix/store", Hash: strings.Repeat(hash, 32), Name: name}
	}
	app, lib, lock := path("1", "app"), path("2", "lib"), path("1", "app.tmp")
	for _, p := range []store.Path{app, lib} {
		if err := os.Mkdir(filepath.Join(dir, p.Base()), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, files := context.Background(), FSFiles{os.DirFS(dir)}
	if err := CheckOnly(ctx, files, []store.Path{lib, app}, nil, "the store"); err != nil {
		t.Errorf("exactly the paths: %v", err)
	}
	if err := CheckOnly(ctx, files, []store.Path{app}, nil, "the store"); err == nil || err.Error() != "the store holds "+lib.Base()+" beside the store paths asked for" {
		t.Errorf("a path beside: %v", err)
	}
	if err := CheckOnly(ctx, files, []store.Path{app, lib, lock}, nil, "the store"); !errors.As(err, new(*MissingPathError)) {
		t.Errorf("a missing path: %v", err)
	}
}

// TestFSFilesReadNames lists a directory of the host and of any other
// file system.
func TestFSFilesReadNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mapFS := fstest.MapFS{"a": {}, "b": {}, "c": {}}
	for name, fsys := range map[string]fs.FS{"host": os.DirFS(dir), "map": mapFS} {
		names, err := FSFiles{fsys}.ReadNames(context.Background(), "")
		slices.Sort(names)
		if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
			t.Errorf("%s: %v, %v", name, names, err)
		}
	}
	if _, err := (FSFiles{mapFS}).ReadNames(context.Background(), "a"); err == nil {
		t.Error("a file listed as a directory")
	}
}

// TestFSFilesLookup returns an entry without following a symlink, nil for
// a name that does not exist.
func TestFSFilesLookup(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "file"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nowhere/target", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	files, ctx := FSFiles{os.DirFS(dir)}, context.Background()
	for name, want := range map[string]*Entry{
		"sub/file": {Name: "file", Size: 5},
		"sub":      {Name: "sub", Mode: os.ModeDir},
		"link":     {Name: "link", Mode: os.ModeSymlink, Linkname: "/nowhere/target"},
		"missing":  nil,
		"sub/none": nil,
	} {
		got, err := files.Lookup(ctx, name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want == nil {
			if got != nil {
				t.Errorf("%s: %+v, want nil", name, got)
			}
			continue
		}
		if got == nil || got.Name != want.Name || got.Mode.Type() != want.Mode.Type() || got.Linkname != want.Linkname || want.Size != 0 && got.Size != want.Size {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
}

// TestOneGraphIsNotCopied: the closure of a root that reaches every path
// of the one GRAPH that applies is that GRAPH's graph, held once.
func TestOneGraphIsNotCopied(t *testing.T) {
	in, err := read(t, "CLOSURE ./result-amd64\nGRAPH graph-amd64\n")
	if err != nil {
		t.Fatal(err)
	}
	amd64, _ := ParsePlatform("linux/amd64")
	c, err := in.ForPlatform(context.Background(), amd64)
	if err != nil {
		t.Fatal(err)
	}
	if c.Graph != in.graphs[0].graph || c.Graph.Len() != 2 {
		t.Errorf("closure %p of %d paths, want the GRAPH's own graph %p", c.Graph, c.Graph.Len(), in.graphs[0].graph)
	}
}

// TestGraphDigest: a GRAPH, read as a stream, is recorded by the digest of
// its whole content, also what its format's reader leaves unread; one that
// cannot be read says so.
func TestGraphDigest(t *testing.T) {
	ctxDir, storeDir := testStore(t)
	records, err := os.ReadFile(filepath.Join(ctxDir, "graph-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	var info strings.Builder
	info.WriteString("{")
	for i, line := range []string{`"/nix/store/00000000000000000000000000000000-data": {"narSize": 5, "references": []}`, `"/nix/store/00000000000000000000000000000001-app-amd64": {"narSize": 9, "references": ["/nix/store/00000000000000000000000000000000-data"]}`} {
		if i > 0 {
			info.WriteString(",")
		}
		info.WriteString(line)
	}
	info.WriteString("}\n" + strings.Repeat(" \n", 70000)) // white space beyond the reader's buffer
	files := map[string][]byte{"graph-amd64": records, "graph.json": []byte(info.String())}
	if err := os.WriteFile(filepath.Join(ctxDir, "graph.json"), files["graph.json"], 0o644); err != nil {
		t.Fatal(err)
	}
	amd64, _ := ParsePlatform("linux/amd64")
	for name, content := range files {
		in, err := readIn(t, ctxDir, storeDir, "CLOSURE ./result-amd64\nGRAPH "+name+"\n")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c, err := in.ForPlatform(context.Background(), amd64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := digest.FromBytes(content); len(c.Graphs) != 1 || c.Graphs[0].Digest != want || c.Graph.Len() != 2 {
			t.Errorf("%s: graphs %v of %d paths, want digest %s", name, c.Graphs, c.Graph.Len(), want)
		}
	}
	if err := os.Mkdir(filepath.Join(ctxDir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := readIn(t, ctxDir, storeDir, "CLOSURE ./result-amd64\nGRAPH dir\n"); err == nil || !strings.Contains(err.Error(), "GRAPH dir: cannot read it from the build context: ") {
		t.Errorf("a directory as GRAPH: %v", err)
	}
}
