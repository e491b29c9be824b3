package store

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// narHashFixtures are store paths whose NAR hashes real Nix computed: the
// trees are written by writeFixture, the hashes and sizes are what Nix 2.8
// printed for them (nix hash path --base16, nix-store --dump | sha256sum,
// | wc -c). narhash_nix_test.go checks them against Nix again.
var narHashFixtures = []struct {
	name  string
	files map[string]string // for storeFiles; key "" is the store path itself
	hash  digest.Digest
	size  uint64
}{
	{"tree", map[string]string{
		"bin/hello": "x:#!/bin/sh\necho hello\n", "bin/sh": "->hello", "bin/abs": "->/nix/store/00000000000000000000000000000000-dep/bin/x",
		"lib/empty-file": "", "lib/executable-empty": "x:", "lib/a/b/c/deep": "deep\n",
		"share/empty": "dir", "share/doc/README": "read me\n", "share/seven": "1234567", "share/eight": "12345678",
		"share/Upper": "sorts before lower case", "share/name with spaces and ünïcödé": "ok\n",
	}, "sha256:6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5", 3720},
	{"big", map[string]string{
		"small": "small", "big": strings.Repeat("0123456789abcdef", 12345) + "tail",
	}, "sha256:06ba152d25c5e5c69cd8fa21f1651801dd4cce487ae1d28a68c27114b2070e5d", 198000},
	{"empty-dir", map[string]string{"": "dir"}, "sha256:a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a", 96},
	{"file", map[string]string{"": "contents\n"}, "sha256:83a0a5725234845c240f16c132678f2a936d714af2357e4472368559bc9dd1db", 128},
	{"empty-file", map[string]string{"": ""}, "sha256:77ac62e2629d8e45f624589c0c8bf99e24b3a722349bf1e79bc186008534e246", 112},
	{"script", map[string]string{"": "x:#!/bin/sh\n"}, "sha256:6283c1668260f903d1a895c0cd6b822fa4b68762bb0b17cedef2d39d97e26554", 160},
	{"link", map[string]string{"": "->somewhere/else"}, "sha256:829cd32202defd0943bb5c12b3297ab83b15a18df9785621d83adf2d3bf08e6a", 128},
}

// writeFixture writes a fixture's tree as store path p under storeDir.
func writeFixture(t testing.TB, storeDir string, p Path, files map[string]string) {
	t.Helper()
	if value, ok := files[""]; ok && value != "dir" {
		storeFiles(t, storeDir, map[string]string{p.Base(): value})
		return
	}
	if err := os.MkdirAll(filepath.Join(storeDir, p.Base()), 0o755); err != nil {
		t.Fatal(err)
	}
	files = maps.Clone(files)
	delete(files, "")
	storeFiles(t, filepath.Join(storeDir, p.Base()), files)
}

func TestNarHash(t *testing.T) {
	storeDir := t.TempDir()
	fsys := os.DirFS(storeDir)
	for _, fixture := range narHashFixtures {
		p := testPath(fixture.name)
		writeFixture(t, storeDir, p, fixture.files)
		hash, size, err := NarHash(context.Background(), fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		if hash != fixture.hash || size != fixture.size {
			t.Errorf("NarHash(%s) = %s, %d; Nix says %s, %d", fixture.name, hash, size, fixture.hash, fixture.size)
		}
		// The independent serialiser of nar_test.go agrees.
		nar := sha256.New()
		writeNAR(t, nar, filepath.Join(storeDir, p.Base()))
		if want := digest.NewDigestFromBytes(digest.SHA256, nar.Sum(nil)); hash != want {
			t.Errorf("NarHash(%s) = %s, writeNAR gives %s", fixture.name, hash, want)
		}
		if narSize, err := NarSize(fsys, p); err != nil || narSize != size {
			t.Errorf("NarSize(%s) = %d, %v; NarHash's size is %d", fixture.name, narSize, err, size)
		}
		walkPathHashingAgrees(t, fsys, p, fixture.hash, fixture.size)
	}
}

// walkPathHashingAgrees checks that WalkPathHashing, given the contents of
// p's files, returns p's NAR hash and size, and visits every node as
// WalkPath visits it.
func walkPathHashingAgrees(t *testing.T, fsys fs.FS, p Path, wantHash digest.Digest, wantSize uint64) {
	t.Helper()
	var walked, visited []string
	if err := WalkPath(fsys, p, func(name string, _ fs.FileInfo) error {
		walked = append(walked, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	hash, size, err := WalkPathHashing(fsys, p, func(name string, info fs.FileInfo, contents io.Writer) error {
		visited = append(visited, name)
		if (contents != nil) != info.Mode().IsRegular() {
			t.Errorf("%s: contents %v for mode %s", name, contents, info.Mode())
		}
		if contents == nil {
			return nil
		}
		data, err := fs.ReadFile(fsys, name)
		if err == nil {
			_, err = contents.Write(data)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if hash != wantHash || size != wantSize {
		t.Errorf("WalkPathHashing(%s) = %s, %d; want %s, %d", p, hash, size, wantHash, wantSize)
	}
	if !slices.Equal(visited, walked) {
		t.Errorf("WalkPathHashing(%s) visited %q, WalkPath %q", p, visited, walked)
	}
}

// TestWalkPathHashingShort: contents that differ from a file's size are
// refused, naming the file.
func TestWalkPathHashingShort(t *testing.T) {
	storeDir := t.TempDir()
	p := testPath("big")
	writeFixture(t, storeDir, p, map[string]string{"big": strings.Repeat("x", 100)})
	_, _, err := WalkPathHashing(os.DirFS(storeDir), p, func(name string, _ fs.FileInfo, contents io.Writer) error {
		if contents != nil {
			_, err := contents.Write([]byte("short"))
			return err
		}
		return nil
	})
	if want := "/nix/store/" + p.Base() + "/big: changed while being read: 5 bytes read, 100 expected"; err == nil || err.Error() != want {
		t.Errorf("short contents: error %v, want %q", err, want)
	}
}

// TestNarHashFiles: the NAR hash and size are NarHash's, and the files are
// the regular files of the fixture (no directory, no symlink) with the
// digests of their contents, sorted by path, not in the NAR's order ("a-c"
// before "a/b", which the NAR puts after "a").
func TestNarHashFiles(t *testing.T) {
	storeDir := t.TempDir()
	fsys := os.DirFS(storeDir)
	fixtures := append(slices.Clone(narHashFixtures), narHashFixtures[0])
	fixtures[len(fixtures)-1].name, fixtures[len(fixtures)-1].files = "order", map[string]string{"a/b": "1", "a-c": "2", "a/d": "->b"}
	for _, fixture := range fixtures {
		p := testPath(fixture.name)
		writeFixture(t, storeDir, p, fixture.files)
		scan, err := NarHashFiles(context.Background(), fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		hash, size, err := NarHash(context.Background(), fsys, p)
		if err != nil || scan.NarHash != hash || scan.NarSize != size {
			t.Errorf("NarHashFiles(%s) = %s, %d; NarHash: %s, %d, %v", fixture.name, scan.NarHash, scan.NarSize, hash, size, err)
		}
		var want []FileSum
		for name, value := range fixture.files {
			if value == "dir" || strings.HasPrefix(value, "->") {
				continue
			}
			contents := []byte(strings.TrimPrefix(value, "x:"))
			s1, s256 := sha1.Sum(contents), sha256.Sum256(contents)
			want = append(want, FileSum{Name: name, SHA1: hex.EncodeToString(s1[:]), SHA256: hex.EncodeToString(s256[:])})
		}
		slices.SortFunc(want, func(a, b FileSum) int { return strings.Compare(a.Name, b.Name) })
		if !slices.Equal(scan.Files, want) {
			t.Errorf("NarHashFiles(%s) lists\n%v\nwant\n%v", fixture.name, scan.Files, want)
		}
	}
}

func TestNixHash(t *testing.T) {
	// From nix hash to-base32 --type sha256 (Nix 2.8).
	for hex, want := range map[string]string{
		"6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5": "1dgy33n7254zkk4c0kzqpqqwcb574l93z84zld5mxcmhbdwxywv7",
		"a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a": "0sjjj9z1dhilhpc8pq4154czrb79z9cm044jvn75kxcjv6v5l2m5",
		"0000000000000000000000000000000000000000000000000000000000000001": "0080000000000000000000000000000000000000000000000000",
		"8000000000000000000000000000000000000000000000000000000000000000": "0000000000000000000000000000000000000000000000000040",
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff": "1zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
	} {
		got, err := NixHash(digest.Digest("sha256:" + hex))
		if err != nil || got != "sha256:"+want {
			t.Errorf("NixHash(sha256:%s) = %q, %v; want sha256:%s", hex, got, err, want)
		}
	}
	for _, bad := range []digest.Digest{"", "sha256:abc", "sha512:" + digest.Digest(strings.Repeat("0", 128)), "md5:0"} {
		if got, err := NixHash(bad); err == nil {
			t.Errorf("NixHash(%q) = %q, want an error", bad, got)
		}
	}
}

func TestNarHashErrors(t *testing.T) {
	storeDir := t.TempDir()
	withSetuid, tree := testPath("with-setuid"), testPath("tree")
	storeFiles(t, filepath.Join(storeDir, withSetuid.Base()), map[string]string{"bin/su": "x:#!/bin/sh"})
	if err := os.Chmod(filepath.Join(storeDir, withSetuid.Base(), "bin/su"), 0o555|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	storeFiles(t, filepath.Join(storeDir, tree.Base()), map[string]string{"file": "contents"})
	fsys := os.DirFS(storeDir)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		ctx     context.Context
		path    Path
		wantErr string
	}{
		{context.Background(), withSetuid, "/nix/store/" + withSetuid.Base() + "/bin/su: mode ur-xr-xr-x has the setuid or setgid bit"},
		{context.Background(), testPath("missing"), "/nix/store/" + testPath("missing").Base() + ": lstat: no such file or directory"},
		{context.Background(), Path{Dir: "/nix/store", Hash: "x", Name: "y"}, "invalid store path"},
		{cancelled, tree, context.Canceled.Error()},
	}
	for _, tc := range tests {
		if _, _, err := NarHash(tc.ctx, fsys, tc.path); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("NarHash(%s) error = %v, want %q", tc.path.Name, err, tc.wantErr)
		}
	}
	if _, _, err := NarHash(cancelled, fsys, tree); !errors.Is(err, context.Canceled) {
		t.Errorf("NarHash with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestNix32Decode checks that nix32Decode inverts nix32, through NixHash,
// on random digests and on the pinned pairs of TestNixHash's kind.
func TestNix32Decode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sums := [][]byte{make([]byte, sha256.Size), bytes.Repeat([]byte{0xff}, sha256.Size)}
	for range 1000 {
		sum := make([]byte, sha256.Size)
		for i := range sum {
			sum[i] = byte(rng.Uint32())
		}
		sums = append(sums, sum)
	}
	for _, sum := range sums {
		nixHash, err := NixHash(digest.NewDigestFromBytes(digest.SHA256, sum))
		if err != nil {
			t.Fatal(err)
		}
		got, err := nix32Decode(strings.TrimPrefix(nixHash, "sha256:"), sha256.Size)
		if err != nil || !bytes.Equal(got, sum) {
			t.Fatalf("nix32Decode(%s) = %x, %v; want %x", nixHash, got, err, sum)
		}
	}
	// Other sizes: nix32 encodes any byte string, as Nix does SHA-1 and
	// SHA-512 digests.
	for size := 1; size <= 64; size++ {
		data := bytes.Repeat([]byte{byte(size)}, size)
		if got, err := nix32Decode(nix32(data), size); err != nil || !bytes.Equal(got, data) {
			t.Errorf("nix32Decode(nix32(%x)) = %x, %v", data, got, err)
		}
	}

	for _, tc := range []struct{ in, wantErr string }{
		{"1" + strings.Repeat("0", 51), ""}, // the top bit of the last byte
		{"2" + strings.Repeat("0", 51), "holds more than 32 bytes"},
		{"z" + strings.Repeat("0", 51), "holds more than 32 bytes"},
		{strings.Repeat("0", 51) + "e", `"e" is not a nix32 character`},
		{strings.Repeat("0", 51) + "\xff", `"\xff" is not a nix32 character`},
		{strings.Repeat("0", 51), "32 bytes take 52 nix32 characters, not 51"},
		{strings.Repeat("0", 53), "32 bytes take 52 nix32 characters, not 53"},
	} {
		_, err := nix32Decode(tc.in, sha256.Size)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("nix32Decode(%q) error = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

// TestParseNarHash reads one digest in every notation of a NAR hash.
func TestParseNarHash(t *testing.T) {
	// Printed by Nix 2.8: nix hash to-base32, to-base64 and to-sri.
	const want digest.Digest = "sha256:6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5"
	for _, s := range []string{
		"sha256-Z3PfeVuwsl5Lo5+gPxIlpyzGMb74T8DInJ8UcewY/rU=",
		"sha256:1dgy33n7254zkk4c0kzqpqqwcb574l93z84zld5mxcmhbdwxywv7",
		"1dgy33n7254zkk4c0kzqpqqwcb574l93z84zld5mxcmhbdwxywv7",
		"sha256:6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5",
		"6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5",
		"6773DF795BB0B25E4BA39FA03F1225A72CC631BEF84FC0C89C9F1471EC18FEB5",
		"sha256:Z3PfeVuwsl5Lo5+gPxIlpyzGMb74T8DInJ8UcewY/rU=",
		"Z3PfeVuwsl5Lo5+gPxIlpyzGMb74T8DInJ8UcewY/rU=",
	} {
		if got, err := parseNarHash(s); err != nil || got != want {
			t.Errorf("parseNarHash(%q) = %q, %v; want %s", s, got, err, want)
		}
	}
	for _, s := range []string{
		"",
		"sha256:",
		"sha256-",
		"sha512-" + strings.Repeat("A", 86) + "==",
		"sha1:" + strings.Repeat("0", 40),
		"md5:" + strings.Repeat("0", 32),
		"sha256:" + strings.Repeat("0", 63),
		"sha256:" + strings.Repeat("g", 64),
		"sha256:" + strings.Repeat("0", 51) + "e",
		"sha256:z" + strings.Repeat("0", 51),
		"sha256-" + strings.Repeat("A", 42) + "==", // 31 bytes
		"sha256-" + strings.Repeat("A", 43) + "\n",
		"sha256-" + strings.Repeat("A", 40) + "\r\n\r\n", // 30 bytes in 44 characters
		"sha256-" + strings.Repeat("A", 43) + "!",
		"sha256-1dgy33n7254zkk4c0kzqpqqwcb574l93z84zld5mxcmhbdwxywv7", // SRI is base64 only
		"SHA256:6773df795bb0b25e4ba39fa03f1225a72cc631bef84fc0c89c9f1471ec18feb5",
	} {
		if got, err := parseNarHash(s); err == nil || !strings.Contains(err.Error(), "NAR hash "+quote(s)) {
			t.Errorf("parseNarHash(%q) = %q, %v; want an error naming it", s, got, err)
		}
	}
}
