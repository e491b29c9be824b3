package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// writerTestPath makes a valid store path in dir whose hash is derived
// from name.
func writerTestPath(dir, name string) Path {
	sum := sha256.Sum256([]byte(dir + name))
	hash := make([]byte, hashLen)
	for i := range hash {
		hash[i] = hashAlphabet[sum[i]%32]
	}
	return Path{Dir: dir, Hash: string(hash), Name: name}
}

// writerTestGraph is a small graph in dir with a self-reference, a path
// without references, a path of unknown size and hash, a path of known size
// and unknown hash, and a diamond.
func writerTestGraph(t *testing.T, dir string) *Graph {
	t.Helper()
	app, lib, libc, data := writerTestPath(dir, "app-1.0"), writerTestPath(dir, "lib"), writerTestPath(dir, "libc-2.39"), writerTestPath(dir, "data")
	g, err := NewGraph([]Info{
		{Path: app, References: []Path{lib, data, app, libc}, NarSize: 1234, NarHash: writerTestHash},
		{Path: lib, References: []Path{libc}, NarSize: 99},
		{Path: libc, References: []Path{libc}, NarSize: 31230776, NarHash: zeroHash},
		{Path: data}, // unknown size and hash, no references
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// writerTestHash is a NAR hash whose SRI form has both characters of base64
// beyond letters and digits, + and /, which JSON writes as they are.
const writerTestHash digest.Digest = "sha256:fbffbf00000000000000000000000000000000000000000000000000000000ff"

// sameGraphData compares paths, sizes, hashes and references.
func sameGraphData(t *testing.T, got, want *Graph) {
	t.Helper()
	if got.StoreDir() != want.StoreDir() || !slices.Equal(got.Paths(), want.Paths()) {
		t.Fatalf("paths differ:\n got %s %v\nwant %s %v", got.StoreDir(), got.Paths(), want.StoreDir(), want.Paths())
	}
	for _, p := range want.Paths() {
		a, _ := got.Info(p)
		b, _ := want.Info(p)
		if a.NarSize != b.NarSize || a.NarHash != b.NarHash || !slices.Equal(a.References, b.References) {
			t.Errorf("%s: got %d %q %v, want %d %q %v", p, a.NarSize, a.NarHash, a.References, b.NarSize, b.NarHash, b.References)
		}
	}
}

func writeJSON(t *testing.T, g *Graph) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WritePathInfoJSON(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWritePathInfoJSONFormat(t *testing.T) {
	g := writerTestGraph(t, "/nix/store")
	p := func(name string) string { return writerTestPath("/nix/store", name).String() }
	got := string(writeJSON(t, g))

	// The exact text: keys and references sorted, two-space indent, a
	// trailing newline, [] for no references, narHash in SRI form and only
	// where known.
	entries := map[string]string{
		p("app-1.0"): `{"narHash": "sha256-+/+/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP8=", "narSize": 1234, "references": [` +
			strings.Join(sortedQuoted(p("app-1.0"), p("lib"), p("data"), p("libc-2.39")), ", ") + `]}`,
		p("lib"):       `{"narSize": 99, "references": ["` + p("libc-2.39") + `"]}`,
		p("libc-2.39"): `{"narHash": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "narSize": 31230776, "references": ["` + p("libc-2.39") + `"]}`,
		p("data"):      `{"narSize": 0, "references": []}`,
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var compact strings.Builder
	compact.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			compact.WriteString(",")
		}
		compact.WriteString(`"` + k + `": ` + entries[k])
	}
	compact.WriteString("}")
	var want bytes.Buffer
	if err := json.Indent(&want, []byte(compact.String()), "", "  "); err != nil {
		t.Fatal(err)
	}
	want.WriteString("\n")
	if got != want.String() {
		t.Errorf("output:\n%s\nwant:\n%s", got, want.String())
	}

	// encoding/json writes the same bytes for the same data.
	type entry struct {
		NarHash    string   `json:"narHash,omitempty"`
		NarSize    uint64   `json:"narSize"`
		References []string `json:"references"`
	}
	var decoded map[string]entry
	if err := json.Unmarshal([]byte(got), &decoded); err != nil {
		t.Fatal(err)
	}
	again, err := json.MarshalIndent(decoded, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if string(again)+"\n" != got {
		t.Errorf("encoding/json re-encodes differently:\n%s", again)
	}
}

func sortedQuoted(s ...string) []string {
	slices.Sort(s)
	for i := range s {
		s[i] = `"` + s[i] + `"`
	}
	return s
}

func TestWritePathInfoJSONRoundTrip(t *testing.T) {
	graphs := map[string]*Graph{
		"nix":  writerTestGraph(t, "/nix/store"),
		"guix": writerTestGraph(t, "/gnu/store"),
		// JSON escapes and UTF-8 in the store directory.
		"odd store dir": writerTestGraph(t, `/tmp/a "quoted"\dir/störe`),
	}
	single, err := NewGraph([]Info{{Path: writerTestPath("/nix/store", "alone")}})
	if err != nil {
		t.Fatal(err)
	}
	graphs["single path"] = single
	// The fixtures, as loaded from other formats.
	for _, file := range []string{"pathinfo-object.json", "pathinfo-array.json", "pathinfo-v3.json", "dump-db.txt", "registration", "guix-references-graph", "nix-graph.dot"} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		g, err := Load(file, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		graphs[file] = g
	}
	for name, g := range graphs {
		t.Run(name, func(t *testing.T) {
			out := writeJSON(t, g)
			back, err := Load("out.json", bytes.NewReader(out))
			if err != nil {
				t.Fatalf("Load of the output: %v\n%s", err, out)
			}
			sameGraphData(t, back, g)
			// Writing is deterministic and stable across a round trip.
			if again := writeJSON(t, back); !bytes.Equal(again, out) {
				t.Errorf("second write differs:\n%s\nfirst:\n%s", again, out)
			}
			if !json.Valid(out) {
				t.Errorf("not valid JSON:\n%s", out)
			}
		})
	}
}

func TestWritePathInfoJSONClosure(t *testing.T) {
	g := writerTestGraph(t, "/nix/store")
	sub, err := g.Closure(writerTestPath("/nix/store", "lib"))
	if err != nil {
		t.Fatal(err)
	}
	out := string(writeJSON(t, sub))
	if strings.Contains(out, "app-1.0") || strings.Contains(out, "-data") || !strings.Contains(out, "-libc-2.39") {
		t.Errorf("closure of lib:\n%s", out)
	}
}

func TestWritePathInfoJSONEdgeCases(t *testing.T) {
	empty, err := NewGraph(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(writeJSON(t, empty)); got != "{}\n" {
		t.Errorf("empty graph: %q", got)
	}
	if err := WritePathInfoJSON(new(bytes.Buffer), nil); err == nil {
		t.Error("nil graph: no error")
	}
	bad := writerTestGraph(t, "/tmp/\xffstore")
	if err := WritePathInfoJSON(new(bytes.Buffer), bad); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8 store directory: err = %v", err)
	}
	if err := WritePathInfoJSON(failingWriter{}, writerTestGraph(t, "/nix/store")); err == nil {
		t.Error("write error not reported")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }
