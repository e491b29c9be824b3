// Package storetest lays out a small store and build context on the host
// for tests of the conversion, the frontend glue and the CLI plugin.
package storetest

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
)

// The first bytes of ELF binaries for amd64 and arm, enough to tell their
// platform.
const (
	amd64ELF = "7f454c4602010100000000000000000002003e00"
	armELF   = "7f454c4601010100000000000000000002002800"
)

// Fixture is a build context and a store on the host: per architecture an
// application whose ELF binary references a library, which references a
// data path. The context holds result-ARCH symlinks and graph.json, the
// exact graph of both closures with NAR sizes.
type Fixture struct {
	CtxDir, StoreDir string // on the host
	StoreName        string // the store directory the paths name
	Data, Lib        store.Path
	Extra            store.Path            // in the store, not in the graph
	Apps             map[string]store.Path // by architecture
}

// New lays out a Fixture in a temporary directory of t.
//
// The store paths name storeName (/nix/store, /gnu/store) or, when it is
// "", the store's own directory on the host, as a store the host's tools
// can read by the paths' names.
func New(t testing.TB, storeName string) *Fixture {
	t.Helper()
	dir := t.TempDir()
	f := &Fixture{
		CtxDir:    filepath.Join(dir, "ctx"),
		StoreDir:  filepath.Join(dir, "store"),
		StoreName: storeName,
		Apps:      map[string]store.Path{},
	}
	if f.StoreName == "" {
		f.StoreName = f.StoreDir
	}
	path := func(hash byte, name string) store.Path {
		p, err := store.ParsePath(f.StoreName + "/" + strings.Repeat(string(hash), 32) + "-" + name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.Data, f.Lib = path('0', "data"), path('1', "libgreet-1.0")
	f.Write(t, f.Data, "share/greeting", "hello", 0o444)
	f.Extra = path('2', "extra")
	f.Write(t, f.Extra, "README", "not in any closure", 0o444)
	f.Write(t, f.Lib, "lib/libgreet.so", "library reading "+f.Data.String()+"/share/greeting", 0o555)
	for i, arch := range []struct{ name, header string }{{"amd64", amd64ELF}, {"arm", armELF}} {
		app := path(byte('a'+i), "app-"+arch.name)
		header, _ := hex.DecodeString(arch.header)
		f.Write(t, app, "bin/app", string(header)+" linked to "+f.Lib.String()+"/lib/libgreet.so", 0o555)
		if err := os.MkdirAll(f.CtxDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(app.String(), filepath.Join(f.CtxDir, "result-"+arch.name)); err != nil {
			t.Fatal(err)
		}
		f.Apps[arch.name] = app
	}
	g, err := store.Discover(context.Background(), f.StoreDir, []store.Path{f.Apps["amd64"], f.Apps["arm"]})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := store.WritePathInfoJSON(&buf, g); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.CtxDir, "graph.json"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *Fixture) Write(t testing.TB, p store.Path, name, content string, mode os.FileMode) {
	t.Helper()
	file := filepath.Join(f.StoreDir, p.Base(), name)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
