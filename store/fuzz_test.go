package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// testdataFiles returns the contents of every fixture in testdata.
func testdataFiles(f *testing.F) [][]byte {
	names, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	var files [][]byte
	for _, name := range names {
		if info, err := os.Stat(name); err != nil || info.IsDir() {
			continue // testdata/fuzz holds the fuzzer's own corpus
		}
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, data)
	}
	return files
}

func FuzzParsePath(f *testing.F) {
	for _, file := range testdataFiles(f) {
		for _, line := range strings.Split(string(file), "\n") {
			f.Add(line)
		}
	}
	for _, s := range []string{
		helloPath + "/bin/hello", helloPath + "/", "/nix/store/" + hashHello + "-..",
		"/nix/store/../" + hashHello + "-x", "//" + hashHello + "-x", "/" + hashHello + "-x",
		helloPath + "/" + hashGlibc + "-glibc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err == nil {
			if p.String() != s {
				t.Fatalf("ParsePath(%q).String() = %q", s, p.String())
			}
			if err := p.check(); err != nil {
				t.Fatalf("ParsePath(%q) returned a path that fails its own check: %v", s, err)
			}
			if strings.Contains(p.Base(), "/") || p.Name == "" || p.Name[0] == '.' {
				t.Fatalf("ParsePath(%q) = %+v: bad base name", s, p)
			}
			text, err := p.MarshalText()
			var back Path
			if err != nil || back.UnmarshalText(text) != nil || back != p {
				t.Fatalf("text round trip of %+v failed: %q, %v, %+v", p, text, err, back)
			}
			if sub, rest, err := SplitSubPath(s); err != nil || sub != p || rest != "" {
				t.Fatalf("SplitSubPath(%q) = %+v, %q, %v; want %+v, \"\"", s, sub, rest, err, p)
			}
		}

		sub, rest, err := SplitSubPath(s)
		if err == nil {
			if sub.check() != nil {
				t.Fatalf("SplitSubPath(%q) returned an invalid path %+v", s, sub)
			}
			joined := sub.String()
			if rest != "" {
				joined += "/" + rest
			}
			if joined != s || strings.HasPrefix(rest, "/") {
				t.Fatalf("SplitSubPath(%q) = %+v, %q: does not put s back together", s, sub, rest)
			}
		}
	})
}

func FuzzLoad(f *testing.F) {
	for _, file := range testdataFiles(f) {
		f.Add(file)
	}
	for _, s := range []string{
		"", "[]", "{}", "null", "[null]", `{"` + helloPath + `":null}`,
		helloPath + "\n\n1\n" + helloPath + "\n",
		helloPath + "\n" + strings.Repeat("a", 64) + "\n5\n\n0\n",
		`{"info":{"` + helloBase + `":{"references":[]}},"storeDir":"/nix/store","version":3}`,
		"digraph G {\n\"" + helloBase + "\" -> \"" + glibcBase + "\";\n}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Load("fuzz.graph", bytes.NewReader(data))
		checkLoaded(t, g, err)
	})
}

// The targets below fuzz one format each: their inputs start as that
// format, where FuzzLoad's often turn into another.

func FuzzLoadRecords(f *testing.F) {
	addSeeds(f, "dump-db.txt", "registration", "references-graph", "guix-references-graph")
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := loadWith(readRecords, data)
		checkLoaded(t, g, err)
	})
}

func FuzzLoadPathInfoJSON(f *testing.F) {
	addSeeds(f, "pathinfo-array.json", "pathinfo-object.json", "pathinfo-v2.json", "pathinfo-v3.json")
	f.Add([]byte(`[{"path":"` + helloPath + `","references":["\u002Fnix/store/` + helloBase + `"],"x":[{"y":-1.5e+3},true,null,"\ud83d\ude00"]}]`))
	f.Add([]byte(`{"` + helloPath + `":{"narHash":{"algorithm":"sha256","format":"base16","hash":"` + strings.Repeat("0f", 32) + `"},"references":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := loadWith(readPathInfoJSON, data)
		checkLoaded(t, g, err)
		if err == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}

func FuzzLoadDot(f *testing.F) {
	addSeeds(f, "nix-graph.dot")
	f.Add([]byte("strict digraph {/* c */ \"" + helloBase + "\" -> \"" + glibcBase + "\" [a=\"]\\\"\"]; // c\n x = y }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := loadWith(func(name string, r io.Reader) ([]Path, []idNode, error) {
			return readDot(name, bufio.NewReader(r))
		}, data)
		checkLoaded(t, g, err)
	})
}

func FuzzReadPathList(f *testing.F) {
	addSeeds(f, "guix-requisites")
	f.Fuzz(func(t *testing.T, data []byte) {
		paths, err := ReadPathList("fuzz.graph", bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.graph:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(paths) == 0 || !slices.IsSortedFunc(paths, Path.Compare) || len(slices.Compact(slices.Clone(paths))) != len(paths) {
			t.Fatalf("paths not sorted, unique and non-empty: %v", paths)
		}
		for _, p := range paths {
			if err := p.check(); err != nil || p.Dir != paths[0].Dir {
				t.Fatalf("invalid path %+v: %v", p, err)
			}
		}
	})
}

// FuzzLoadDB fuzzes store databases: mutated database files, read through
// Load, which copies them to a temporary file.
func FuzzLoadDB(f *testing.F) {
	for _, schema := range []string{nixDBSchema, guixDBSchema} {
		file := filepath.Join(f.TempDir(), "db.sqlite")
		db := openTestDB(f, file, schema)
		insertGraph(f, db, helloGraphIn(f, "/nix/store", true, true))
		checkpoint(f, db)
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Load("fuzz.graph", bytes.NewReader(append([]byte(sqliteHeader), data[min(len(data), len(sqliteHeader)):]...)))
		checkLoaded(t, g, err)
	})
}

// FuzzParseNarHash checks that a NAR hash read in any notation is the
// canonical digest, and that Nix's other notations of it read back the same.
func FuzzParseNarHash(f *testing.F) {
	for _, s := range []string{
		"sha256-Z3PfeVuwsl5Lo5+gPxIlpyzGMb74T8DInJ8UcewY/rU=",
		"sha256:1dgy33n7254zkk4c0kzqpqqwcb574l93z84zld5mxcmhbdwxywv7",
		"6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5",
		"sha256:z" + strings.Repeat("0", 51),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseNarHash(s)
		if err != nil {
			return
		}
		if checkNarHash(d) != nil || d == "" {
			t.Fatalf("parseNarHash(%q) = %q, not a canonical digest", s, d)
		}
		nixHash, err := NixHash(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{nixHash, strings.TrimPrefix(string(d), "sha256:"), string(appendSRIDigest([]byte("sha256-"), d))} {
			if back, err := parseNarHash(other); err != nil || back != d {
				t.Fatalf("parseNarHash(%q) = %q, %v; %q gave %q", other, back, err, s, d)
			}
		}
	})
}

// FuzzJSONString checks the JSON reader's strings and numbers against
// encoding/json.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\ud83d\ude00\ud800\u0041\udc00"`, `"\"\\\/\b\f\n\r\t"`, `"\x"`, `"a`, `"\u12"`, "\"\x01\"", `-0.5e+10`, `01`, `1.`, `-`, `1e5`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j := newJSONReader(bytes.NewReader(data))
		var got any
		var err error
		switch c, _ := j.peek(); {
		case c == '"':
			var s []byte
			if s, err = j.str(); err == nil {
				got = string(s)
			}
		case c == '-' || '0' <= c && c <= '9':
			var n []byte
			if n, err = j.number(); err == nil {
				got, _ = strconv.ParseFloat(string(n), 64) // ±Inf where encoding/json fails: not compared
			}
		default:
			return
		}
		if err == nil {
			err = j.end()
		}
		if valid := json.Valid(data); (err == nil) != valid {
			t.Fatalf("%q: reader error %v, but json.Valid is %v", data, err, valid)
		}
		var want any
		if err == nil && json.Unmarshal(data, &want) == nil && utf8.Valid(data) && got != want {
			t.Fatalf("%q: reader %v, encoding/json %v", data, got, want)
		}
	})
}

// FuzzSearch checks the scanner's search, fed in chunks as a file is read,
// against the definition.
func FuzzSearch(f *testing.F) {
	c := mustCandidates(f, testPath("a"), testPath("b"), testPath("c"))
	f.Add([]byte("x"+testPath("a").Hash+testPath("b").Hash[:20]), uint16(7))
	f.Add([]byte(strings.Repeat(testPath("c").Hash[1:], 3)+testPath("c").Hash), uint16(31))
	f.Fuzz(func(t *testing.T, data []byte, chunkSize uint16) {
		dir := t.TempDir()
		root := testPath("root")
		if err := os.WriteFile(filepath.Join(dir, root.Base()), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		s := newScannerChunked(os.DirFS(dir), c, 1+int(chunkSize)%200)
		info, err := s.scan(ctx, root)
		s.close()
		if err != nil {
			t.Fatal(err)
		}
		want := naiveSearch(c, data)
		slices.SortFunc(want, Path.Compare)
		if want = slices.Compact(want); !slices.Equal(info.References, want) {
			t.Fatalf("scan found %v, want %v", info.References, want)
		}
	})
}

// addSeeds adds fixtures from testdata to the seed corpus.
func addSeeds(f *testing.F, names ...string) {
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// loadWith loads data with one format's reader, as Load would.
func loadWith(read func(string, io.Reader) ([]Path, []idNode, error), data []byte) (*Graph, error) {
	paths, nodes, err := read("fuzz.graph", bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return graphFrom("fuzz.graph", paths, nodes)
}

// checkLoaded checks what a loader returned for fuzz input.
func checkLoaded(t *testing.T, g *Graph, err error) {
	if err != nil {
		if g != nil {
			t.Fatalf("returned both a graph and an error: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "fuzz.graph:") {
			t.Fatalf("error does not name the file: %v", err)
		}
		return
	}
	if g.Len() == 0 {
		t.Fatalf("returned an empty graph without error")
	}
	checkInvariants(t, g)
	if cycle := g.Cycle(); cycle != nil {
		t.Fatalf("returned a graph with a cycle: %v", cycle)
	}
	// Every sub-graph is a valid graph too.
	sub, err := g.Closure(g.Paths()[0])
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sub)
	// Written as path-info JSON, the graph reads back the same, NAR hashes
	// included, unless JSON cannot hold its store directory.
	if !utf8.ValidString(g.StoreDir()) {
		return
	}
	var out bytes.Buffer
	if err := WritePathInfoJSON(&out, g); err != nil {
		t.Fatal(err)
	}
	back, err := Load("written.json", bytes.NewReader(out.Bytes()))
	if err != nil || !sameGraph(back, g) {
		t.Fatalf("path-info JSON does not read back the same (%v):\n%s", err, out.Bytes())
	}
}
