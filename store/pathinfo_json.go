package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// pathInfoEntry is the part of one `nix path-info --json` entry that a graph
// needs. Other fields (narHash, deriver, signatures, ca, …) are ignored.
type pathInfoEntry struct {
	Path       *string     `json:"path"` // array form only: the object form keys entries by path
	NarSize    json.Number `json:"narSize"`
	References *[]string   `json:"references"`
	Valid      *bool       `json:"valid"` // array form: false for a path that is not in the store
}

// readPathInfoJSON reads `nix path-info --json` output in either form:
//
//	[{"path": "/nix/store/…", "narSize": 1, "references": […]}, …]   Nix ≤ 2.18
//	{"/nix/store/…": {"narSize": 1, "references": […]}, …}         Nix 2.19+
//
// An invalid path ("valid": false in the array form, null in the object form)
// is an error: the graph would miss it. The input is decoded one entry at a
// time, so memory stays proportional to the graph, not to the input. Errors
// name the entry by index and, once known, by path; json.Decoder's byte
// offsets are not used because they are unreliable between tokens.
func readPathInfoJSON(name string, r io.Reader) ([]Info, error) {
	limited := &entryLimitReader{r: r}
	dec := json.NewDecoder(limited)
	fail := func(where string, err error) error {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field == "":
			err = fmt.Errorf("expected an object, found a JSON %s", typeErr.Value)
		case errors.As(err, &typeErr):
			err = fmt.Errorf("%s: unexpected JSON %s", typeErr.Field, typeErr.Value)
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			err = errors.New("unexpected end of JSON input")
		}
		if where != "" {
			return fmt.Errorf("%s: %s: %w", name, where, err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}

	open, err := dec.Token()
	if err != nil {
		return nil, fail("", err)
	}
	var (
		infos    []Info
		storeDir string // set by the first entry
	)
	switch open {
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			limited.reset()
			where := fmt.Sprintf("entry %d", i)
			var entry pathInfoEntry
			if err := dec.Decode(&entry); err != nil {
				return nil, fail(where, err)
			}
			if entry.Path == nil {
				return nil, fail(where, errors.New(`no "path"`))
			}
			where = fmt.Sprintf("entry %d (%s)", i, quote(*entry.Path))
			info, err := entry.info(*entry.Path, &storeDir)
			if err != nil {
				return nil, fail(where, err)
			}
			infos = append(infos, info)
		}
	case json.Delim('{'):
		for i := 0; dec.More(); i++ {
			limited.reset()
			key, err := dec.Token()
			if err != nil {
				return nil, fail(fmt.Sprintf("entry %d", i), err)
			}
			path := key.(string) // object keys are always strings
			where := fmt.Sprintf("entry %d (%s)", i, quote(path))
			var entry *pathInfoEntry
			if err := dec.Decode(&entry); err != nil {
				return nil, fail(where, err)
			}
			if entry == nil {
				return nil, fail(where, errors.New("not valid (null): the path is not in the store"))
			}
			info, err := entry.info(path, &storeDir)
			if err != nil {
				return nil, fail(where, err)
			}
			infos = append(infos, info)
		}
	default:
		return nil, fail("", fmt.Errorf("expected a JSON array or object, found %v", open))
	}
	// The closing bracket, then nothing but white space.
	if _, err := dec.Token(); err != nil {
		return nil, fail("", err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, fail("", err)
		}
		return nil, fail("", fmt.Errorf("unexpected %v after the JSON value", tok))
	}
	return infos, nil
}

// info validates an entry describing path. *storeDir is the graph's store
// directory, set from the first path when empty.
func (e *pathInfoEntry) info(path string, storeDir *string) (Info, error) {
	p, err := parseInStore(storeDir, path)
	if err != nil {
		return Info{}, err
	}
	if e.Valid != nil && !*e.Valid {
		return Info{}, errors.New(`not valid ("valid": false): the path is not in the store`)
	}
	if e.References == nil {
		return Info{}, errors.New(`no "references"`)
	}
	info := Info{Path: p}
	if e.NarSize != "" {
		if info.NarSize, err = strconv.ParseUint(string(e.NarSize), 10, 64); err != nil {
			return Info{}, fmt.Errorf("narSize %s is not a byte count", quote(string(e.NarSize)))
		}
	}
	for i, ref := range *e.References {
		refPath, err := parseInStore(storeDir, ref)
		if err != nil {
			return Info{}, fmt.Errorf("reference %d: %w", i, err)
		}
		info.References = append(info.References, refPath)
	}
	return info, nil
}

// parseInStore parses s as a path in *storeDir, or sets *storeDir from s when
// it is still empty: a graph file names its store directory implicitly.
func parseInStore(storeDir *string, s string) (Path, error) {
	if *storeDir != "" {
		return ParsePathIn(*storeDir, s)
	}
	p, err := ParsePath(s)
	if err == nil {
		*storeDir = p.Dir
	}
	return p, err
}

// maxEntrySize bounds the JSON text of one entry. Real entries are a few
// kilobytes (a path with thousands of references stays far below a megabyte);
// the bound keeps json.Decoder from buffering an endless string or array.
const maxEntrySize = 16 << 20

// entryLimitReader fails once more than maxEntrySize bytes were read since the
// last reset. The decoder reads ahead, so a byte may be charged to the entry
// before its own; the bound is approximate, but it bounds the decoder's buffer.
type entryLimitReader struct {
	r    io.Reader
	read int64
}

func (l *entryLimitReader) reset() { l.read = 0 }

func (l *entryLimitReader) Read(p []byte) (int, error) {
	if l.read > maxEntrySize {
		return 0, fmt.Errorf("an entry is larger than %d bytes", maxEntrySize)
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}
