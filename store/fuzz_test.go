package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Load("fuzz.graph", bytes.NewReader(data))
		if err != nil {
			if g != nil {
				t.Fatalf("Load returned both a graph and an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.graph:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if g.Len() == 0 {
			t.Fatalf("Load returned an empty graph without error")
		}
		checkInvariants(t, g)
		// Every sub-graph is a valid graph too.
		sub, err := g.Closure(g.Paths()[0])
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, sub)
	})
}
