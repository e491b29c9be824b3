package manifest2llb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/layerllb"
)

// accountFile is one of the files ACCOUNT writes: the lines it starts
// with when the base image has none (root and nobody, as nixpkgs' fakeNss
// has them), and the account's line.
type accountFile struct {
	path     string
	mode     uint32
	defaults string
	line     func(a *manifest.Account) string
	// idField is the field of a line that holds the account's id, whose
	// value must be free in the base's file; -1 for none.
	idField int
	id      func(a *manifest.Account) int
}

var accountFiles = []accountFile{
	{
		path: "/etc/passwd", mode: 0o644,
		defaults: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/var/empty:/bin/false\n",
		line: func(a *manifest.Account) string {
			return fmt.Sprintf("%s:x:%d:%d::%s:%s\n", a.Name, a.Owner.UID, a.Owner.GID, a.Home, a.Shell)
		},
		idField: 2, id: func(a *manifest.Account) int { return a.Owner.UID },
	},
	{
		path: "/etc/group", mode: 0o644,
		defaults: "root:x:0:\nnogroup:x:65534:\n",
		line:     func(a *manifest.Account) string { return fmt.Sprintf("%s:x:%d:\n", a.Name, a.Owner.GID) },
		idField:  2, id: func(a *manifest.Account) int { return a.Owner.GID },
	},
	{
		// The password locked, its last change on day 1 (no clock).
		path: "/etc/shadow", mode: 0o600,
		defaults: "root:!:1::::::\nnobody:!:1::::::\n",
		line:     func(a *manifest.Account) string { return a.Name + ":!:1::::::\n" },
		idField:  -1,
	},
}

// accountFiles are ACCOUNT's /etc/passwd, /etc/group and /etc/shadow: the
// base image's, where it has them and they can be read, else root's and
// nobody's, each with the account added. A name or id the base's files
// already hold is an error at the ACCOUNT line.
func (c *conversion) accountFiles(ctx context.Context, a *manifest.Account, base *baseImage, p ocispecs.Platform) ([]layerllb.File, error) {
	files := make([]layerllb.File, len(accountFiles))
	for i, f := range accountFiles {
		content := []byte(f.defaults)
		if base != nil && c.opt.ReadFile != nil {
			data, err := c.opt.ReadFile(ctx, base.state(p), p, f.path)
			switch {
			case err == nil:
				content = data
				if len(content) > 0 && content[len(content)-1] != '\n' {
					content = append(content, '\n')
				}
			case !errors.Is(err, fs.ErrNotExist):
				return nil, parser.WithLocation(fmt.Errorf("ACCOUNT %s: the base image's %s: %w", a.Name, f.path, err), a.Location)
			}
		}
		if err := f.free(content, a); err != nil {
			return nil, parser.WithLocation(fmt.Errorf("ACCOUNT %s: %w", a.Name, err), a.Location)
		}
		files[i] = layerllb.File{Path: f.path, Mode: f.mode, Data: append(content, f.line(a)...)}
	}
	return files, nil
}

// free checks that content has no line for the account's name or id.
func (f accountFile) free(content []byte, a *manifest.Account) error {
	for line := range bytes.Lines(content) {
		fields := strings.Split(strings.TrimRight(string(line), "\n"), ":")
		if fields[0] == a.Name {
			return fmt.Errorf("the base image's %s has %s already", f.path, a.Name)
		}
		if f.idField >= 0 && len(fields) > f.idField && fields[f.idField] == strconv.Itoa(f.id(a)) {
			return fmt.Errorf("id %d is %s's in the base image's %s; choose another with --uid or --gid", f.id(a), fields[0], f.path)
		}
	}
	return nil
}
