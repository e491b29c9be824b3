package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"runtime"
	"slices"
	"sync"
)

// Reference scanning, as Nix does it after a build: a store path references
// every candidate whose 32-character hash part occurs anywhere in its NAR
// serialisation. Nix feeds the whole NAR to its scanner; the NAR framing
// cannot take part in a match (see nar.go: the bytes around each string are
// zero padding, a length whose high bytes are zero, or the length of ")" or
// "node", none of them hash characters), so scanning each file's contents,
// each entry name and each symlink target on its own finds exactly the same
// hashes.

// prefilterBits is log2 of the size in bits of the Candidates prefilter: a
// 64 KiB table, which keeps false positives rare for stores of up to about
// 10^5 paths while staying in the CPU cache.
const prefilterBits = 19

// Candidates is the set of store paths a scan looks for, indexed by hash
// part. A hash that two candidates share (which Nix never produces) is only
// an error if a scan finds it.
type Candidates struct {
	dir       string
	byHash    map[string]Path
	ambiguous map[string][]Path // hash parts of more than one candidate
	// prefilter has a bit set for every candidate's first 8 hash bytes (see
	// prefilterIndex): most all-hash-character windows of the input fail
	// this test, which is much cheaper than a map lookup.
	prefilter []uint64
}

// NewCandidates indexes paths, which must all be in one store directory.
func NewCandidates(paths []Path) (*Candidates, error) {
	c := &Candidates{
		byHash:    make(map[string]Path, len(paths)),
		ambiguous: make(map[string][]Path),
		prefilter: make([]uint64, 1<<prefilterBits/64),
	}
	for _, p := range paths {
		if err := checkIn(p, &c.dir); err != nil {
			return nil, fmt.Errorf("candidates: %w", err)
		}
		if other, ok := c.byHash[p.Hash]; ok && other != p {
			if c.ambiguous[p.Hash] == nil {
				c.ambiguous[p.Hash] = []Path{other}
			}
			c.ambiguous[p.Hash] = append(c.ambiguous[p.Hash], p)
			continue
		}
		c.byHash[p.Hash] = p
		i := prefilterIndex([]byte(p.Hash))
		c.prefilter[i/64] |= 1 << (i % 64)
	}
	return c, nil
}

// prefilterIndex hashes the first 8 bytes of a hash part to a bit of the
// prefilter (Fibonacci hashing: the multiplication mixes all input bits into
// the top ones).
func prefilterIndex(hash []byte) uint64 {
	return binary.LittleEndian.Uint64(hash) * 0x9e3779b97f4a7c15 >> (64 - prefilterBits)
}

// search reports every candidate whose hash occurs in data to found.
//
// It looks at the last byte of each 32-byte window first: when that byte
// cannot be in a hash, none of the 32 windows containing it can match, so the
// search jumps past it. Binary data and ordinary text are mostly skipped
// this way, 32 bytes per test, and only runs of 32 or more hash characters
// are looked up, window by window.
func (c *Candidates) search(data []byte, found func(Path)) {
	for i := 0; i+hashLen <= len(data); {
		if !isHashByte[data[i+hashLen-1]] {
			i += hashLen
			continue
		}
		// Find where the run of hash characters ending at i+31 starts.
		j := i + hashLen - 2
		for j >= i && isHashByte[data[j]] {
			j--
		}
		if j >= i {
			i = j + 1
			continue
		}
		// data[i:i+32] is a window of hash characters: extend the run and
		// look up each window in it.
		end := i + hashLen
		for end < len(data) && isHashByte[data[end]] {
			end++
		}
		for k := i; k+hashLen <= end; k++ {
			window := data[k : k+hashLen]
			if bit := prefilterIndex(window); c.prefilter[bit/64]&(1<<(bit%64)) == 0 {
				continue
			}
			if p, ok := c.byHash[string(window)]; ok {
				found(p)
			}
		}
		i = end + 1 // data[end] is not a hash character, or the end of data
	}
}

// Scan finds the references of store path p among candidates, reading p from
// fsys, whose root is the store directory on disk (p's entry there is
// p.Base()): the candidates whose hash part occurs in p's file contents,
// directory entry names or symlink targets, p itself included when it
// mentions its own hash. These are the references Nix registers for a path it
// built with the same candidates (the build's inputs and outputs). Scan also
// measures p's NAR size.
//
// Files are read in chunks on as many goroutines as there are CPUs, so memory
// stays bounded however large the files. fsys must implement fs.ReadLinkFS
// (os.DirFS and os.Root.FS do) if p contains symlinks.
func Scan(ctx context.Context, fsys fs.FS, p Path, candidates *Candidates) (Info, error) {
	if err := p.check(); err != nil {
		return Info{}, err
	}
	s := newScanner(fsys, candidates)
	defer s.close()
	return s.scan(ctx, p)
}

// scanChunkSize is how much of a file a scan reads at a time.
const scanChunkSize = 256 << 10

// scanner scans store paths, reading their regular files on a pool of
// workers shared by all the paths it scans at the same time.
type scanner struct {
	fsys       fs.FS
	candidates *Candidates
	files      chan fileJob
	workers    sync.WaitGroup
}

// fileJob asks a worker to scan one regular file of a store path.
type fileJob struct {
	ctx  context.Context
	name string // in fsys
	size int64  // as measured for the NAR size; the contents must match it
	scan *pathScan
}

// pathScan collects the results of one store path's scan.
type pathScan struct {
	path    Path
	pending sync.WaitGroup // file jobs not yet done
	mu      sync.Mutex
	found   map[Path]bool
	err     error // the first error
}

func (ps *pathScan) add(found map[Path]bool, err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	maps.Copy(ps.found, found)
	if ps.err == nil {
		ps.err = err
	}
}

func newScanner(fsys fs.FS, candidates *Candidates) *scanner {
	return newScannerChunked(fsys, candidates, scanChunkSize)
}

// newScannerChunked is newScanner with another read size, so that tests can
// put chunk boundaries anywhere.
func newScannerChunked(fsys fs.FS, candidates *Candidates, chunkSize int) *scanner {
	s := &scanner{fsys: fsys, candidates: candidates, files: make(chan fileJob)}
	for range runtime.GOMAXPROCS(0) {
		s.workers.Go(func() {
			// The buffer keeps the last hashLen-1 bytes of the previous chunk
			// in front of the next one, so that a hash split between two
			// reads is still seen whole.
			buf := make([]byte, hashLen-1+chunkSize)
			found := make(map[Path]bool)
			for job := range s.files {
				err := s.scanFile(job, buf, found)
				job.scan.add(found, err)
				clear(found)
				job.scan.pending.Done()
			}
		})
	}
	return s
}

// close stops the workers once the scans in progress are done.
func (s *scanner) close() {
	close(s.files)
	s.workers.Wait()
}

// scan scans one store path. Several scans may run at the same time.
func (s *scanner) scan(ctx context.Context, p Path) (Info, error) {
	if s.candidates.dir != "" && s.candidates.dir != p.Dir {
		return Info{}, fmt.Errorf("scan %s: the candidates are in store directory %s", p, s.candidates.dir)
	}
	ps := &pathScan{path: p, found: make(map[Path]bool)}
	narSize, err := walkNAR(s.fsys, p, &scanVisitor{ctx: ctx, scanner: s, scan: ps})
	ps.pending.Wait()
	if err == nil {
		err = ps.err
	}
	if err != nil {
		return Info{}, err
	}
	refs := slices.SortedFunc(maps.Keys(ps.found), Path.Compare)
	for _, ref := range refs {
		if others := s.candidates.ambiguous[ref.Hash]; others != nil {
			return Info{}, fmt.Errorf("%s mentions hash %s, which is the hash part of several store paths: %s", p, ref.Hash, joinPaths(others, ", "))
		}
	}
	return Info{Path: p, References: refs, NarSize: narSize}, nil
}

// scanVisitor searches a store path's names and symlink targets itself and
// hands its regular files to the workers.
type scanVisitor struct {
	ctx     context.Context
	scanner *scanner
	scan    *pathScan
}

func (v *scanVisitor) text(s string) {
	v.scanner.candidates.search([]byte(s), func(p Path) {
		v.scan.mu.Lock()
		v.scan.found[p] = true
		v.scan.mu.Unlock()
	})
}

func (v *scanVisitor) file(name string, size int64) error {
	// A file that failed ends the walk.
	v.scan.mu.Lock()
	err := v.scan.err
	v.scan.mu.Unlock()
	if err != nil {
		return err
	}
	v.scan.pending.Add(1)
	select {
	case v.scanner.files <- fileJob{ctx: v.ctx, name: name, size: size, scan: v.scan}:
		return nil
	case <-v.ctx.Done():
		v.scan.pending.Done()
		return v.ctx.Err()
	}
}

// scanFile searches one regular file, adding what it finds to found. buf
// has room for hashLen-1 bytes of the previous chunk, then a chunk.
func (s *scanner) scanFile(job fileJob, buf []byte, found map[Path]bool) error {
	if err := job.ctx.Err(); err != nil {
		return err
	}
	p := job.scan.path
	f, err := s.fsys.Open(job.name)
	if err != nil {
		return inStorePath(p, job.name, err)
	}
	defer f.Close()
	add := func(ref Path) { found[ref] = true }
	var total int64
	chunk := buf[hashLen-1:]
	kept := 0 // bytes of the previous chunk kept in front of chunk
	for {
		if err := job.ctx.Err(); err != nil {
			return err
		}
		n, err := f.Read(chunk)
		total += int64(n)
		data := buf[hashLen-1-kept : hashLen-1+n]
		s.candidates.search(data, add)
		kept = min(len(data), hashLen-1)
		copy(buf[hashLen-1-kept:], data[len(data)-kept:])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return inStorePath(p, job.name, err)
		}
	}
	if total != job.size {
		return inStorePath(p, job.name, fmt.Errorf("changed while being scanned: %d bytes read, %d expected", total, job.size))
	}
	return nil
}
