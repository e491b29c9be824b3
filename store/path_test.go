package store

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Hashes and paths of the fixtures in testdata, reused by the tests.
const (
	hashGlibc  = "awri8visnqf95b9ff0zbhj09spl83xrr"
	hashHello  = "rr6yr3c4dwa7m36096p14dq9hnpy77zx"
	hashIdn2   = "4lmnzx45iy43kwjqn1xna7z3dj8grrz5"
	hashUnistr = "6cp643dzvlxxpkgbg5kzmwj47sam9zs2"
	hashLibgcc = "l9r346p3d25vs4g5v37f3r3f28js97kb"
	glibcPath  = "/nix/store/" + hashGlibc + "-glibc-2.39-52"
	helloPath  = "/nix/store/" + hashHello + "-hello-2.12.1"
	idn2Path   = "/nix/store/" + hashIdn2 + "-libidn2-2.3.7"
	unistrPath = "/nix/store/" + hashUnistr + "-libunistring-1.2"
	libgccPath = "/nix/store/" + hashLibgcc + "-xgcc-13.3.0-libgcc"
	helloBase  = hashHello + "-hello-2.12.1"
	glibcBase  = hashGlibc + "-glibc-2.39-52"
	idn2Base   = hashIdn2 + "-libidn2-2.3.7"
)

func TestParsePathValid(t *testing.T) {
	longName := strings.Repeat("n", maxNameLen)
	tests := []struct {
		in   string
		want Path
	}{
		{glibcPath, Path{"/nix/store", hashGlibc, "glibc-2.39-52"}},
		{"/gnu/store/" + hashHello + "-hello-2.12.1", Path{"/gnu/store", hashHello, "hello-2.12.1"}},
		{"/s/" + hashHello + "-x", Path{"/s", hashHello, "x"}},
		{"/nix/store/" + hashHello + "-a.b-c_d?e=f+g", Path{"/nix/store", hashHello, "a.b-c_d?e=f+g"}},
		{"/nix/store/" + hashHello + "-A..", Path{"/nix/store", hashHello, "A.."}},
		{"/nix/store/" + hashHello + "-" + longName, Path{"/nix/store", hashHello, longName}},
		{"/nix/store/" + hashHello + "--", Path{"/nix/store", hashHello, "-"}},
	}
	for _, tc := range tests {
		got, err := ParsePath(tc.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParsePath(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("ParsePath(%q).String() = %q", tc.in, got.String())
		}
		if want := tc.in[strings.LastIndexByte(tc.in, '/')+1:]; got.Base() != want {
			t.Errorf("ParsePath(%q).Base() = %q, want %q", tc.in, got.Base(), want)
		}
	}
}

func TestParsePathInvalid(t *testing.T) {
	// badHash swaps one character of a valid hash for c.
	badHash := func(c string) string { return "/nix/store/" + hashHello[:5] + c + hashHello[6:] + "-hello" }
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "not an absolute path"},
		{"relative", hashHello + "-hello", "not an absolute path"},
		{"relative dir", "nix/store/" + hashHello + "-hello", "not absolute"},
		{"root store dir", "/" + hashHello + "-hello", "no store directory"},
		{"double slash root", "//" + hashHello + "-hello", "cannot be /"},
		{"trailing slash", helloPath + "/", "trailing slash"},
		{"sub-path", helloPath + "/bin/hello", "inside store path"},
		{"nested store path", helloPath + "/" + hashGlibc + "-glibc", "inside store path"},
		{"unclean dir", "/nix//store/" + hashHello + "-hello", "not clean"},
		{"dot dir", "/nix/./store/" + hashHello + "-hello", "not clean"},
		{"dotdot dir", "/nix/store/../" + hashHello + "-hello", "not clean"},
		{"control char in dir", "/nix/st\nore/" + hashHello + "-hello", "control character"},
		{"name dotdot", "/nix/store/" + hashHello + "-..", "starts with a dot"},
		{"name dot", "/nix/store/" + hashHello + "-.", "starts with a dot"},
		{"name leading dot", "/nix/store/" + hashHello + "-.hidden", "starts with a dot"},
		{"empty name", "/nix/store/" + hashHello + "-", "empty name"},
		{"no name", "/nix/store/" + hashHello, "does not start with a 32-character hash"},
		{"overlong name", "/nix/store/" + hashHello + "-" + strings.Repeat("n", maxNameLen+1), "more than 211"},
		{"space in name", "/nix/store/" + hashHello + "-hel lo", `contains " "`},
		{"slash-like char in name", "/nix/store/" + hashHello + "-a\\b", `contains "\\"`},
		{"unicode name", "/nix/store/" + hashHello + "-hé", "contains"},
		{"hash letter e", badHash("e"), "not nix32"},
		{"hash letter o", badHash("o"), "not nix32"},
		{"hash letter u", badHash("u"), "not nix32"},
		{"hash letter t", badHash("t"), "not nix32"},
		{"hash upper case", badHash("A"), "not nix32"},
		{"short hash", "/nix/store/" + hashHello[:31] + "-hello", "does not start with a 32-character hash"},
		{"long hash", "/nix/store/" + hashHello + "x-hello", "does not start with a 32-character hash"},
		{"no dash", "/nix/store/" + hashHello + "_hello", "does not start with a 32-character hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePath(tc.in)
			if err == nil {
				t.Fatalf("ParsePath(%q) = %+v, want an error", tc.in, p)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePath(%q) error %q does not mention %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestParsePathIn(t *testing.T) {
	if _, err := ParsePathIn("/nix/store", helloPath); err != nil {
		t.Errorf("ParsePathIn(/nix/store, %s): %v", helloPath, err)
	}
	guix := "/gnu/store/" + hashHello + "-hello"
	if _, err := ParsePathIn("/nix/store", guix); err == nil || !strings.Contains(err.Error(), "not in store directory /nix/store") {
		t.Errorf("ParsePathIn(/nix/store, %s) error = %v, want not in store directory", guix, err)
	}
	if _, err := ParsePathIn("/nix/store", "/nix/store/x"); err == nil {
		t.Errorf("ParsePathIn accepted an invalid path")
	}
}

func TestSplitSubPath(t *testing.T) {
	hello := Path{"/nix/store", hashHello, "hello-2.12.1"}
	tests := []struct {
		in       string
		want     Path
		wantRest string
		wantErr  string
	}{
		{in: helloPath, want: hello},
		{in: helloPath + "/bin", want: hello, wantRest: "bin"},
		{in: helloPath + "/bin/hello", want: hello, wantRest: "bin/hello"},
		{in: helloPath + "/lib/" + hashGlibc + "-x", want: hello, wantRest: "lib/" + hashGlibc + "-x"},
		{in: "/gnu/store/" + hashHello + "-hello/share", want: Path{"/gnu/store", hashHello, "hello"}, wantRest: "share"},
		{in: helloPath + "/", wantErr: "not an absolute clean path"},
		{in: helloPath + "/../x", wantErr: "not an absolute clean path"},
		{in: helloPath + "/./bin", wantErr: "not an absolute clean path"},
		{in: "bin/hello", wantErr: "not an absolute clean path"},
		{in: "/usr/bin/env", wantErr: "no store path"},
		{in: "/", wantErr: "no store path"},
		{in: "/" + hashHello + "-hello/bin", wantErr: "no store directory"},
		{in: "/nix/store/" + hashHello + "-.hidden/bin", wantErr: "starts with a dot"},
	}
	for _, tc := range tests {
		p, rest, err := SplitSubPath(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("SplitSubPath(%q) = %v, %q, %v; want error %q", tc.in, p, rest, err, tc.wantErr)
			}
			continue
		}
		if err != nil || p != tc.want || rest != tc.wantRest {
			t.Errorf("SplitSubPath(%q) = %+v, %q, %v; want %+v, %q", tc.in, p, rest, err, tc.want, tc.wantRest)
		}
	}
}

func TestCompareMatchesStringOrder(t *testing.T) {
	var paths []Path
	for _, dir := range []string{"/a/store", "/a/store-x", "/a/store/x", "/a/storf", "/nix/store"} {
		for _, hash := range []string{hashGlibc, hashHello, hashIdn2} {
			for _, name := range []string{"a", "a-b", "a.b", "ab", "A"} {
				paths = append(paths, Path{dir, hash, name})
			}
		}
	}
	rand.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
	byCompare := slices.Clone(paths)
	slices.SortFunc(byCompare, Path.Compare)
	byString := slices.Clone(paths)
	slices.SortFunc(byString, func(a, b Path) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(byCompare, byString) {
		t.Errorf("Compare order differs from String order:\n%v\n%v", byCompare, byString)
	}
}

func TestPathText(t *testing.T) {
	in := []Path{mustParse(t, helloPath), mustParse(t, glibcPath)}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["` + helloPath + `","` + glibcPath + `"]`; string(data) != want {
		t.Errorf("json.Marshal = %s, want %s", data, want)
	}
	var out []Path
	if err := json.Unmarshal(data, &out); err != nil || !slices.Equal(in, out) {
		t.Errorf("json.Unmarshal = %v, %v; want %v", out, err, in)
	}
	if err := json.Unmarshal([]byte(`["/nix/store/../x"]`), &out); err == nil {
		t.Errorf("json.Unmarshal accepted an invalid path")
	}
	if _, err := json.Marshal(Path{Dir: "/nix/store", Hash: "x", Name: "y"}); err == nil {
		t.Errorf("json.Marshal accepted an invalid hand-made Path")
	}
	if s := (Path{}).String(); s != "" {
		t.Errorf("zero Path String() = %q, want empty", s)
	}
}

func mustParse(t testing.TB, s string) Path {
	t.Helper()
	p, err := ParsePath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLooksInStore(t *testing.T) {
	for s, want := range map[string]bool{
		"/nix/store/00000000000000000000000000000000-hello/bin": true,
		"/gnu/store/00000000000000000000000000000000-x":         true,
		"/nix/store/00000000000000000000000000000000":           false, // no dash and name
		"/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x":         false, // e is not nix32
		"/home/me/result": false,
	} {
		if got := LooksInStore(s); got != want {
			t.Errorf("LooksInStore(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestSplitName: the expectations are what Nix 2.8's builtins.parseDrvName
// returns for the same names.
func TestSplitName(t *testing.T) {
	for _, tc := range []struct{ in, name, version string }{
		{"apache-httpd-2.0.48", "apache-httpd", "2.0.48"},
		{"nix-0.12pre12876", "nix", "0.12pre12876"},
		{"foo-_x", "foo", "_x"},
		{"hello", "hello", ""},
		{"glibc-2.34-210-bin", "glibc", "2.34-210-bin"},
		{"python3.12-requests-2.31.0", "python3.12-requests", "2.31.0"},
		{"a-", "a-", ""},
		{"-1", "", "1"},
		{"gnu-config-2024-01-01", "gnu-config", "2024-01-01"},
		{"foo-.bar", "foo", ".bar"},
		{"x--y", "x", "-y"},
		{"archapp-x86_64-linux", "archapp-x86_64-linux", ""},
		{"foo-+1", "foo", "+1"},
		{"foo-Bar-1", "foo-Bar", "1"},
	} {
		if name, version := SplitName(tc.in); name != tc.name || version != tc.version {
			t.Errorf("SplitName(%q) = %q, %q; want %q, %q", tc.in, name, version, tc.name, tc.version)
		}
	}
}
