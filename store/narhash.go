package store

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// NarHash returns the SHA-256 digest of the NAR serialisation of store path
// p, read from fsys as NarSize reads it, and the NAR's size. It is the
// narHash that Nix and Guix record for the path, and that nix-store --verify
// --check-contents compares with the path's contents.
//
// The digest is in the form both store databases hold it in their
// ValidPaths.hash column: "sha256:" and 64 hexadecimal digits. NixHash gives
// the nix32 form; nix path-info --json (Nix 2.8) prints the same bytes as an
// SRI hash, sha256-<base64>.
func NarHash(ctx context.Context, fsys fs.FS, p Path) (digest.Digest, uint64, error) {
	v, size, err := hashNAR(ctx, fsys, p, false)
	if err != nil {
		return "", 0, err
	}
	return v.sum(p, size)
}

// FileSum is a regular file of a store path with the digests of its
// contents, as software bills of materials list files.
type FileSum struct {
	// Name is the file's path in the store path, "/"-separated; "" when
	// the store path is the file.
	Name   string `json:"name"`
	SHA1   string `json:"sha1"`   // hexadecimal
	SHA256 string `json:"sha256"` // hexadecimal
}

// NarHashFiles is NarHash with every regular file of p and its digests,
// read in the same pass, sorted by name (bytewise). Directories and
// symlinks are not files here: they have no contents to digest.
func NarHashFiles(ctx context.Context, fsys fs.FS, p Path) (HashScan, error) {
	v, size, err := hashNAR(ctx, fsys, p, true)
	if err != nil {
		return HashScan{}, err
	}
	hash, size, err := v.sum(p, size)
	if err != nil {
		return HashScan{}, err
	}
	slices.SortFunc(v.files, func(a, b FileSum) int { return strings.Compare(a.Name, b.Name) })
	return HashScan{NarSize: size, NarHash: hash, Files: v.files}, nil
}

// hashNAR walks p into a narHasher, which also digests each file when
// files says, and returns it with the NAR's size.
func hashNAR(ctx context.Context, fsys fs.FS, p Path, files bool) (*narHasher, uint64, error) {
	if err := p.check(); err != nil {
		return nil, 0, err
	}
	v := &narHasher{narDigest: newNarDigest(64 << 10), ctx: ctx, fsys: fsys, path: p, listFiles: files}
	size, err := walkNAR(fsys, p, v)
	if err != nil {
		return nil, 0, err
	}
	return v, size, nil
}

// WalkPathHashing calls fn for every node of store path p in fsys, as
// WalkPath does, and returns the NAR hash and size of p as fn read it: fn
// writes a regular file's contents to contents as it reads them (contents
// is nil for other nodes), so that one read of every file serves fn and the
// hash. A file whose contents differ in length from its size is refused.
func WalkPathHashing(fsys fs.FS, p Path, fn func(name string, info fs.FileInfo, contents io.Writer) error) (digest.Digest, uint64, error) {
	if err := p.check(); err != nil {
		return "", 0, err
	}
	v := &narTee{narDigest: newNarDigest(4 << 10), path: p, fn: fn}
	size, err := walkNAR(fsys, p, v)
	if err != nil {
		return "", 0, err
	}
	return v.sum(p, size)
}

// narTee hashes the NAR of a store path from what the walk and fn read.
type narTee struct {
	narDigest
	path    Path
	fn      func(name string, info fs.FileInfo, contents io.Writer) error
	pending fs.FileInfo // the regular file whose contents come next
}

func (v *narTee) node(name string, info fs.FileInfo) error {
	if info.Mode().IsRegular() {
		v.pending = info // fn sees it where the NAR holds its contents
		return nil
	}
	return v.fn(name, info, nil)
}

func (v *narTee) file(name string, size int64) error {
	v.write(binary.LittleEndian.AppendUint64(v.buf[:0], uint64(size)))
	before := v.written
	if err := v.fn(name, v.pending, teeWriter{v}); err != nil {
		return err
	}
	if read := v.written - before; read != uint64(size) {
		return inStorePath(v.path, name, fmt.Errorf("changed while being read: %d bytes read, %d expected", read, size))
	}
	var zeros [8]byte
	v.write(zeros[:narPadding(uint64(size))])
	return nil
}

// teeWriter is the writer fn hands a file's contents to.
type teeWriter struct{ v *narTee }

func (c teeWriter) Write(b []byte) (int, error) {
	c.v.write(b)
	return len(b), nil
}

// NixHash renders a SHA-256 digest the way nix-store --query --hash prints a
// NAR hash, and as closureInfo's registration and narinfo files hold it:
// "sha256:" and the digest in nix32, Nix's base 32 (52 characters).
func NixHash(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("%s: not a sha256 digest", d)
	}
	sum, err := hex.DecodeString(d.Encoded()) // Validate checked it
	if err != nil {
		return "", fmt.Errorf("%s: %w", d, err)
	}
	return "sha256:" + nix32(sum), nil
}

// nix32 encodes data in Nix's base 32: five bits per character, the last
// character holding the lowest bits of the first byte, so the string reads
// from the end of the data (unlike RFC 4648), in the alphabet of store path
// hashes.
func nix32(data []byte) string {
	n := (len(data)*8-1)/5 + 1
	out := make([]byte, n)
	for i := range n {
		bit := (n - 1 - i) * 5 // the first bit of character i
		b := uint(data[bit/8]) >> (bit % 8)
		if bit/8+1 < len(data) {
			b |= uint(data[bit/8+1]) << (8 - bit%8)
		}
		out[i] = hashAlphabet[b&0x1f]
	}
	return string(out)
}

// nix32Decode is the inverse of nix32: it returns the size bytes that s
// encodes. Like Nix, it refuses a character outside the alphabet and a first
// character with bits beyond the data, so that each value has one encoding.
func nix32Decode(s string, size int) ([]byte, error) {
	n := (size*8-1)/5 + 1
	if len(s) != n {
		return nil, fmt.Errorf("%d bytes take %d nix32 characters, not %d", size, n, len(s))
	}
	data := make([]byte, size)
	for i := range n {
		value := strings.IndexByte(hashAlphabet, s[i])
		if value < 0 {
			return nil, fmt.Errorf("%s is not a nix32 character", quote(s[i:i+1]))
		}
		bit := (n - 1 - i) * 5 // where character i's lowest bit goes
		data[bit/8] |= byte(value << (bit % 8))
		if high := byte(value >> (8 - bit%8)); high != 0 {
			if bit/8+1 == size {
				return nil, fmt.Errorf("%s holds more than %d bytes", quote(s), size)
			}
			data[bit/8+1] |= high
		}
	}
	return data, nil
}

// parseNarHash turns a NAR hash in any notation Nix writes into the form
// NarHash returns. Nix writes SRI (sha256-<base64>, nix path-info --json
// since 2.4), sha256:<nix32> (closureInfo, nix-store --query --hash, older
// path-info JSON) and bare base16 (nix-store --dump-db), and the store
// databases hold sha256:<base16>. As for Nix, after "sha256:" or without a
// prefix the length tells the base: 64 base16 digits, 52 nix32 characters
// or 44 base64 ones.
func parseNarHash(s string) (digest.Digest, error) {
	sum, err := narHashBytes(s)
	if err != nil {
		return "", fmt.Errorf("NAR hash %s: %w", quote(s), err)
	}
	return digest.NewDigestFromBytes(digest.SHA256, sum), nil
}

func narHashBytes(s string) ([]byte, error) {
	if sri, ok := strings.CutPrefix(s, "sha256-"); ok {
		return base64Digest(sri)
	}
	s, _ = strings.CutPrefix(s, "sha256:")
	switch len(s) {
	case 2 * sha256.Size:
		return hex.DecodeString(s)
	case nix32Len:
		return nix32Decode(s, sha256.Size)
	case base64Len:
		return base64Digest(s)
	}
	return nil, fmt.Errorf("not a sha256 hash: expected sha256-<base64> or an optional sha256: and %d base16, %d nix32 or %d base64 characters", 2*sha256.Size, nix32Len, base64Len)
}

// The lengths of a SHA-256 digest in nix32 and in padded base64.
const (
	nix32Len  = (sha256.Size*8-1)/5 + 1
	base64Len = (sha256.Size + 2) / 3 * 4
)

// base64Digest decodes a SHA-256 digest in padded standard base64.
func base64Digest(s string) ([]byte, error) {
	if len(s) != base64Len {
		return nil, fmt.Errorf("a sha256 digest is %d base64 characters", base64Len)
	}
	sum, err := base64.StdEncoding.DecodeString(s)
	if err == nil && len(sum) != sha256.Size {
		// Two padding characters, or line breaks, which DecodeString
		// skips.
		err = fmt.Errorf("%d bytes, not a sha256 digest", len(sum))
	}
	return sum, err
}

// narDigest writes a NAR, as a walk of its store path visits it, into a
// hash and counts its bytes.
type narDigest struct {
	hash    hash.Hash
	buf     []byte // for serialising strings (and, for narHasher, reading files); longer ones allocate
	written uint64
}

func newNarDigest(bufSize int) narDigest {
	return narDigest{hash: sha256.New(), buf: make([]byte, bufSize)}
}

func (v *narDigest) write(b []byte) {
	v.hash.Write(b) // a hash.Hash never fails
	v.written += uint64(len(b))
}

func (v *narDigest) fixed(serialised []byte) { v.write(serialised) }

func (v *narDigest) text(s string) { v.write(narString(v.buf[:0], s)) }

// sum returns the digest of the NAR the walk serialised, whose size the
// walk computed.
func (v *narDigest) sum(p Path, size uint64) (digest.Digest, uint64, error) {
	if v.written != size {
		// walkNAR's sizes and the serialisation disagree: a bug here,
		// never a property of the input.
		return "", 0, fmt.Errorf("%s: serialised %d bytes of NAR, but its size is %d", p, v.written, size)
	}
	return digest.NewDigestFromBytes(digest.SHA256, v.hash.Sum(nil)), size, nil
}

// narHasher writes the NAR of a store path into a hash, reading its files.
type narHasher struct {
	narDigest
	ctx  context.Context
	fsys fs.FS
	path Path
	// listFiles digests each file's contents into files as well.
	listFiles bool
	files     []FileSum
}

func (v *narHasher) file(name string, size int64) error {
	if err := v.ctx.Err(); err != nil {
		return err
	}
	f, err := v.fsys.Open(name)
	if err != nil {
		return inStorePath(v.path, name, err)
	}
	defer f.Close()
	v.write(binary.LittleEndian.AppendUint64(v.buf[:0], uint64(size)))
	var sha1Sum, sha256Sum hash.Hash
	if v.listFiles {
		sha1Sum, sha256Sum = sha1.New(), sha256.New()
	}
	// One byte more than expected tells a file that grew.
	r := io.LimitReader(f, size+1)
	var total int64
	for {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(v.buf)
		v.write(v.buf[:n])
		if v.listFiles {
			sha1Sum.Write(v.buf[:n])
			sha256Sum.Write(v.buf[:n])
		}
		total += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return inStorePath(v.path, name, err)
		}
	}
	if total != size {
		return inStorePath(v.path, name, fmt.Errorf("changed while being hashed: %d bytes read, %d expected", total, size))
	}
	var zeros [8]byte
	v.write(zeros[:narPadding(uint64(size))])
	if v.listFiles {
		// name is p.Base(), or p.Base() and the file's path in p.
		rel := strings.TrimPrefix(strings.TrimPrefix(name, v.path.Base()), "/")
		v.files = append(v.files, FileSum{Name: rel, SHA1: hex.EncodeToString(sha1Sum.Sum(nil)), SHA256: hex.EncodeToString(sha256Sum.Sum(nil))})
	}
	return nil
}
