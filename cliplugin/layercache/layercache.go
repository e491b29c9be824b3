// Package layercache remembers, on the host, the digest and size of every
// store layer the plugin has written, by the layer's content key
// (layerllb.ContentKey): store paths never change once they exist, so a
// layer of the same paths (by NAR hash and size) and settings is never
// read again on this host.
package layercache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Entry is what the cache holds of a layer.
type Entry struct {
	Key    digest.Digest `json:"key"`
	DiffID digest.Digest `json:"diffID"` // the digest of the layer's tar
	Size   int64         `json:"size"`   // its size in bytes
	// Compressed is the layer's compressed blob once one was written;
	// zero: none yet.
	Compressed Blob `json:"compressed,omitzero"`
}

// Blob is a layer's compressed form, as one compressor writes it: another
// compressor (another level, library or Go release) may write other bytes.
type Blob struct {
	Compressor string        `json:"compressor"`
	Digest     digest.Digest `json:"digest"`
	Size       int64         `json:"size"`
}

// check tells a whole entry of key from a damaged one.
func (e Entry) check(key digest.Digest) error {
	switch {
	case e.Key != key:
		return fmt.Errorf("holds the entry of %s", e.Key)
	case e.DiffID.Validate() != nil || e.DiffID.Algorithm() != digest.SHA256:
		return fmt.Errorf("holds no layer digest (%q)", e.DiffID)
	case e.Size <= 0:
		return fmt.Errorf("holds no layer size (%d)", e.Size)
	case e.Compressed != Blob{} && (e.Compressed.Compressor == "" || e.Compressed.Digest.Validate() != nil || e.Compressed.Size <= 0):
		return fmt.Errorf("holds a damaged compressed blob (%+v)", e.Compressed)
	}
	return nil
}

// record is an entry as its file holds it: with the digest of its fields,
// so that an entry altered on disk (a digest or a size changed, where the
// file is still a well-formed entry) is told from the entry put.
type record struct {
	Entry
	Sum digest.Digest `json:"sum"`
}

func (e Entry) sum() digest.Digest {
	fields := fmt.Sprintf("%s %s %d", e.Key, e.DiffID, e.Size)
	if e.Compressed != (Blob{}) {
		fields += fmt.Sprintf(" %q %s %d", e.Compressed.Compressor, e.Compressed.Digest, e.Compressed.Size)
	}
	return digest.FromString(fields)
}

// Cache is a directory of entries, one file each, named by key.
type Cache struct {
	dir string
	max int // entries kept at most; older ones go first
}

// DefaultMaxEntries bounds a cache's entries: each is a few hundred bytes,
// and a build of a hundred layers adds at most a hundred.
const DefaultMaxEntries = 20000

// Open returns the cache in dir, made if missing; temporary files that a
// killed process left are removed.
func Open(dir string, maxEntries int) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &Cache{dir: dir, max: maxEntries}
	if stale, err := filepath.Glob(filepath.Join(dir, tempPattern)); err == nil {
		for _, f := range stale {
			if fi, err := os.Stat(f); err == nil && time.Since(fi.ModTime()) > staleAfter {
				os.Remove(f)
			}
		}
	}
	return c, nil
}

// DefaultDir is where a user's cache lives: storepack/layers in the user
// cache directory ($XDG_CACHE_HOME, ~/.cache).
func DefaultDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "storepack", "layers"), nil
}

const (
	tempPattern = ".tmp-*"
	// staleAfter is how old a temporary file must be to be another
	// process's leftover rather than its entry being written.
	staleAfter = 10 * time.Minute
)

func (c *Cache) file(key digest.Digest) string {
	return filepath.Join(c.dir, key.Encoded()+".json")
}

// Get returns the entry of key. A damaged entry (a file cut short, another
// key's, not an entry, one whose fields do not match its sum) is removed
// and reads as none, so that the layer is written again and its entry put
// anew.
func (c *Cache) Get(key digest.Digest) (Entry, bool) {
	data, err := os.ReadFile(c.file(key))
	if err != nil {
		return Entry{}, false
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil || r.check(key) != nil || r.Sum != r.sum() {
		os.Remove(c.file(key))
		return Entry{}, false
	}
	e := r.Entry
	// Used now: pruning keeps what is used.
	now := time.Now()
	os.Chtimes(c.file(key), now, now)
	return e, true
}

// Put records e, atomically: a reader sees the whole entry or none.
func (c *Cache) Put(e Entry) error {
	if err := e.check(e.Key); err != nil {
		return fmt.Errorf("layer cache: an entry that %w", err)
	}
	data, err := json.Marshal(record{Entry: e, Sum: e.sum()})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, tempPattern)
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), c.file(e.Key))
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// Prune removes the least recently used entries beyond the bound; a build
// calls it once, after its entries are put.
func (c *Cache) Prune() error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	type aged struct {
		name string
		used time.Time
	}
	var files []aged
	for _, de := range entries {
		if !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed by another process meanwhile
			}
			return err
		}
		files = append(files, aged{de.Name(), fi.ModTime()})
	}
	if len(files) <= c.max {
		return nil
	}
	slices.SortFunc(files, func(a, b aged) int { return a.used.Compare(b.used) })
	for _, f := range files[:len(files)-c.max] {
		os.Remove(filepath.Join(c.dir, f.name))
	}
	return nil
}
