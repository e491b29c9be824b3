package imageverify

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Trees digests the files a layer's tar holds, grouped by the store path
// that holds them (its base name; "" for the store directory and its
// parents): each entry's name, type, permission bits, owner, modification
// time (whole seconds), link target and content, in name order. Two tar
// writers that write the same files give the same trees, whatever else
// their headers say (another builder writes the mode's type bits, or other
// PAX records).
func Trees(r io.Reader, storeDir string) (map[string]digest.Digest, error) {
	storeDir = strings.Trim(storeDir, "/")
	lines := map[string][]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if sparse(hdr) {
			// A few bytes of it can stand for terabytes of holes to
			// read; no layer storepack writes has one.
			return nil, fmt.Errorf("%s: a sparse file, which no store layer holds", hdr.Name)
		}
		name := strings.Trim(path.Clean("/"+hdr.Name), "/")
		group := ""
		if rest, ok := strings.CutPrefix(name, storeDir+"/"); ok {
			group, _, _ = strings.Cut(rest, "/")
		}
		typ := hdr.Typeflag
		if typ == tar.TypeRegA {
			typ = tar.TypeReg
		}
		content := ""
		if typ == tar.TypeReg {
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				return nil, fmt.Errorf("%s: %w", hdr.Name, err)
			}
			content = digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)).String()
		}
		lines[group] = append(lines[group], fmt.Sprintf("%q %c %o %d:%d %d %q %s\n",
			name, typ, hdr.Mode&0o7777, hdr.Uid, hdr.Gid, hdr.ModTime.Unix(), hdr.Linkname, content))
	}
	trees := make(map[string]digest.Digest, len(lines))
	for group, ls := range lines {
		slices.Sort(ls)
		trees[group] = digest.FromString(strings.Join(ls, ""))
	}
	return trees, nil
}

// sparse reports whether hdr is a sparse file, GNU's or PAX's.
func sparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
