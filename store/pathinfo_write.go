package store

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
)

// WritePathInfoJSON writes g in the object form of `nix path-info --json`
// (Nix 2.19+), the form Load reads back into the same graph:
//
//	{
//	  "/nix/store/<hash>-<name>": {
//	    "narHash": "sha256-<base64>",
//	    "narSize": 1234,
//	    "references": [
//	      "/nix/store/<hash>-<name>"
//	    ]
//	  }
//	}
//
// Keys and references are sorted, the indent is two spaces and the output
// ends with a newline, so that the same graph always gives the same bytes.
// Only the fields a graph has are written: narHash in Nix's SRI notation,
// left out when unknown, narSize (0 when unknown, as Load reads it) and
// references (self-references included, as Nix lists them).
// An empty graph gives {}, which Load refuses, as it refuses any file
// without a store path.
func WritePathInfoJSON(w io.Writer, g *Graph) error {
	if g == nil {
		return errors.New("write path-info JSON: no graph")
	}
	if dir := g.StoreDir(); !utf8.ValidString(dir) {
		// JSON text is UTF-8: the store directory could not be written
		// so that it reads back the same.
		return fmt.Errorf("write path-info JSON: store directory %s is not valid UTF-8", quote(dir))
	}
	bw := bufio.NewWriter(w)
	if len(g.nodes) == 0 {
		bw.WriteString("{}\n")
		return bw.Flush()
	}
	buf := make([]byte, 0, 256)
	bw.WriteString("{\n")
	for i, n := range g.nodes {
		buf = append(buf[:0], "  "...)
		buf = appendJSONPath(buf, n.path)
		buf = append(buf, ": {\n    "...)
		if n.narHash != "" {
			buf = append(buf, `"narHash": "sha256-`...)
			buf = appendSRIDigest(buf, n.narHash)
			buf = append(buf, "\",\n    "...)
		}
		buf = append(buf, `"narSize": `...)
		buf = strconv.AppendUint(buf, n.narSize, 10)
		buf = append(buf, ",\n    \"references\": ["...)
		refs := g.refs.of(i)
		for k, j := range refs {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, "\n      "...)
			buf = appendJSONPath(buf, g.nodes[j].path)
		}
		if len(refs) > 0 {
			buf = append(buf, "\n    "...)
		}
		buf = append(buf, "]\n  }"...)
		if i < len(g.nodes)-1 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// appendJSONPath appends p as a JSON string. Hash and name are plain ASCII;
// the store directory may hold quotes, backslashes and other UTF-8 text
// (never control characters, see CheckStoreDir), written as they are except
// for the two escapes JSON requires.
func appendJSONPath(buf []byte, p Path) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(p.Dir); i++ {
		switch c := p.Dir[i]; {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, `\u00`...)
			buf = append(buf, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	buf = append(buf, '/')
	buf = append(buf, p.Hash...)
	buf = append(buf, '-')
	buf = append(buf, p.Name...)
	return append(buf, '"')
}

// appendSRIDigest appends the base64 of d, a digest that NewGraph checked,
// as an SRI hash holds it after "sha256-".
func appendSRIDigest(buf []byte, d digest.Digest) []byte {
	sum, _ := hex.DecodeString(d.Encoded()) // valid: see checkNarHash
	return base64.StdEncoding.AppendEncode(buf, sum)
}
