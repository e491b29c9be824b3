package layertar

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// blockSize is a tar block: headers take whole blocks, and every entry's
// contents are padded to a block.
const blockSize = 512

// contentTap passes the change writer's tar on to w, and hands the contents
// of one regular file, once armed for it, to a writer of their own as they
// go by: the change writer reads every file itself, and this is how its one
// read also serves the store path's NAR hash. It follows the tar from the
// file's header on: the padding of the entry before, extended headers
// (PAX), then the file's own header and its contents.
type contentTap struct {
	w   io.Writer
	off int64 // bytes of tar passed on

	contents io.Writer // the armed file's, until they all went by
	left     int64     // bytes of the armed file's contents to come
	inHeader bool      // its header has not gone by yet
	block    []byte    // the header block being read
	skip     int64     // bytes of an extended header's data to pass over
}

// arm makes the next size bytes of file contents in the tar go to contents.
func (t *contentTap) arm(contents io.Writer, size int64) {
	t.contents, t.left, t.inHeader, t.block, t.skip = contents, size, true, t.block[:0], 0
}

// armed tells whether the armed file's contents have not all gone by.
func (t *contentTap) armed() bool { return t.contents != nil }

func (t *contentTap) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	rest, pos := p[:n], t.off
	t.off += int64(n)
	for len(rest) > 0 && t.contents != nil {
		k, ferr := t.follow(rest, pos)
		if ferr != nil {
			return n, ferr
		}
		rest, pos = rest[k:], pos+int64(k)
	}
	return n, err
}

// follow consumes the start of b, which is at offset pos in the tar, and
// returns how many bytes it consumed.
func (t *contentTap) follow(b []byte, pos int64) (int, error) {
	switch {
	case !t.inHeader:
		k := int(min(t.left, int64(len(b))))
		if _, err := t.contents.Write(b[:k]); err != nil {
			return 0, err
		}
		if t.left -= int64(k); t.left == 0 {
			t.contents = nil
		}
		return k, nil
	case t.skip > 0:
		k := int(min(t.skip, int64(len(b))))
		t.skip -= int64(k)
		return k, nil
	case len(t.block) == 0 && pos%blockSize != 0:
		// The padding of the entry before.
		return int(min(blockSize-pos%blockSize, int64(len(b)))), nil
	}
	k := min(blockSize-len(t.block), len(b))
	t.block = append(t.block, b[:k]...)
	if len(t.block) < blockSize {
		return k, nil
	}
	header := t.block
	t.block = t.block[:0]
	switch typeflag := header[156]; typeflag {
	case 'x', 'g', 'L', 'K': // extended headers: their data, then the file's header
		size, err := strconv.ParseInt(strings.TrimRight(string(header[124:136]), " \x00"), 8, 64)
		if err != nil || size < 0 {
			return 0, fmt.Errorf("layer tar: extended header of size %q", header[124:136])
		}
		t.skip = (size + blockSize - 1) / blockSize * blockSize
	case '0', 0:
		t.inHeader = false
		if t.left == 0 {
			t.contents = nil
		}
	default:
		return 0, fmt.Errorf("layer tar: header of type %q where a regular file's was due", typeflag)
	}
	return k, nil
}
