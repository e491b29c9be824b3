package store

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures in testdata describe one closure, hello and its run-time
// dependencies, in every supported format:
//
//	pathinfo-array.json    nix path-info --json --recursive, Nix ≤ 2.18
//	pathinfo-object.json   the same, Nix 2.19+
//	dump-db.txt            nix-store --dump-db: base16 hashes, derivers
//	registration           closureInfo: sha256:<nix32> hashes, empty derivers
//	references-graph       exportReferencesGraph: no hashes, no sizes
//	guix-references-graph  the same from Guix, in /gnu/store
func TestLoadFixtures(t *testing.T) {
	tests := []struct {
		file      string
		storeDir  string
		withSizes bool
	}{
		{"pathinfo-array.json", "/nix/store", true},
		{"pathinfo-object.json", "/nix/store", true},
		{"dump-db.txt", "/nix/store", true},
		{"registration", "/nix/store", true},
		{"references-graph", "/nix/store", false},
		{"guix-references-graph", "/gnu/store", false},
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
			want := helloGraphIn(t, tc.storeDir, tc.withSizes)
			if !sameGraph(g, want) {
				t.Errorf("loaded graph differs from the expected one:\n got %v\nwant %v", dumpGraph(g), dumpGraph(want))
			}
		})
	}
}

// helloGraphIn is helloInfos moved to storeDir, with sizes or without.
func helloGraphIn(t *testing.T, storeDir string, withSizes bool) *Graph {
	infos := helloInfos(t)
	move := func(p Path) Path { p.Dir = storeDir; return p }
	for i := range infos {
		infos[i].Path = move(infos[i].Path)
		for j := range infos[i].References {
			infos[i].References[j] = move(infos[i].References[j])
		}
		if !withSizes {
			infos[i].NarSize = 0
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
		b.WriteString("\n" + p.Base() + " " + strings.Join(pathStrings(info.References), ","))
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

func TestLoadErrors(t *testing.T) {
	guixHello := "/gnu/store/" + hashHello + "-hello"
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
		{"garbage", "hello world", `graph.txt: unknown graph format: expected nix path-info JSON or registration records starting with a store path, found "hello world"`},
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
			`graph.txt: entry 0 ("` + helloPath + `"): reference 1: invalid store path`},
		{"JSON invalid path", `[{"path":"/nix/store/x","references":[]}]`, `graph.txt: entry 0 ("/nix/store/x"): invalid store path`},
		{"JSON mixed store dirs", "[" + jsonEntry(helloPath, helloPath) + "," + jsonEntry(guixHello, guixHello) + "]",
			`graph.txt: entry 1 ("` + guixHello + `"): invalid store path "` + guixHello + `": not in store directory /nix/store`},
		{"JSON no path", `[{"references":[]}]`, `graph.txt: entry 0: no "path"`},
		{"JSON no references", `[{"path":"` + helloPath + `"}]`, `graph.txt: entry 0 ("` + helloPath + `"): no "references"`},
		{"JSON negative size", `[{"path":"` + helloPath + `","narSize":-1,"references":[]}]`, `graph.txt: entry 0 ("` + helloPath + `"): narSize "-1" is not a byte count`},
		{"JSON fractional size", `[{"path":"` + helloPath + `","narSize":1.5,"references":[]}]`, `narSize "1.5" is not a byte count`},
		{"JSON wrong type", `[{"path":"` + helloPath + `","references":"x"}]`, `graph.txt: entry 0: references: unexpected JSON string`},
		{"JSON entry not an object", `[1]`, `graph.txt: entry 0: expected an object, found a JSON number`},
		{"JSON object entry not an object", `{"` + helloPath + `":[]}`, `graph.txt: entry 0 ("` + helloPath + `"): expected an object, found a JSON array`},
		{"JSON syntax error", "[\n{\"path\" \"x\"}]", `graph.txt: entry 0: invalid character '"' after object key`},
		{"JSON truncated", `[{"path":"` + helloPath + `"`, "graph.txt: entry 0: unexpected end of JSON input"},
		{"JSON unclosed array", "[" + jsonEntry(helloPath, helloPath), "graph.txt: unexpected end of JSON input"},
		{"JSON trailing data", "[" + jsonEntry(helloPath, helloPath) + "] []", "graph.txt: unexpected [ after the JSON value"},
		{"JSON trailing garbage", "[" + jsonEntry(helloPath, helloPath) + "] x", "graph.txt: invalid character 'x'"},
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

// endless is an endless stream of a repeated pattern after a prefix; it
// counts what is read from it.
type endless struct {
	prefix  string
	pattern byte
	read    int
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.prefix)
	e.prefix = e.prefix[n:]
	for i := n; i < len(p); i++ {
		p[i] = e.pattern
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
