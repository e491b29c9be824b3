package hostbuild

import (
	"compress/gzip"
	"fmt"
	"runtime"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/cliplugin/layercache"
)

// gzipCompressor names the compressor of the host's gzip blobs in the host's
// cache of layer digests: the standard library's, whose output another Go
// release may change.
var gzipCompressor = fmt.Sprintf("compress/gzip level %d %s", gzip.DefaultCompression, runtime.Version())

// gzipForms remembers, in the host's cache of layer digests, the gzip blob
// of each store layer written on the host, so that a push of layers the
// registry already holds compresses none of them. Its zero value (no
// cache) remembers nothing.
type gzipForms struct {
	cache *layercache.Cache

	mu      sync.Mutex
	entries map[digest.Digest]layercache.Entry // by the layer's diffID, as the cache holds them
}

// note records the cache's entry of a layer (HostSource.digest read or put
// it), so that its gzip blob is known without reading the cache again.
func (g *gzipForms) note(e layercache.Entry) {
	if g == nil || g.cache == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.entries == nil {
		g.entries = map[digest.Digest]layercache.Entry{}
	}
	g.entries[e.DiffID] = e
}

func (g *gzipForms) entry(diffID digest.Digest) (layercache.Entry, bool) {
	if g == nil || g.cache == nil {
		return layercache.Entry{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.entries[diffID]
	return e, ok
}

// known returns the gzip blob of the layer diffID that the cache holds.
func (g *gzipForms) known(diffID digest.Digest) (ocispecs.Descriptor, bool) {
	e, ok := g.entry(diffID)
	if !ok || e.Compressed.Compressor != gzipCompressor {
		return ocispecs.Descriptor{}, false
	}
	return ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: e.Compressed.Digest, Size: e.Compressed.Size}, true
}

// remember records gz as the gzip blob of the layer diffID; zero gz
// forgets the one recorded (one that turned out wrong).
func (g *gzipForms) remember(diffID digest.Digest, gz ocispecs.Descriptor) {
	e, ok := g.entry(diffID)
	if !ok {
		return
	}
	e.Compressed = layercache.Blob{}
	if gz.Digest != "" {
		e.Compressed = layercache.Blob{Compressor: gzipCompressor, Digest: gz.Digest, Size: gz.Size}
	}
	g.note(e)
	// A cache that cannot be written costs the next push a compression.
	_ = g.cache.Put(e)
}
