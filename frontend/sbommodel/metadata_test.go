package sbommodel

import (
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
)

// FuzzParseMetadata: a metadata file parses or fails with an error that
// names the file and a line of it; what parses names store paths of the
// store directory only.
func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"hello": {"license": "GPL-3.0-or-later", "homepage": "https://gnu.org/", "description": "hi"}}`))
	f.Add([]byte("{\n\"/nix/store/" + strings.Repeat("a", 32) + "-hello-2.12.1\": {\"license\": [\"MIT\", \"A OR B\"]}\n}"))
	f.Add([]byte(`{"a": {}, "a": {}}`))
	f.Add([]byte(`{"a": {"licence": "MIT"}}`))
	f.Add([]byte(`[1, 2]`))
	f.Add([]byte(`{"a": {}} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadata("meta.json", data, "/nix/store")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "meta.json:") {
				t.Fatalf("error %q names no file and line", err)
			}
			return
		}
		for p := range m.byPath {
			if p.Dir != "/nix/store" {
				t.Fatalf("%s accepted", p)
			}
		}
		for name := range m.byName {
			if name == "" || strings.HasPrefix(name, "/") {
				t.Fatalf("package name %q accepted", name)
			}
		}
	})
}

// TestMetadataOf: a store path's members win over its name's, member by
// member.
func TestMetadataOf(t *testing.T) {
	p, err := store.ParsePath("/gnu/store/" + strings.Repeat("b", 32) + "-hello-2.12.1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMetadata("meta.json", []byte(`{
		"hello": {"license": "GPL-3.0-or-later", "homepage": "https://gnu.org/"},
		"`+p.String()+`": {"homepage": "https://www.gnu.org/software/hello/", "description": "hi"}
	}`), "/gnu/store")
	if err != nil {
		t.Fatal(err)
	}
	want := Info{License: "GPL-3.0-or-later", Homepage: "https://www.gnu.org/software/hello/", Description: "hi"}
	if got := m.of(p, "hello"); got != want {
		t.Errorf("%+v, want %+v", got, want)
	}
	if got := m.of(p, "other"); got != (Info{Homepage: want.Homepage, Description: "hi"}) {
		t.Errorf("by path alone: %+v", got)
	}
}
