package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// naiveSearch is the definition search must meet: every 32-byte window that
// is a candidate's hash part.
func naiveSearch(c *Candidates, data []byte) []Path {
	var found []Path
	for i := 0; i+hashLen <= len(data); i++ {
		if p, ok := c.byHash[string(data[i:i+hashLen])]; ok {
			found = append(found, p)
		}
	}
	return found
}

func mustCandidates(t testing.TB, paths ...Path) *Candidates {
	t.Helper()
	c, err := NewCandidates(paths)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSearchMatchesNaive(t *testing.T) {
	var paths []Path
	for i := range 50 {
		paths = append(paths, testPath(strings.Repeat("p", i+1)))
	}
	c := mustCandidates(t, paths...)
	rng := rand.New(rand.NewPCG(1, 2))
	// Inputs made mostly of hash characters produce long runs, where the
	// skipping logic has the most to get wrong; some non-hash bytes and
	// embedded candidate hashes, often overlapping, complete the picture.
	for range 2000 {
		data := make([]byte, rng.IntN(300))
		for i := range data {
			switch rng.IntN(10) {
			case 0:
				data[i] = byte(rng.IntN(256))
			case 1:
				data[i] = '-'
			default:
				data[i] = hashAlphabet[rng.IntN(len(hashAlphabet))]
			}
		}
		for range rng.IntN(4) {
			if len(data) >= hashLen {
				copy(data[rng.IntN(len(data)-hashLen+1):], paths[rng.IntN(len(paths))].Hash)
			}
		}
		var got []Path
		c.search(data, func(p Path) { got = append(got, p) })
		if want := naiveSearch(c, data); !slices.Equal(got, want) {
			t.Fatalf("search(%q) = %v, want %v", data, got, want)
		}
	}
}

func TestNewCandidatesErrors(t *testing.T) {
	if _, err := NewCandidates([]Path{testPath("a"), {Dir: "/gnu/store", Hash: testPath("b").Hash, Name: "b"}}); err == nil ||
		!strings.Contains(err.Error(), "but the graph is in /nix/store") {
		t.Errorf("NewCandidates with two store directories: error %v", err)
	}
	if _, err := NewCandidates([]Path{{Dir: "/nix/store", Hash: "x", Name: "y"}}); err == nil {
		t.Errorf("NewCandidates accepted an invalid path")
	}
}

// scanStore is a store on disk in which every way of referring to another
// path occurs, for the scanner tests.
type scanStore struct {
	dir  string
	root Path
	// what root references, and what it mentions without referencing.
	wantRefs              []Path
	notCandidate, missing Path
	chunkSplit            Path // mentioned across each possible chunk boundary
}

func newScanStore(t testing.TB, chunkSize int) *scanStore {
	s := &scanStore{
		dir:          t.TempDir(),
		root:         testPath("root"),
		notCandidate: testPath("not-a-candidate"),
		missing:      testPath("missing"),
		chunkSplit:   testPath("split"),
	}
	inContent, inFileName, inDirName, inLink, inExecutable := testPath("content"), testPath("file-name"), testPath("dir-name"), testPath("link"), testPath("exec")
	s.wantRefs = []Path{s.root, inContent, inFileName, inDirName, inLink, inExecutable, s.chunkSplit}
	slices.SortFunc(s.wantRefs, Path.Compare)

	// big puts chunkSplit's hash across a boundary between two reads at
	// every split position, and across the 64 KiB boundary of Nix's own
	// reads.
	var big []byte
	straddle := func(text string, boundary, split int) {
		end := (len(big) + len(text) + boundary - 1) / boundary * boundary
		big = append(big, make([]byte, end+split-len(text)-len(big))...)
		big = append(big, text...)
	}
	for split := 1; split < hashLen; split++ {
		straddle(s.chunkSplit.Hash, chunkSize, split)
	}
	straddle(s.chunkSplit.String(), 64<<10, 16)

	storeFiles(t, filepath.Join(s.dir, s.root.Base()), map[string]string{
		"bin/tool":                   "x:\x7fELF\x00" + inExecutable.String() + "/lib\x00",
		"share/doc":                  "see " + inContent.String() + "/share and " + s.root.String() + " (myself)",
		"share/" + inFileName.Base(): "",
		inDirName.Hash + "-x/empty":  "dir",
		"lib/link":                   "->" + inLink.String() + "/lib/libx.so",
		"lib/big":                    string(big),
		// Not references: a path that is in the store but not a candidate,
		// a path that is not in the store, a 31-character prefix, a hash
		// with a character outside the alphabet.
		"share/other": s.notCandidate.String() + " " + s.missing.String() + " " + inContent.Hash[:31] + "e " +
			inFileName.Hash[:31] + "-",
	})
	for _, p := range append([]Path{s.notCandidate}, s.wantRefs...) {
		if p != s.root {
			storeFiles(t, filepath.Join(s.dir, p.Base()), map[string]string{"": "dir"})
		}
	}
	return s
}

func (s *scanStore) candidates(t testing.TB) *Candidates {
	return mustCandidates(t, append(slices.Clone(s.wantRefs), testPath("unrelated"))...)
}

func TestScan(t *testing.T) {
	for _, chunkSize := range []int{1, 2, 7, 31, 32, 33, 100, 4096, 64 << 10, scanChunkSize} {
		s := newScanStore(t, chunkSize)
		ctx := context.Background()
		scanner := newScannerChunked(os.DirFS(s.dir), s.candidates(t), chunkSize)
		info, err := scanner.scan(ctx, s.root)
		scanner.close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(info.References, s.wantRefs) {
			t.Errorf("chunk size %d: references\n%v\nwant\n%v", chunkSize, info.References, s.wantRefs)
		}
		narSize, err := NarSize(os.DirFS(s.dir), s.root)
		if err != nil || info.NarSize != narSize || info.Path != s.root {
			t.Errorf("chunk size %d: Scan gave %s, size %d; NarSize %d, %v", chunkSize, info.Path, info.NarSize, narSize, err)
		}
	}

	// The exported function, with the default chunk size.
	s := newScanStore(t, scanChunkSize)
	info, err := Scan(context.Background(), os.DirFS(s.dir), s.root, s.candidates(t))
	if err != nil || !slices.Equal(info.References, s.wantRefs) {
		t.Errorf("Scan = %v, %v; want %v", info.References, err, s.wantRefs)
	}
}

func TestScanErrors(t *testing.T) {
	s := newScanStore(t, scanChunkSize)
	fsys := os.DirFS(s.dir)
	ctx := context.Background()

	// Two candidates with one hash part: an error only when it is found.
	twin := Path{Dir: "/nix/store", Hash: s.chunkSplit.Hash, Name: "twin"}
	ambiguous := mustCandidates(t, append(slices.Clone(s.wantRefs), twin)...)
	if _, err := Scan(ctx, fsys, s.root, ambiguous); err == nil ||
		!strings.Contains(err.Error(), "mentions hash "+s.chunkSplit.Hash+", which is the hash part of several store paths") {
		t.Errorf("Scan with an ambiguous hash: error %v", err)
	}
	if info, err := Scan(ctx, fsys, s.notCandidate, ambiguous); err != nil || len(info.References) != 0 {
		t.Errorf("Scan of a path without the ambiguous hash = %v, %v", info, err)
	}

	gnu := mustCandidates(t, Path{Dir: "/gnu/store", Hash: s.root.Hash, Name: s.root.Name})
	if _, err := Scan(ctx, fsys, s.root, gnu); err == nil || !strings.Contains(err.Error(), "the candidates are in store directory /gnu/store") {
		t.Errorf("Scan with candidates in another store: error %v", err)
	}
	if _, err := Scan(ctx, fsys, s.missing, s.candidates(t)); err == nil || !strings.Contains(err.Error(), s.missing.String()) {
		t.Errorf("Scan of a missing path: error %v", err)
	}
	unreadable := filepath.Join(s.dir, s.root.Base(), "share", "doc")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 { // root reads anything
		if _, err := Scan(ctx, fsys, s.root, s.candidates(t)); err == nil || !strings.Contains(err.Error(), s.root.String()+"/share/doc: open: permission denied") {
			t.Errorf("Scan of an unreadable file: error %v", err)
		}
	}
	os.Chmod(unreadable, 0o644)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Scan(canceled, fsys, s.root, s.candidates(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a canceled context: error %v", err)
	}
}

// TestScanLargeFileInBoundedMemory scans a 1 GiB sparse file: the heap must
// not grow with it.
func TestScanLargeFileInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 1 GiB")
	}
	dir := t.TempDir()
	root, dep := testPath("big"), testPath("dep")
	f, err := os.Create(filepath.Join(dir, root.Base()))
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 30
	if _, err := f.WriteAt([]byte(dep.String()), size-int64(len(dep.String()))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	info, err := Scan(context.Background(), os.DirFS(dir), root, mustCandidates(t, root, dep))
	runtime.ReadMemStats(&after)
	if err != nil || !slices.Equal(info.References, []Path{dep}) {
		t.Fatalf("Scan = %v, %v; want %v", info.References, err, dep)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 32<<20 {
		t.Errorf("scanning 1 GiB allocated %d MiB", grown>>20)
	}
}
