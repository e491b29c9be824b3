package layercache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestCache: entries come back as put; damaged ones (cut short, altered,
// not entries) read as none and are removed; pruning keeps the most recently used; a killed writer's
// leftovers go once stale.
func TestCache(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	key := digest.FromString("a layer's content")
	e := Entry{Key: key, DiffID: digest.FromString("tar"), Size: 1024}
	if _, ok := c.Get(key); ok {
		t.Fatal("an empty cache has an entry")
	}
	if err := c.Put(e); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Get(key); !ok || got != e {
		t.Errorf("Get %+v, %v; want %+v", got, ok, e)
	}
	if err := c.Put(Entry{Key: key, DiffID: "nonsense", Size: 1}); err == nil {
		t.Error("an entry without a digest was put")
	}

	other := digest.FromString("another layer's content")
	whole, err := os.ReadFile(c.file(key))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"another diffID": strings.Replace(string(whole), e.DiffID.Encoded(), other.Encoded(), 1),
		"another size":   strings.Replace(string(whole), `"size":1024`, `"size":1023`, 1),
		"no sum":         `{"key":"` + key.String() + `","diffID":"` + e.DiffID.String() + `","size":1024}`,
		"cut short":      `{"key":"` + key.String() + `","diffID":"sha256:`,
		"another key's":  `{"key":"` + other.String() + `","diffID":"` + e.DiffID.String() + `","size":1024}`,
		"no size":        `{"key":"` + key.String() + `","diffID":"` + e.DiffID.String() + `"}`,
		"empty":          ``,
		"not a sha256":   `{"key":"` + key.String() + `","diffID":"sha512:abc","size":1}`,
	} {
		if err := os.WriteFile(c.file(key), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, ok := c.Get(key); ok {
			t.Errorf("%s: read as %+v", name, got)
		}
		if _, err := os.Stat(c.file(key)); !os.IsNotExist(err) {
			t.Errorf("%s: the damaged entry is still there (%v)", name, err)
		}
	}

	// Three entries, the bound two: the least recently used goes.
	keys := []digest.Digest{}
	for i := range 3 {
		k := digest.FromString(string(rune('x' + i)))
		if err := c.Put(Entry{Key: k, DiffID: e.DiffID, Size: 1}); err != nil {
			t.Fatal(err)
		}
		old := time.Unix(int64(1000+i), 0)
		os.Chtimes(c.file(k), old, old)
		keys = append(keys, k)
	}
	c.Get(keys[0]) // used now
	if err := c.Prune(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} {
		if _, ok := c.Get(keys[i]); ok != want {
			t.Errorf("entry %d kept: %v, want %v", i, ok, want)
		}
	}

	stale, fresh := filepath.Join(dir, ".tmp-1"), filepath.Join(dir, ".tmp-2")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-time.Hour)
	os.Chtimes(stale, long, long)
	if _, err := Open(dir, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("a stale temporary file was left")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a temporary file being written was removed")
	}
}

// TestCacheCompressed: an entry's compressed blob comes back as put, an
// entry whose blob was altered on disk reads as none, and an entry without
// one (as older plugins wrote them) still reads.
func TestCacheCompressed(t *testing.T) {
	c, err := Open(t.TempDir(), DefaultMaxEntries)
	if err != nil {
		t.Fatal(err)
	}
	key := digest.FromString("a layer's content")
	plain := Entry{Key: key, DiffID: digest.FromString("tar"), Size: 1024}
	e := plain
	e.Compressed = Blob{Compressor: "gzip", Digest: digest.FromString("tar.gz"), Size: 300}
	for _, put := range []Entry{plain, e} {
		if err := c.Put(put); err != nil {
			t.Fatal(err)
		}
		if got, ok := c.Get(key); !ok || got != put {
			t.Errorf("Get %+v, %v; want %+v", got, ok, put)
		}
	}
	if err := c.Put(Entry{Key: key, DiffID: plain.DiffID, Size: 1, Compressed: Blob{Digest: e.Compressed.Digest, Size: 1}}); err == nil {
		t.Error("an entry whose compressed blob names no compressor was put")
	}
	whole, err := os.ReadFile(c.file(key))
	if err != nil {
		t.Fatal(err)
	}
	altered := strings.Replace(string(whole), `"size":300`, `"size":301`, 1)
	if altered == string(whole) {
		t.Fatalf("the entry holds no compressed size to alter: %s", whole)
	}
	if err := os.WriteFile(c.file(key), []byte(altered), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Get(key); ok {
		t.Errorf("an entry whose compressed blob was altered read as %+v", got)
	}
}
