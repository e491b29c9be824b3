package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Benchmarks, run with
//
//	go test -run '^$' -bench . -benchtime 5x ./store/
//
// BenchmarkScan and BenchmarkSHA256 read the same synthetic store (see
// writeSyntheticStore) from the page cache, so that their throughputs
// compare the scanner with hashing the same bytes.

const (
	syntheticPaths    = 64
	syntheticFileSize = 4 << 20 // 64 paths × 1 file of 4 MiB + small files: about 270 MiB
)

// writeSyntheticStore writes a store whose paths hold a mix of contents
// like a real store's: binaries (random bytes with runs of zeros and
// embedded store paths), text with store paths, and hash-dense data (long
// runs of hash characters, the scanner's worst case). Each path references
// the next one, so that Discover from the first finds them all. It returns
// the store directory, the first path and the number of content bytes.
func writeSyntheticStore(b *testing.B) (dir string, root Path, total int64) {
	dir = b.TempDir()
	rng := rand.New(rand.NewPCG(1, 1))
	paths := make([]Path, syntheticPaths)
	for i := range paths {
		paths[i] = testPath(fmt.Sprintf("pkg-%d", i))
	}
	words := strings.Fields("the quick brown fox jumps over a lazy dog lib bin share include config error warning usr local etc")
	for i, p := range paths {
		var binary, text, dense bytes.Buffer
		for binary.Len() < syntheticFileSize/2 {
			chunk := make([]byte, 4096)
			for j := range chunk {
				if rng.IntN(3) > 0 {
					chunk[j] = byte(rng.Uint32())
				}
			}
			binary.Write(chunk)
			if rng.IntN(16) == 0 && i+1 < len(paths) {
				binary.WriteString(paths[i+1].String() + "/lib\x00")
			}
		}
		for text.Len() < syntheticFileSize*3/10 {
			text.WriteString(words[rng.IntN(len(words))])
			text.WriteByte(" \n"[rng.IntN(2)])
			if rng.IntN(500) == 0 {
				text.WriteString(p.String() + "/share ")
			}
		}
		for dense.Len() < syntheticFileSize/5 {
			for range 52 {
				dense.WriteByte(hashAlphabet[rng.IntN(len(hashAlphabet))])
			}
			dense.WriteByte('\n')
		}
		files := map[string]string{
			"bin/program":       "x:" + binary.String(),
			"share/doc/README":  text.String(),
			"share/hashes.list": dense.String(),
		}
		for j := range 20 {
			files[fmt.Sprintf("share/small/%d", j)] = words[j%len(words)]
		}
		storeFiles(b, filepath.Join(dir, p.Base()), files)
		for _, content := range files {
			total += int64(len(strings.TrimPrefix(content, "x:")))
		}
	}
	return dir, paths[0], total
}

func BenchmarkScan(b *testing.B) {
	dir, root, total := writeSyntheticStore(b)
	for _, cpus := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("cpus=%d", cpus), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cpus))
			b.SetBytes(total)
			for b.Loop() {
				g, err := Discover(context.Background(), dir, []Path{root})
				if err != nil {
					b.Fatal(err)
				}
				if g.Len() != syntheticPaths {
					b.Fatalf("found %d paths, want %d", g.Len(), syntheticPaths)
				}
			}
		})
	}
}

func BenchmarkSHA256(b *testing.B) {
	dir, _, total := writeSyntheticStore(b)
	buf := make([]byte, scanChunkSize)
	b.SetBytes(total)
	for b.Loop() {
		h := sha256.New()
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyBuffer(h, f, buf)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		h.Sum(nil)
	}
}

// benchGraph is a random graph of n paths in which path i references about
// 6 of the paths before it, and itself half the time.
func benchGraph(b testing.TB, n int) *Graph {
	rng := rand.New(rand.NewPCG(2, 2))
	paths := make([]Path, n)
	infos := make([]Info, n)
	for i := range paths {
		paths[i] = testPath(fmt.Sprintf("package-%d-1.0.%d", i, rng.IntN(100)))
		infos[i] = Info{Path: paths[i], NarSize: 1 + rng.Uint64N(1<<28)}
		if rng.IntN(2) == 0 {
			infos[i].References = append(infos[i].References, paths[i])
		}
		for range min(i, rng.IntN(13)) {
			infos[i].References = append(infos[i].References, paths[rng.IntN(i)])
		}
	}
	g, err := NewGraph(infos)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// graphFormats renders a graph in each format Load reads, as the tools
// write them.
func graphFormats(b *testing.B, g *Graph) map[string][]byte {
	var records, short, array, object, versioned, dot bytes.Buffer
	type entry struct {
		Path       string   `json:"path,omitempty"`
		NarHash    string   `json:"narHash"`
		NarSize    uint64   `json:"narSize"`
		References []string `json:"references"`
		Deriver    string   `json:"deriver"`
		Version    int      `json:"version,omitempty"`
		StoreDir   string   `json:"storeDir,omitempty"`
	}
	var arrayEntries []entry
	objectEntries := make(map[string]entry)
	versionedEntries := make(map[string]entry)
	dot.WriteString("digraph G {\n")
	for _, p := range g.Paths() {
		info, _ := g.Info(p)
		refs, bases := make([]string, len(info.References)), make([]string, len(info.References))
		for i, ref := range info.References {
			refs[i], bases[i] = ref.String(), ref.Base()
		}
		fmt.Fprintf(&records, "%s\n%s\n%d\n\n%d\n", p, strings.Repeat("0", 64), info.NarSize, len(refs))
		fmt.Fprintf(&short, "%s\n\n%d\n", p, len(refs))
		for _, ref := range refs {
			fmt.Fprintln(&records, ref)
			fmt.Fprintln(&short, ref)
		}
		e := entry{NarHash: "sha256-" + strings.Repeat("A", 43) + "=", NarSize: info.NarSize, References: refs, Deriver: p.String() + ".drv"}
		objectEntries[p.String()] = e
		e.Path = p.String()
		arrayEntries = append(arrayEntries, e)
		versionedEntries[p.Base()] = entry{NarHash: e.NarHash, NarSize: e.NarSize, References: bases, Deriver: p.Base() + ".drv", Version: 3, StoreDir: "/nix/store"}
		fmt.Fprintf(&dot, "%q [label = %q, shape = box, style = filled, fillcolor = \"#ff0000\"];\n", p.Base(), p.Name)
		for _, ref := range info.References {
			if ref != p {
				fmt.Fprintf(&dot, "%q -> %q [color = \"black\"];\n", ref.Base(), p.Base())
			}
		}
	}
	dot.WriteString("}\n")
	for _, enc := range []struct {
		w *bytes.Buffer
		v any
	}{
		{&array, arrayEntries},
		{&object, objectEntries},
		{&versioned, map[string]any{"version": 3, "storeDir": "/nix/store", "info": versionedEntries}},
	} {
		if err := json.NewEncoder(enc.w).Encode(enc.v); err != nil {
			b.Fatal(err)
		}
	}
	return map[string][]byte{
		"dump-db": records.Bytes(), "exportReferencesGraph": short.Bytes(), "json-array": array.Bytes(),
		"json-object": object.Bytes(), "json-v3": versioned.Bytes(), "dot": dot.Bytes(),
	}
}

func BenchmarkLoad100k(b *testing.B) {
	const n = 100_000
	g := benchGraph(b, n)
	for name, data := range graphFormats(b, g) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				loaded, err := Load(name, bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				if loaded.Len() != n {
					b.Fatalf("loaded %d paths, want %d", loaded.Len(), n)
				}
			}
		})
	}
	b.Run("sqlite", func(b *testing.B) {
		file := filepath.Join(b.TempDir(), "db.sqlite")
		db := openTestDB(b, file, nixDBSchema)
		insertGraph(b, db, g)
		checkpoint(b, db)
		for b.Loop() {
			loaded, err := LoadDB(file)
			if err != nil {
				b.Fatal(err)
			}
			if loaded.Len() != n {
				b.Fatalf("loaded %d paths, want %d", loaded.Len(), n)
			}
		}
	})
}
