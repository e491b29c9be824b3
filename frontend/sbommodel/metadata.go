package sbommodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/storepack/storepack/store"
)

// Metadata is what a metadata file (the manifest's SBOM --metadata) says of
// packages that the store cannot: their licence, homepage and
// description. The file is a JSON object whose keys are package names (as
// a store path name splits: "hello" for /nix/store/…-hello-2.12.1) or
// store paths, each with an object of optional members:
//
//	{
//	  "hello": {"license": "GPL-3.0-or-later", "homepage": "https://www.gnu.org/software/hello/",
//	            "description": "A program that produces a familiar, friendly greeting"},
//	  "/nix/store/…-glibc-2.39-52": {"license": ["LGPL-2.1-or-later", "GPL-2.0-or-later"]}
//	}
//
// "license" is an SPDX licence expression, or a list of them that all
// apply (joined with AND). A store path's members win over its name's.
type Metadata struct {
	file   string
	byName map[string]Info
	byPath map[store.Path]Info
	lines  map[store.Path]int // where each store path is named, for errors
}

// Info is what a metadata file says of a package; "" for unsaid.
type Info struct {
	License     string
	Homepage    string
	Description string
}

// infoJSON is an entry of the file.
type infoJSON struct {
	License     licenses `json:"license"`
	Homepage    string   `json:"homepage"`
	Description string   `json:"description"`
}

// licenses is a licence expression or a list of them.
type licenses string

func (l *licenses) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*l = licenses(one)
		return nil
	}
	var all []string
	if err := json.Unmarshal(data, &all); err != nil {
		return errors.New(`"license" is not a string nor a list of strings`)
	}
	for i, s := range all {
		if strings.ContainsAny(s, " ") {
			all[i] = "(" + s + ")"
		}
	}
	*l = licenses(strings.Join(all, " AND "))
	return nil
}

// ParseMetadata reads metadata file file's content data, for a closure in
// store directory storeDir. Errors name the file and the line.
func ParseMetadata(file string, data []byte, storeDir string) (*Metadata, error) {
	m := &Metadata{file: file, byName: map[string]Info{}, byPath: map[store.Path]Info{}, lines: map[store.Path]int{}}
	at := func(offset int64, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", file, lineAt(data, offset), fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, at(dec.InputOffset(), "want a JSON object of package names and store paths")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, at(syntaxOffset(err, dec.InputOffset()), "%v", err)
		}
		key := tok.(string) // an object's keys are strings
		keyAt := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, at(syntaxOffset(err, dec.InputOffset()), "%v", err)
		}
		var entry infoJSON
		entryDec := json.NewDecoder(bytes.NewReader(raw))
		entryDec.DisallowUnknownFields()
		if err := entryDec.Decode(&entry); err != nil {
			return nil, at(keyAt, "%s: %v (want an object of \"license\", \"homepage\", \"description\")", key, strings.TrimPrefix(err.Error(), "json: "))
		}
		info := Info{License: string(entry.License), Homepage: entry.Homepage, Description: entry.Description}
		switch {
		case key == "":
			return nil, at(keyAt, "an empty package name")
		case strings.HasPrefix(key, "/"):
			p, err := store.ParsePath(key)
			if err != nil || p.Dir != storeDir || p.String() != key {
				return nil, at(keyAt, "%s is not a store path of %s", key, storeDir)
			}
			if _, dup := m.byPath[p]; dup {
				return nil, at(keyAt, "%s is named twice", key)
			}
			m.byPath[p], m.lines[p] = info, lineAt(data, keyAt)
		default:
			if _, dup := m.byName[key]; dup {
				return nil, at(keyAt, "%s is named twice", key)
			}
			m.byName[key] = info
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, at(syntaxOffset(err, dec.InputOffset()), "%v", err)
	}
	if dec.More() {
		return nil, at(dec.InputOffset(), "more than one JSON value")
	}
	return m, nil
}

// lineAt is the line of data that offset is on, counting from 1.
func lineAt(data []byte, offset int64) int {
	return 1 + bytes.Count(data[:min(max(offset, 0), int64(len(data)))], []byte("\n"))
}

// syntaxOffset is where a JSON error is, else offset.
func syntaxOffset(err error, offset int64) int64 {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	return offset
}

// of is what m says of store path p, named name: its path's members over
// its name's.
func (m *Metadata) of(p store.Path, name string) Info {
	info := m.byName[name]
	byPath := m.byPath[p]
	for _, f := range []struct{ to, from *string }{
		{&info.License, &byPath.License}, {&info.Homepage, &byPath.Homepage}, {&info.Description, &byPath.Description},
	} {
		if *f.from != "" {
			*f.to = *f.from
		}
	}
	return info
}

// CheckPaths is an error naming the first store path of m, by its line,
// that none of docs (a build's, one per platform) holds.
func (m *Metadata) CheckPaths(docs []*Document) error {
	held := map[store.Path]bool{}
	for _, d := range docs {
		for _, p := range d.Packages {
			held[p.Path] = true
		}
	}
	var outside []store.Path
	for p := range m.byPath {
		if !held[p] {
			outside = append(outside, p)
		}
	}
	if len(outside) == 0 {
		return nil
	}
	first := slices.MinFunc(outside, func(a, b store.Path) int { return m.lines[a] - m.lines[b] })
	return fmt.Errorf("%s:%d: %s is outside the image's closure", m.file, m.lines[first], first)
}
