package frontend

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/buildkit/solver/pb"
	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/internal/gatewaytest"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/storedb"
	_ "modernc.org/sqlite" // the "sqlite" driver, to read the store database
)

// helperGateway is gateway with the frontend image known, so that the
// helper's scans run (in-process, by gatewaytest) where a builder runs them.
func helperGateway(t *testing.T, f *storetest.Fixture, src string, mainContext bool) *gatewaytest.Client {
	t.Helper()
	c := gateway(t, f, src, mainContext)
	c.Frontend, c.WorkDir = "storepack:test", t.TempDir()
	return c
}

// amd64Closure is the closure of the fixture's amd64 application, sorted.
func amd64Closure(f *storetest.Fixture) []store.Path {
	paths := []store.Path{f.Data, f.Lib, f.Apps["amd64"]}
	slices.SortFunc(paths, store.Path.Compare)
	return paths
}

// TestBuildDiscovers: without a GRAPH, the frontend finds the closure by
// scanning in the builder (find-hashes), in a Nix and a Guix store sent as
// the named context "store" or inside the main context, and the image
// copies in and records exactly the closure: not the store's other paths.
func TestBuildDiscovers(t *testing.T) {
	for _, storeName := range []string{"/nix/store", "/gnu/store"} {
		for _, mainContext := range []bool{false, true} {
			t.Run(storeName+map[bool]string{false: " named context", true: " main context"}[mainContext], func(t *testing.T) {
				f := storetest.New(t, storeName)
				root := map[bool]string{false: "./result-amd64", true: "./ctx/result-amd64"}[mainContext]
				c := helperGateway(t, f, "# syntax=storepack\nSTORE "+storeName+"\nCLOSURE "+root+"\nENTRYPOINT [\"${ROOT}/bin/app\"]\n", mainContext)
				res, err := Build(context.Background(), c)
				if err != nil {
					t.Fatal(err)
				}
				plan, err := layerllb.RecordedPlan(imageConfig(t, res.Metadata).Config.Labels)
				if err != nil {
					t.Fatal(err)
				}
				recorded := plan.Paths()
				slices.SortFunc(recorded, store.Path.Compare)
				solved := c.Solved()
				want := amd64Closure(f)
				if copied := copiedPaths(t, solved[len(solved)-1]); !slices.Equal(recorded, want) || !slices.Equal(copied, want) {
					t.Errorf("the image records %v and copies %v, want the closure %v", recorded, copied, want)
				}
				if ran := c.Ran(); len(ran) == 0 || slices.ContainsFunc(ran, func(c inbuilder.Command) bool { return c != inbuilder.FindHashes }) {
					t.Errorf("the helper ran %q, want find-hashes alone", ran)
				}
			})
		}
	}
}

// TestBuildStoreDBHashes: STORE --with-db registers the closure, from a
// GRAPH or discovered, with the NAR hashes that hash-store read in the
// builder, which are the store package's.
func TestBuildStoreDBHashes(t *testing.T) {
	for _, storeName := range []string{"/nix/store", "/gnu/store"} {
		for closure, graph := range map[string]string{"discovered": "", "from a GRAPH": "GRAPH graph.json\n"} {
			t.Run(storeName+" "+closure, func(t *testing.T) {
				f := storetest.New(t, storeName)
				c := helperGateway(t, f, "# syntax=storepack\nSTORE --with-db "+storeName+"\nCLOSURE ./result-amd64\n"+graph, false)
				if _, err := Build(context.Background(), c); err != nil {
					t.Fatal(err)
				}
				if ran := c.Ran(); !slices.Contains(ran, inbuilder.HashStore) {
					t.Errorf("the helper ran %q, want hash-store", ran)
				}
				dbDir, err := storedb.Dir(storeName)
				if err != nil {
					t.Fatal(err)
				}
				solved := c.Solved()
				db := openDB(t, madeFile(t, solved[len(solved)-1], dbDir+"/db.sqlite"))
				var n int
				if err := db.QueryRow("SELECT count(*) FROM ValidPaths").Scan(&n); err != nil || n != 3 {
					t.Errorf("%d paths registered (%v), want the closure's 3", n, err)
				}
				for _, p := range amd64Closure(f) {
					want, _, err := store.NarHash(context.Background(), os.DirFS(f.StoreDir), p)
					if err != nil {
						t.Fatal(err)
					}
					var got string
					if err := db.QueryRow("SELECT hash FROM ValidPaths WHERE path = ?", p.String()).Scan(&got); err != nil || got != want.String() {
						t.Errorf("%s registered with hash %q (%v), want %q", p, got, err, want)
					}
				}
			})
		}
	}
}

// fileActions returns the actions of the FileOps of def, in order.
func fileActions(t *testing.T, def *pb.Definition) []*pb.FileAction {
	t.Helper()
	var actions []*pb.FileAction
	for _, op := range definitionOps(t, def) {
		actions = append(actions, op.GetFile().GetActions()...)
	}
	return actions
}

// madeFile returns the contents of the file name that a FileOp of def makes.
func madeFile(t *testing.T, def *pb.Definition, name string) []byte {
	t.Helper()
	for _, a := range fileActions(t, def) {
		if mk := a.GetMkfile(); mk != nil && mk.Path == name {
			return mk.Data
		}
	}
	t.Fatalf("no FileOp makes %s", name)
	return nil
}

// copiedPaths returns the store paths that the copies of def put in place,
// sorted.
func copiedPaths(t *testing.T, def *pb.Definition) []store.Path {
	t.Helper()
	var paths []store.Path
	for _, a := range fileActions(t, def) {
		if cp := a.GetCopy(); cp != nil {
			if p, err := store.ParsePath(cp.Dest); err == nil {
				paths = append(paths, p)
			}
		}
	}
	slices.SortFunc(paths, store.Path.Compare)
	return paths
}

// openDB opens a copy of the SQLite database data.
func openDB(t *testing.T, data []byte) *sql.DB {
	t.Helper()
	file := filepath.Join(t.TempDir(), "db.sqlite")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
