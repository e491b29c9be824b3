package frontend

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
	"golang.org/x/sys/unix"
)

// TestBuildRefusesUnfitStorePaths: check-store walks a GRAPH's closure in
// the builder and refuses what no store path can hold, naming the file.
func TestBuildRefusesUnfitStorePaths(t *testing.T) {
	// refused checks that a file of the library, made unfit by unfit, is
	// refused for why.
	refused := func(t *testing.T, file, why string, unfit func(name string) error) {
		f := storetest.New(t, "/nix/store")
		if err := unfit(filepath.Join(f.StoreDir, f.Lib.Base(), filepath.FromSlash(file))); err != nil {
			t.Fatal(err)
		}
		c := helperGateway(t, f, "# syntax=storepack\nCLOSURE ./result-amd64\nGRAPH graph.json\n", false)
		_, err := Build(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), f.Lib.String()+"/"+file) || !strings.Contains(err.Error(), why) {
			t.Fatalf("err = %v, want %s/%s named as %s", err, f.Lib, file, why)
		}
		if ran := c.Ran(); len(ran) == 0 || ran[len(ran)-1] != inbuilder.CheckStore {
			t.Errorf("the helper ran %q, want check-store last", ran)
		}
	}
	t.Run("setuid", func(t *testing.T) {
		refused(t, "lib/libgreet.so", "setuid", func(name string) error { return os.Chmod(name, os.ModeSetuid|0o555) })
	})
	t.Run("fifo", func(t *testing.T) {
		refused(t, "lib/fifo", "neither a regular file", func(name string) error { return unix.Mkfifo(name, 0o644) })
	})
}

// TestBuildMissingStorePath: a store path the store lacks is an error that
// names it, whether a GRAPH lists it (with a path referencing it) or it is
// the root of a closure to discover.
func TestBuildMissingStorePath(t *testing.T) {
	for _, tc := range []struct {
		name, graph string
		missing     func(f *storetest.Fixture) store.Path
		says        func(f *storetest.Fixture) string
	}{
		{"graph", "GRAPH graph.json\n",
			func(f *storetest.Fixture) store.Path { return f.Lib },
			func(f *storetest.Fixture) string {
				return "store path " + f.Lib.String() + " is not in the build context \"store\" (it is referenced by " + f.Apps["amd64"].String() + ")"
			}},
		{"discovered", "",
			func(f *storetest.Fixture) store.Path { return f.Apps["amd64"] },
			func(f *storetest.Fixture) string {
				return "root " + f.Apps["amd64"].String() + " is not in the build context \"store\""
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := storetest.New(t, "/gnu/store")
			if err := os.RemoveAll(filepath.Join(f.StoreDir, tc.missing(f).Base())); err != nil {
				t.Fatal(err)
			}
			c := helperGateway(t, f, "# syntax=storepack\nSTORE /gnu/store\nCLOSURE ./result-amd64\n"+tc.graph, false)
			if _, err := Build(context.Background(), c); err == nil || !strings.Contains(err.Error(), tc.says(f)) {
				t.Fatalf("err = %v, want %q", err, tc.says(f))
			}
		})
	}
}
