package store

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// The fixtures in testdata describe one closure, hello and its run-time
// dependencies, in every supported format:
//
//	pathinfo-array.json    nix path-info --json --recursive, Nix ≤ 2.18
//	pathinfo-object.json   the same, Nix 2.19+ (and --json-format 1)
//	pathinfo-v2.json       the same, --json-format 2 (Nix 2.33+): base names, storeDir
//	pathinfo-v3.json       the same, --json-format 3: structured signatures
//	dump-db.txt            nix-store --dump-db: base16 hashes, derivers
//	registration           closureInfo: sha256:<nix32> hashes, empty derivers
//	references-graph       exportReferencesGraph: no hashes, no sizes
//	guix-references-graph  the same from Guix, in /gnu/store
//	nix-graph.dot          nix-store --query --graph: no sizes, no self-references
//	guix-requisites        guix gc --requisites: paths only (see TestReadPathList)
//
// The versioned JSON forms and the Guix files are written by hand from the
// documented formats; Nix 2.8, the version at hand, cannot write them.
func TestLoadFixtures(t *testing.T) {
	tests := []struct {
		file     string
		storeDir string
		// withNAR: the file has NAR sizes and hashes.
		withNAR, withSelfRef bool
	}{
		{"pathinfo-array.json", "/nix/store", true, true},
		{"pathinfo-object.json", "/nix/store", true, true},
		{"pathinfo-v2.json", "/nix/store", true, true},
		{"pathinfo-v3.json", "/nix/store", true, true},
		{"dump-db.txt", "/nix/store", true, true},
		{"registration", "/nix/store", true, true},
		{"references-graph", "/nix/store", false, true},
		{"guix-references-graph", "/gnu/store", false, true},
		{"nix-graph.dot", "/nix/store", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			g, err := Load(tc.file, f)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, g)
			want := helloGraphIn(t, tc.storeDir, tc.withNAR, tc.withSelfRef)
			if !sameGraph(g, want) {
				t.Errorf("loaded graph differs from the expected one:\n got %v\nwant %v", dumpGraph(g), dumpGraph(want))
			}
		})
	}
}

// helloGraphIn is helloInfos moved to storeDir, with NAR sizes and hashes or
// without, with self-references or without.
func helloGraphIn(t testing.TB, storeDir string, withNAR, withSelfRefs bool) *Graph {
	infos := helloInfos(t)
	move := func(p Path) Path { p.Dir = storeDir; return p }
	for i := range infos {
		infos[i].Path = move(infos[i].Path)
		var refs []Path
		for _, ref := range infos[i].References {
			if move(ref) != infos[i].Path || withSelfRefs {
				refs = append(refs, move(ref))
			}
		}
		infos[i].References = refs
		if !withNAR {
			infos[i].NarSize, infos[i].NarHash = 0, ""
		}
	}
	g, err := NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func dumpGraph(g *Graph) string {
	var b strings.Builder
	for _, p := range g.Paths() {
		info, _ := g.Info(p)
		fmt.Fprintf(&b, "\n%s %d %s %s", p.Base(), info.NarSize, orUnknown(info.NarHash), strings.Join(pathStrings(info.References), ","))
	}
	return b.String()
}

func TestLoadAccepts(t *testing.T) {
	tests := []struct {
		name, input string
		wantPaths   int
	}{
		{"records with trailing blank lines", helloPath + "\n\n1\n" + helloPath + "\n\n\n", 1},
		{"records without final newline", helloPath + "\n\n0", 1},
		{"records with CRLF", helloPath + "\r\n\r\n0\r\n", 1},
		{"short form with deriver", helloPath + "\n/nix/store/" + hashGlibc + "-hello.drv\n0\n", 1},
		{"long form with SRI hash", helloPath + "\nsha256-" + strings.Repeat("A", 43) + "=\n5\n\n0\n", 1},
		{"long form with bare nix32 hash", helloPath + "\n" + strings.Repeat("0", 52) + "\n5\n\n0\n", 1},
		{"identical record twice", helloPath + "\n\n0\n" + helloPath + "\n\n0\n", 1},
		{"JSON after white space", " \n\t[{\"path\":\"" + helloPath + "\",\"references\":[]}]\n", 1},
		{"JSON null narSize", `[{"path":"` + helloPath + `","narSize":null,"references":[]}]`, 1},
		{"JSON unknown fields", `{"` + helloPath + `":{"references":[],"closureSize":5,"x":{"y":[1]}}}`, 1},
		{"JSON v2 store dir only at the top", `{"info":{"` + helloBase + `":{"references":["` + helloBase + `"]}},"storeDir":"/nix/store"}`, 1},
		{"JSON v2 store dir only in entries", `{"info":{"` + helloBase + `":{"storeDir":"/gnu/store","references":[]}}}`, 1},
		{"JSON v3 unknown top-level member", `{"version":3,"storeDir":"/s","x":{"y":[{}]},"info":{"` + helloBase + `":{"version":3,"references":[]}}}`, 1},
		{"DOT strict, bare name, no attributes", "strict digraph nix {\n\"" + helloBase + "\"\n}", 1},
		{"DOT comments and defaults", "digraph G { // Nix writes no comments\n/* but DOT allows them */ node [shape=box]; rankdir = LR\n\"" + helloBase + "\";}", 1},
		{"DOT edge chain", "digraph G {\"" + idn2Base + "\" -> \"" + glibcBase + "\" -> \"" + helloBase + "\" [color = \"black\"]}", 3},
		{"DOT escaped quote", "digraph G {\"" + helloBase + "\" [label = \"a \\\"b\\\"\"]}", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Load("in", strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, g)
			if g.Len() != tc.wantPaths {
				t.Errorf("loaded %d paths, want %d", g.Len(), tc.wantPaths)
			}
		})
	}
}

// TestLoadNarHashNotations loads one NAR hash in every notation the
// formats that carry one use, and a JSON narHash that says it is unknown.
func TestLoadNarHashNotations(t *testing.T) {
	const hash digest.Digest = "sha256:6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5"
	const ( // hash's digest in each base
		inBase16 = "6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5"
		inNix32  = "1dgy33n7254zkk4c0kzqpqqwcb574l93z84zld5mxcmhbdwxywv7"
		inBase64 = "Z3PfeVuwsl5Lo5+gPxIlpyzGMb74T8DInJ8UcewY/rU="
	)
	record := func(narHash string) string { return helloPath + "\n" + narHash + "\n5\n\n0\n" }
	array := func(narHash string) string {
		return `[{"path":"` + helloPath + `","narHash":` + narHash + `,"narSize":5,"references":[]}]`
	}
	tests := []struct {
		name, input string
		want        digest.Digest
	}{
		{"records base16 (dump-db)", record(inBase16), hash},
		{"records sha256:nix32 (closureInfo)", record("sha256:" + inNix32), hash},
		{"records SRI", record("sha256-" + inBase64), hash},
		{"JSON SRI (Nix 2.4+)", array(`"sha256-` + inBase64 + `"`), hash},
		{"JSON sha256:nix32 (Nix 2.3)", array(`"sha256:` + inNix32 + `"`), hash},
		{"JSON sha256:base16", array(`"sha256:` + inBase16 + `"`), hash},
		{"JSON null", array("null"), ""},
		{"JSON structured base16", array(`{"algorithm":"sha256","format":"base16","hash":"` + inBase16 + `"}`), hash},
		{"JSON structured base64", array(`{"format":"base64","hash":"` + inBase64 + `","algorithm":"sha256"}`), hash},
		{"JSON v2 SRI", `{"version":2,"storeDir":"/nix/store","info":{"` + helloBase + `":{"narHash":"sha256-` + inBase64 + `","references":[]}}}`, hash},
		{"JSON object SRI", `{"` + helloPath + `":{"narHash":"sha256-` + inBase64 + `","references":[]}}`, hash},
		{"JSON no narHash", `{"` + helloPath + `":{"references":[]}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Load("in", strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if info, _ := g.Info(mustParse(t, helloPath)); info.NarHash != tc.want {
				t.Errorf("NarHash = %q, want %q", info.NarHash, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	guixHello := "/gnu/store/" + hashHello + "-hello"
	versioned := func(members string) string { return "{" + members + "}" }
	jsonEntry := func(path string, refs ...string) string {
		return `{"path":"` + path + `","narSize":1,"references":["` + strings.Join(refs, `","`) + `"]}`
	}
	tests := []struct {
		name, input string
		wantErr     string // the complete message or a part of it, always with file name and position
	}{
		// Format detection.
		{"empty", "", "graph.txt: empty graph file"},
		{"white space only", " \n\n", "graph.txt: empty graph file"},
		{"garbage", "hello world", `graph.txt: unknown graph format: expected nix path-info JSON, registration records starting with a store path, nix-store --query --graph output or a store database, found "hello world"`},
		{"records after blank line", "\n" + helloPath + "\n\n0\n", "graph.txt: registration records must start with a store path on the first line"},

		// Records.
		{"bad count", helloPath + "\n\nx\n", `graph.txt:3: reference count "x" is not a number`},
		{"negative count", helloPath + "\n\n-1\n", `graph.txt:3: reference count "-1" is not a number`},
		{"missing reference", helloPath + "\n\n1\n" + glibcPath + "\n",
			"graph.txt:4: " + helloPath + " references " + glibcPath + ", which is not in the file"},
		{"missing reference in later record", helloPath + "\n\n0\n" + idn2Path + "\n\n2\n" + idn2Path + "\n" + unistrPath + "\n",
			"graph.txt:8: " + idn2Path + " references " + unistrPath},
		{"truncated references", helloPath + "\n\n2\n" + helloPath + "\n", "graph.txt:5: unexpected end of file, expected reference 2 of 2"},
		{"truncated record", helloPath + "\n", "graph.txt:2: unexpected end of file, expected a NAR hash or a deriver"},
		{"truncated count", helloPath + "\n\n", "graph.txt:3: unexpected end of file, expected a reference count"},
		{"huge count", helloPath + "\n\n99999999999999\n", "graph.txt:4: unexpected end of file, expected reference 1 of 99999999999999"},
		{"invalid reference", helloPath + "\n\n1\n/nix/store/../etc\n", `graph.txt:4: reference: invalid store path "/nix/store/../etc"`},
		{"dotdot path", "/nix/store/" + hashHello + "-..\n\n0\n", "graph.txt:1: invalid store path"},
		{"bad alphabet", "/nix/store/" + strings.Repeat("e", 32) + "-x\n\n0\n", "graph.txt:1: invalid store path"},
		{"count where deriver expected", helloPath + "\n0\n", `graph.txt:2: after the store path expected a NAR hash`},
		{"list of store paths", helloPath + "\n" + glibcPath + "\n", "graph.txt:2: deriver " + glibcPath + " is not a .drv"},
		{"invalid deriver", helloPath + "\n/nix/store/x.drv\n0\n", "graph.txt:2: deriver: invalid store path"},
		{"mixed store dirs", helloPath + "\n\n0\n" + guixHello + "\n\n0\n", "graph.txt:4: invalid store path " + `"` + guixHello + `": not in store directory /nix/store`},
		{"reference in other store dir", helloPath + "\n\n1\n" + guixHello + "\n", "graph.txt:4: reference: invalid store path"},
		{"bad hash in second long record", helloPath + "\n" + strings.Repeat("a", 64) + "\n5\n\n0\n" + glibcPath + "\n\n0\n",
			`graph.txt:7: expected a sha256 NAR hash, found ""`},
		{"bad size", helloPath + "\n" + strings.Repeat("a", 64) + "\nbig\n\n0\n", `graph.txt:3: NAR size "big" is not a number`},
		{"blank line between records", helloPath + "\n\n0\n\n" + glibcPath + "\n\n0\n", `graph.txt:5: expected a store path, found "` + glibcPath},
		{"duplicate record with other references", helloPath + "\n\n0\n" + helloPath + "\n\n1\n" + helloPath + "\n",
			"graph.txt:4: " + helloPath + " is listed again (first at line 1) with different data"},
		{"duplicate record with other NAR hash", helloPath + "\nsha256:" + strings.Repeat("0", 52) + "\n5\n\n0\n" + helloPath + "\n" + strings.Repeat("1", 64) + "\n5\n\n0\n",
			"graph.txt:6: " + helloPath + " is listed again (first at line 1) with different NAR hashes, " + string(zeroHash) + " and " + string(onesHash)},
		{"nix32 hash beyond 256 bits", helloPath + "\nsha256:2" + strings.Repeat("0", 51) + "\n5\n\n0\n", "graph.txt:2: after the store path expected a NAR hash"},
		{"bad nix32 hash in second long record", helloPath + "\n" + strings.Repeat("0", 52) + "\n5\n\n0\n" + glibcPath + "\nsha256:z" + strings.Repeat("0", 51) + "\n5\n\n0\n",
			`graph.txt:7: expected a sha256 NAR hash, found "sha256:z000`},
		{"overlong line", helloPath + "\n" + strings.Repeat("a", maxLineLen+10) + "\n", "graph.txt:2: line longer than 65536 bytes"},

		// nix path-info --json.
		{"JSON empty array", "[]", "graph.txt: no store paths"},
		{"JSON invalid path (array)", `[{"path":"` + helloPath + `","valid":false}]`,
			`graph.txt: entry 0 ("` + helloPath + `"): not valid ("valid": false): the path is not in the store`},
		{"JSON invalid path (object)", `{"` + glibcPath + `":{"references":[]},"` + helloPath + `":null}`,
			`graph.txt: entry 1 ("` + helloPath + `"): not valid (null): the path is not in the store`},
		{"JSON missing reference", "[" + jsonEntry(helloPath, glibcPath) + "]",
			"graph.txt: " + helloPath + " references " + glibcPath + ", which is not in the graph"},
		{"JSON invalid reference", "[" + jsonEntry(helloPath, helloPath, "/nix/store/"+hashGlibc+"-a/b") + "]",
			`graph.txt: entry 0 ("` + helloPath + `"): references: reference 1: invalid store path`},
		{"JSON invalid path", `[{"path":"/nix/store/x","references":[]}]`, `graph.txt: entry 0 ("/nix/store/x"): invalid store path`},
		{"JSON mixed store dirs", "[" + jsonEntry(helloPath, helloPath) + "," + jsonEntry(guixHello, guixHello) + "]",
			`graph.txt: entry 1 ("` + guixHello + `"): references: reference 0: invalid store path "` + guixHello + `": not in store directory /nix/store`},
		{"JSON no path", `[{"references":[]}]`, `graph.txt: entry 0: no "path"`},
		{"JSON no references", `[{"path":"` + helloPath + `"}]`, `graph.txt: entry 0 ("` + helloPath + `"): no "references"`},
		{"JSON negative size", `[{"path":"` + helloPath + `","narSize":-1,"references":[]}]`, `graph.txt: entry 0 ("` + helloPath + `"): narSize: "-1" is not a byte count`},
		{"JSON fractional size", `[{"path":"` + helloPath + `","narSize":1.5,"references":[]}]`, `narSize: "1.5" is not a byte count`},
		{"JSON wrong type", `[{"path":"` + helloPath + `","references":"x"}]`, `graph.txt: entry 0 ("` + helloPath + `"): references: offset 81: expected '[', found a string`},
		{"JSON bad narHash", `[{"path":"` + helloPath + `","narHash":"sha256-x","references":[]}]`,
			`graph.txt: entry 0 ("` + helloPath + `"): narHash: NAR hash "sha256-x": a sha256 digest is 44 base64 characters`},
		{"JSON narHash of another algorithm", `[{"path":"` + helloPath + `","narHash":"sha512-` + strings.Repeat("A", 86) + `==","references":[]}]`,
			`graph.txt: entry 0 ("` + helloPath + `"): narHash: NAR hash "sha512-AAA`},
		{"JSON narHash not a string", `{"` + helloPath + `":{"narHash":5,"references":[]}}`, `graph.txt: entry 0 ("` + helloPath + `"): narHash: offset 71: expected '"', found a number`},
		{"JSON structured narHash unclosed", `[{"path":"` + helloPath + `","narHash":{"algorithm":"sha256"`, `narHash: unexpected end of JSON input`},
		{"JSON duplicate key with other NAR hash", `{"` + helloPath + `":{"narHash":"sha256:` + strings.Repeat("0", 64) + `","references":[]},"` + helloPath + `":{"references":[]}}`,
			"graph.txt: " + helloPath + " is listed twice with different NAR hashes, " + string(zeroHash) + " and unknown"},
		{"JSON entry not an object", `[1]`, `graph.txt: entry 0: offset 1: expected '{', found a number`},
		{"JSON object entry not an object", `{"` + helloPath + `":[]}`, `graph.txt: entry 0 ("` + helloPath + `"): offset 60: expected '{', found an array`},
		{"JSON syntax error", "[\n{\"path\" \"x\"}]", `graph.txt: entry 0: offset 10: expected ':', found a string`},
		{"JSON truncated", `[{"path":"` + helloPath + `"`, `graph.txt: entry 0 ("` + helloPath + `"): unexpected end of JSON input`},
		{"JSON unclosed array", "[" + jsonEntry(helloPath, helloPath), "graph.txt: unexpected end of JSON input"},
		{"JSON trailing data", "[" + jsonEntry(helloPath, helloPath) + "] []", "graph.txt: offset 156: found an array after the JSON value"},
		{"JSON trailing garbage", "[" + jsonEntry(helloPath, helloPath) + "] x", "graph.txt: offset 156: found 'x' after the JSON value"},
		{"JSON cycle", "[" + jsonEntry(helloPath, glibcPath) + "," + jsonEntry(glibcPath, helloPath) + "]",
			"graph.txt: reference cycle between distinct store paths, which Nix and Guix cannot build: " + glibcPath + " -> " + helloPath + " -> " + glibcPath},

		// nix path-info --json --json-format 2 and 3.
		{"v2 unsupported version", versioned(`"version":4,"storeDir":"/nix/store","info":{}`), "graph.txt: unsupported path-info JSON version 4: expected 2 or 3"},
		{"v2 unsupported entry version", versioned(`"storeDir":"/nix/store","info":{"` + helloBase + `":{"version":1,"references":[]}}`),
			`graph.txt: info entry 0 ("` + helloBase + `"): unsupported path-info JSON version 1`},
		{"v2 version mismatch", versioned(`"version":2,"storeDir":"/nix/store","info":{"` + helloBase + `":{"version":3,"references":[]}}`),
			`graph.txt: info entry 0 ("` + helloBase + `"): version 3 differs from the top-level version 2`},
		{"v2 no store dir", versioned(`"version":2,"info":{"` + helloBase + `":{"references":[]}}`),
			`graph.txt: info entry 0 ("` + helloBase + `"): no "storeDir", neither in the entry nor at the top level`},
		{"v2 store dir mismatch", versioned(`"info":{"` + helloBase + `":{"storeDir":"/gnu/store","references":[]}},"storeDir":"/nix/store"`),
			`graph.txt: info entry 0 ("` + helloBase + `"): storeDir "/gnu/store" differs from the top-level storeDir "/nix/store"`},
		{"v2 relative store dir", versioned(`"storeDir":"nix/store","info":{}`), `graph.txt: "storeDir": store directory "nix/store" is not absolute`},
		{"v2 store dir with dotdot", versioned(`"storeDir":"/nix/../etc","info":{}`), `graph.txt: "storeDir": store directory "/nix/../etc" is not clean`},
		{"v2 store dir not a string", versioned(`"storeDir":5,"info":{}`), `graph.txt: "storeDir": offset 12: expected '"', found a number`},
		{"v2 invalid path", versioned(`"storeDir":"/nix/store","info":{"` + helloBase + `":null}`),
			`graph.txt: info entry 0 ("` + helloBase + `"): not valid (null): the path is not in the store`},
		{"v2 absolute reference", versioned(`"storeDir":"/nix/store","info":{"` + helloBase + `":{"references":["` + helloPath + `"]}}`),
			`graph.txt: info entry 0 ("` + helloBase + `"): reference 0: invalid base name "` + helloPath + `"`},
		{"v2 key with slash", versioned(`"storeDir":"/nix/store","info":{"x/` + helloBase + `":{"references":[]}}`), `graph.txt: info entry 0 ("x/` + helloBase + `"): invalid base name`},
		{"v2 missing reference", versioned(`"storeDir":"/nix/store","info":{"` + helloBase + `":{"references":["` + glibcBase + `"]}}`),
			"graph.txt: " + helloPath + " references " + glibcPath + ", which is not in the graph"},
		{"v2 no info", versioned(`"version":2,"storeDir":"/nix/store"`), "graph.txt: unknown JSON graph format"},
		{"unknown JSON object", versioned(`"hello":"world"`), "graph.txt: unknown JSON graph format"},
		{"v2 info not an object", versioned(`"info":[]`), `graph.txt: "info" (an object keyed by base name): offset 8: expected '{', found an array`},
		{"v2 truncated", `{"storeDir":"/nix/store","info":{"` + helloBase + `":{"references":[`, `graph.txt: info entry 0 ("` + helloBase + `"): references: unexpected end of JSON input`},
		{"v2 truncated after info", `{"info":{}`, `graph.txt: unexpected end of JSON input`},

		// nix-store --query --graph.
		{"DOT truncated", "digraph G {\n\"" + helloBase + "\" [label = \"hello\"];\n", "graph.txt:3: expected a statement, found the end of the file"},
		{"DOT truncated string", "digraph G {\n\"" + helloBase, "graph.txt:2: unexpected end of file in the string starting on this line"},
		{"DOT truncated attributes", "digraph G {\n\"" + helloBase + "\" [label", "graph.txt:2: unexpected end of file in the attribute list starting on this line"},
		{"DOT not a digraph", "digraphs {}", `graph.txt:1: unknown graph format: expected nix-store --query --graph output starting with digraph, found "digraphs"`},
		{"DOT quoted keyword", `"digraph" {}`, "graph.txt: unknown graph format"},
		{"DOT undirected edge", "digraph {\"" + helloBase + "\" -- \"" + glibcBase + "\"}", "graph.txt:1: expected -> (undirected edges"},
		{"DOT invalid node", "digraph {\n\n\"hello\"}", `graph.txt:3: node: invalid base name "hello"`},
		{"DOT node with dotdot", "digraph {\"" + hashHello + "-..\"}", "graph.txt:1: node: invalid base name"},
		{"DOT full path node", "digraph {\"" + helloPath + "\"}", "graph.txt:1: node: invalid base name"},
		{"DOT subgraph", "digraph { subgraph x {} }", "graph.txt:1: subgraphs are not part of a store graph"},
		{"DOT garbage after graph", "digraph {\"" + helloBase + "\"} x", `graph.txt:1: unexpected "x" after the end of the graph`},
		{"DOT HTML string", "digraph {<x>}", `graph.txt:1: unexpected '<'`},
		{"DOT empty", "digraph {}", "graph.txt: no store paths"},
		{"DOT cycle", "digraph {\"" + helloBase + "\" -> \"" + glibcBase + "\" -> \"" + helloBase + "\"}", "graph.txt: reference cycle between distinct store paths"},

		// Names that are not ASCII, or too long.
		{"records non-UTF-8 name", "/nix/store/" + hashHello + "-h\xffllo\n\n0\n", `graph.txt:1: invalid store path "/nix/store/` + hashHello + `-h\xffllo": name "h\xffllo" contains "\xff"`},
		{"records over-long name", "/nix/store/" + hashHello + "-" + strings.Repeat("n", maxNameLen+1) + "\n\n0\n", "graph.txt:1: invalid store path"},
		{"JSON non-UTF-8 reference", `[{"path":"` + helloPath + `","references":["` + helloPath + "\xff" + `"]}]`, `references: reference 0: invalid store path`},
		{"JSON escaped non-ASCII name", `[{"path":"` + helloPath + `\u00e9","references":[]}]`, `graph.txt: entry 0 ("` + helloPath + `é"): invalid store path`},
		{"v2 over-long name", versioned(`"storeDir":"/nix/store","info":{"` + hashHello + "-" + strings.Repeat("n", maxNameLen+1) + `":{"references":[]}}`), "is 212 bytes long, more than 211"},
		{"DOT non-UTF-8 node", "digraph {\"" + hashHello + "-\xff\"}", "graph.txt:1: node: invalid base name"},

		// A plain list of paths is not a graph.
		{"path list", helloPath + "\n" + glibcPath + "\n" + idn2Path + "\n", "graph.txt:2: deriver " + glibcPath + " is not a .drv; is this a plain list of store paths"},
		{"path list with derivation", helloPath + "\n/nix/store/" + hashGlibc + "-x.drv\n" + idn2Path + "\n", `graph.txt:3: reference count "` + idn2Path + `" is not a number; is this a plain list of store paths`},
		{"records cycle", helloPath + "\n\n1\n" + glibcPath + "\n" + glibcPath + "\n\n1\n" + helloPath + "\n", "graph.txt: reference cycle between distinct store paths"},

		{"JSON duplicate key with other data", `{"` + helloPath + `":{"references":[]},"` + helloPath + `":{"references":["` + helloPath + `"]}}`,
			"graph.txt: " + helloPath + " is listed twice with different data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Load("graph.txt", strings.NewReader(tc.input))
			if err == nil {
				t.Fatalf("Load succeeded with %d paths, want error %q", g.Len(), tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error\n  %s\ndoes not contain\n  %s", err, tc.wantErr)
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "graph.txt:") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

// endless is an endless stream after a prefix, of a repeated byte pattern
// or, if lines is set, of lines repeated; it counts what is read from it.
type endless struct {
	prefix  string
	pattern byte
	lines   string
	next    int // position in lines
	read    int
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.prefix)
	e.prefix = e.prefix[n:]
	for i := n; i < len(p); i++ {
		if e.lines == "" {
			p[i] = e.pattern
			continue
		}
		p[i] = e.lines[e.next]
		e.next = (e.next + 1) % len(e.lines)
	}
	e.read += len(p)
	return len(p), nil
}

// TestLoadGarbageIsBounded checks that Load gives up on endless input after
// reading a bounded amount of it.
func TestLoadGarbageIsBounded(t *testing.T) {
	tests := []struct {
		name    string
		input   *endless
		limit   int
		wantErr string
	}{
		{"white space", &endless{pattern: ' '}, 2 * maxLineLen, "white space"},
		{"binary", &endless{pattern: 0}, 2 * maxLineLen, "unknown graph format"},
		{"endless line", &endless{prefix: "/", pattern: 'a'}, 2 * maxLineLen, "line longer than"},
		{"endless JSON string", &endless{prefix: `[{"path":"`, pattern: 'a'}, 2 * maxEntrySize, "larger than"},
		{"endless JSON key", &endless{prefix: `{"`, pattern: 'a'}, 2 * maxEntrySize, "larger than"},
		{"endless references", &endless{prefix: helloPath + "\n\n99999999999999\n", pattern: '\n'}, 2 * maxLineLen, "reference: invalid store path"},
		{"endless DOT string", &endless{prefix: "digraph G {\"", pattern: 'a'}, 2 * maxLineLen, "string longer than"},
		{"endless DOT ID", &endless{prefix: "digraph G {", pattern: 'a'}, 2 * maxLineLen, "ID longer than"},
		{"endless DOT attributes", &endless{prefix: "digraph G {\"" + helloBase + "\" [", pattern: 'a'}, 2 * maxLineLen, "attribute list longer than"},
		{"endless DOT comment", &endless{prefix: "digraph G {/*", pattern: 'a'}, 2 * maxLineLen, "comment longer than"},
		{"endless v2 key", &endless{prefix: `{"info":{"`, pattern: 'a'}, 2 * maxEntrySize, "larger than"},
		{"endless v2 member", &endless{prefix: `{"version":3,"x":[`, pattern: ' '}, 2 * maxEntrySize, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("in", tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Load error = %v, want %q", err, tc.wantErr)
			}
			if tc.input.read > tc.limit {
				t.Errorf("Load read %d bytes, more than %d", tc.input.read, tc.limit)
			}
		})
	}
}

// TestLoadGarbage100MB feeds 100 MB of garbage after the start of each
// format: the error must name the file, and the memory used must stay far
// below the size of the input.
func TestLoadGarbage100MB(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 100 MB per format")
	}
	const size = 100 << 20
	random := func(seed uint64) io.Reader {
		return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), size)
	}
	repeat := func(prefix, line string) io.Reader {
		return io.MultiReader(strings.NewReader(prefix), io.LimitReader(&endless{pattern: 0, lines: line}, size))
	}
	tests := []struct {
		name  string
		input io.Reader
	}{
		{"random", random(1)},
		{"records then random", io.MultiReader(strings.NewReader(helloPath+"\n\n1\n"), random(2))},
		{"records with a reference count too large", repeat(helloPath+"\n\n99999999999\n", glibcPath+"\n")},
		{"JSON then random", io.MultiReader(strings.NewReader(`[{"path":"`+helloPath+`","references":[`), random(3))},
		{"JSON array of one endless entry", repeat(`[{"path":"`+helloPath+`","references":["`+helloPath+`"],"x":[`, "[1,2,3],")},
		{"DOT then random", io.MultiReader(strings.NewReader("digraph G {\n"), random(4))},
		{"DOT with endless edges, unclosed", repeat("digraph G {\n", "\""+helloBase+"\" -> \""+glibcBase+"\" [color = \"black\"];\n")},
		{"database header then random", io.MultiReader(strings.NewReader(sqliteHeader), random(5))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peak := peakHeap(t, func() {
				if _, err := Load("garbage", tc.input); err == nil || !strings.HasPrefix(err.Error(), "garbage:") {
					t.Errorf("Load error = %v, want one naming the file", err)
				} else {
					t.Log(quote(err.Error()))
				}
			})
			if peak > 64<<20 {
				t.Errorf("the heap grew by %d MiB while reading 100 MiB of garbage", peak>>20)
			}
		})
	}
}

// peakHeap runs f and returns by how much the heap in use grew at most.
func peakHeap(t *testing.T, f func()) uint64 {
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	base, peak := stats.HeapInuse, stats.HeapInuse
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				runtime.ReadMemStats(&stats)
				peak = max(peak, stats.HeapInuse)
			}
		}
	}()
	f()
	close(done)
	<-sampled
	return peak - base
}

// TestLoadReaderError checks that a failing reader is reported, not taken
// for the end of the file.
func TestLoadReaderError(t *testing.T) {
	for _, prefix := range []string{"", helloPath + "\n\n1\n", `[{"path":`} {
		r := io.MultiReader(strings.NewReader(prefix), errReader{})
		if _, err := Load("in", r); err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("Load(%q + failing reader) error = %v, want the reader's error", prefix, err)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestStructuredNarHash: a NAR hash given as an object is read from any
// member holding a SHA-256 hash's digits; a shape not understood (another
// algorithm, digits that are no hash) leaves the hash unknown and the
// graph readable.
func TestStructuredNarHash(t *testing.T) {
	hex := strings.Repeat("0", 64)
	for object, want := range map[string]digest.Digest{
		`{"algorithm":"sha256","format":"base16","hash":"` + hex + `"}`: "sha256:" + digest.Digest(hex),
		`{"algo":"sha256","base16":"` + hex + `"}`:                      "sha256:" + digest.Digest(hex),
		`{"hash":"` + hex + `"}`:                                        "sha256:" + digest.Digest(hex),
		`{"algorithm":"sha1","hash":"` + strings.Repeat("0", 40) + `"}`: "",
		`{"algorithm":"sha256","hash":"x","size":32}`:                   "",
	} {
		g, err := Load("graph.json", strings.NewReader(`[{"path":"`+helloPath+`","narHash":`+object+`,"references":[]}]`))
		if err != nil {
			t.Errorf("%s: %v", object, err)
			continue
		}
		p, _ := ParsePath(helloPath)
		if info, _ := g.Info(p); info.NarHash != want {
			t.Errorf("%s: NAR hash %q, want %q", object, info.NarHash, want)
		}
	}
}
