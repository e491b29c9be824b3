package store

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestFindHashes(t *testing.T) {
	self := "00000000000000000000000000000000"
	inName := "11111111111111111111111111111111"
	inLink := "22222222222222222222222222222222"
	split := "33333333333333333333333333333333"
	long := strings.Repeat("a", 33)                                        // two windows
	big := strings.Repeat("x", 64<<10-10) + "/nix/store/" + split + "-lib" // crosses a read boundary
	fsys := fstest.MapFS{
		self + "-app":                        {Mode: 0o555 | os.ModeDir},
		self + "-app/bin/app":                {Data: []byte("#!/nix/store/" + self + "-app/bin/sh\n" + long), Mode: 0o555},
		self + "-app/share/" + inName + "-x": {Data: []byte("not a hash: 0000eeee0000eeee0000eeee0000eeee"), Mode: 0o444},
		self + "-app/lib":                    {Data: []byte("/nix/store/" + inLink + "-dep/lib"), Mode: os.ModeSymlink | 0o777},
		self + "-app/big":                    {Data: []byte(big), Mode: 0o444},
	}
	p := Path{Dir: "/nix/store", Hash: self, Name: "app"}
	scan, err := FindHashes(context.Background(), fsys, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{self, inName, inLink, split, long[:32]} {
		if !slices.Contains(scan.Hashes, want) {
			t.Errorf("missing %s in %v", want, scan.Hashes)
		}
	}
	if slices.Contains(scan.Hashes, "0000eeee0000eeee0000eeee0000eeee") {
		t.Error("a string with letters outside nix32 counted")
	}
	// Runs do not continue from one file or name into the next.
	for _, h := range scan.Hashes {
		if len(h) != 32 {
			t.Errorf("hash %q", h)
		}
	}
	if want, err := NarSize(fsys, p); err != nil || scan.NarSize != want {
		t.Errorf("NarSize %d, want %d (%v)", scan.NarSize, want, err)
	}
}

func TestFindHashesLimit(t *testing.T) {
	dir := t.TempDir()
	base := "00000000000000000000000000000000-noise"
	if err := os.MkdirAll(filepath.Join(dir, base), 0o755); err != nil {
		t.Fatal(err)
	}
	// The windows of a pseudo-random run are distinct.
	var b strings.Builder
	for x := uint32(1); b.Len() < MaxHashCandidates+100; {
		x = x*1664525 + 1013904223
		b.WriteByte(hashAlphabet[x>>27])
	}
	if err := os.WriteFile(filepath.Join(dir, base, "data"), []byte(b.String()), 0o444); err != nil {
		t.Fatal(err)
	}
	_, err := FindHashes(context.Background(), os.DirFS(dir), Path{Dir: "/nix/store", Hash: strings.Repeat("0", 32), Name: "noise"})
	if err == nil || !strings.Contains(err.Error(), "hash-like strings") {
		t.Errorf("err = %v", err)
	}
}

func FuzzFindHashes(f *testing.F) {
	f.Add([]byte("/nix/store/00000000000000000000000000000000-a"), []byte("11111111111111111111111111111111"))
	f.Add([]byte(strings.Repeat("ab", 40)), []byte{})
	f.Fuzz(func(t *testing.T, content, name []byte) {
		fsys := fstest.MapFS{
			"00000000000000000000000000000000-x":   {Mode: 0o555 | os.ModeDir},
			"00000000000000000000000000000000-x/f": {Data: content, Mode: 0o444},
		}
		if n := string(name); n != "" && !strings.Contains(n, "/") && fs.ValidPath(n) {
			fsys["00000000000000000000000000000000-x/"+n] = &fstest.MapFile{Data: content, Mode: 0o444}
		}
		scan, err := FindHashes(context.Background(), fsys, Path{Dir: "/nix/store", Hash: strings.Repeat("0", 32), Name: "x"})
		if err != nil {
			return
		}
		for _, h := range scan.Hashes {
			if len(h) != 32 || strings.Trim(h, hashAlphabet) != "" || !strings.Contains(string(content)+"\x00"+string(name), h) {
				t.Fatalf("hash %q not in the input", h)
			}
		}
	})
}
