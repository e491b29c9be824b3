package store

import (
	"context"
	"fmt"
	"github.com/opencontainers/go-digest"
	"io"
	"io/fs"
	"slices"
)

// MaxHashCandidates bounds the hash-like strings FindHashes keeps per store
// path, so that a path full of long runs of nix32 letters fails clearly
// instead of exhausting memory.
const MaxHashCandidates = 1 << 16

// HashScan is what FindHashes reports about one store path.
type HashScan struct {
	Hashes  []string      `json:"hashes,omitempty"` // sorted, distinct
	NarSize uint64        `json:"narSize"`
	NarHash digest.Digest `json:"narHash,omitempty"` // when asked for (NarHash)
	Files   []FileSum     `json:"files,omitempty"`   // when asked for (NarHashFiles)
}

// FindHashes lists every string of 32 nix32 characters in store path p
// (file contents, entry names and symlink targets) with the NAR size of p.
// It serves when the store's paths are not known beforehand, as in a
// builder that sees only the paths transferred so far: any hash of a store
// path that p mentions is among them, and the caller keeps those that name
// a path in the store. A run longer than 32 characters gives every 32-wide
// window, since a search for a hash would match any of them.
func FindHashes(ctx context.Context, fsys fs.FS, p Path) (HashScan, error) {
	v := &hashVisitor{ctx: ctx, fsys: fsys, path: p, found: map[string]struct{}{}}
	size, err := walkNAR(fsys, p, v)
	if err == nil {
		err = v.err
	}
	if err != nil {
		return HashScan{}, err
	}
	hashes := make([]string, 0, len(v.found))
	for h := range v.found {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	return HashScan{Hashes: hashes, NarSize: size}, nil
}

type hashVisitor struct {
	ctx   context.Context
	fsys  fs.FS
	path  Path
	run   []byte // the current run of nix32 characters, at most hashLen long
	found map[string]struct{}
	err   error
}

// feed continues the current run with data; runs end at the end of each
// string and file, not across them.
func (v *hashVisitor) feed(data []byte) {
	for _, c := range data {
		if !isHashByte[c] {
			v.run = v.run[:0]
			continue
		}
		if len(v.run) == hashLen {
			copy(v.run, v.run[1:])
			v.run = v.run[:hashLen-1]
		}
		v.run = append(v.run, c)
		if len(v.run) == hashLen {
			if _, ok := v.found[string(v.run)]; !ok {
				if len(v.found) == MaxHashCandidates && v.err == nil {
					v.err = fmt.Errorf("%s: more than %d hash-like strings; export a reference graph instead of scanning", v.path, MaxHashCandidates)
				}
				v.found[string(v.run)] = struct{}{}
			}
		}
	}
}

func (v *hashVisitor) text(s string) {
	v.feed([]byte(s))
	v.run = v.run[:0]
}

func (v *hashVisitor) file(name string, _ int64) error {
	if err := v.ctx.Err(); err != nil {
		return err
	}
	if v.err != nil {
		return v.err
	}
	f, err := v.fsys.Open(name)
	if err != nil {
		return inStorePath(v.path, name, err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		v.feed(buf[:n])
		if err == io.EOF {
			v.run = v.run[:0]
			return nil
		}
		if err != nil {
			return inStorePath(v.path, name, err)
		}
	}
}
