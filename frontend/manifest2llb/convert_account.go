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
	"github.com/storepack/storepack/llb/layerllb"
)

// nssDB is one of the name service databases ACCOUNT writes (passwd,
// group, shadow): the lines it starts with when the base image has none
// (root and nobody, as nixpkgs' fakeNss has them), and the account's line.
type nssDB struct {
	path     string
	mode     uint32
	defaults string
	line     func(a *manifest.Account) string
	// idField is the field of a line that holds the account's id, whose
	// value must be free in the base's file; -1 for none.
	idField int
	id      func(a *manifest.Account) int
}

var nssDBs = []nssDB{
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
	files := make([]layerllb.File, len(nssDBs))
	for i, db := range nssDBs {
		content, err := c.baseDB(ctx, db, base, p)
		if err != nil {
			return nil, parser.WithLocation(fmt.Errorf("ACCOUNT %s: %w", a.Name, err), a.Location)
		}
		if err := db.free(content, a); err != nil {
			return nil, parser.WithLocation(fmt.Errorf("ACCOUNT %s: %w", a.Name, err), a.Location)
		}
		files[i] = layerllb.File{Path: db.path, Mode: db.mode, Data: append(content, db.line(a)...)}
	}
	return files, nil
}

// baseDB is the database db of the layers below the customisation layer:
// the base image's, where it has one and it can be read, else db's
// defaults.
func (c *conversion) baseDB(ctx context.Context, db nssDB, base *baseImage, p ocispecs.Platform) ([]byte, error) {
	if base == nil || c.opt.ReadFile == nil {
		return []byte(db.defaults), nil
	}
	data, err := c.opt.ReadFile(ctx, base.state(p), p, db.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return []byte(db.defaults), nil
	case err != nil:
		return nil, fmt.Errorf("the base image's %s: %w", db.path, err)
	case len(data) > 0 && data[len(data)-1] != '\n':
		data = append(data, '\n')
	}
	return data, nil
}

// free checks that content has no line for the account's name or id.
func (db nssDB) free(content []byte, a *manifest.Account) error {
	for line := range bytes.Lines(content) {
		fields := strings.Split(strings.TrimRight(string(line), "\n"), ":")
		if fields[0] == a.Name {
			return fmt.Errorf("the base image's %s has %s already", db.path, a.Name)
		}
		if db.idField >= 0 && len(fields) > db.idField && fields[db.idField] == strconv.Itoa(db.id(a)) {
			return fmt.Errorf("id %d is %s's in the base image's %s; choose another with --uid or --gid", db.id(a), fields[0], db.path)
		}
	}
	return nil
}

// accounts are the image's /etc/passwd and /etc/group, where COPY
// --chown looks names up. unread: the base image's could not be read
// (a conversion that builds nothing, plan), and names stay unresolved.
type accounts struct {
	passwd, group []byte
	unread        bool
}

// imageAccounts are the accounts of the image: ACCOUNT's files, or the
// base image's (root and nobody without one).
func (c *conversion) imageAccounts(ctx context.Context, files []layerllb.File, base *baseImage, p ocispecs.Platform) (accounts, error) {
	if len(files) == 0 && base != nil && c.opt.ReadFile == nil {
		return accounts{unread: true}, nil
	}
	var acc accounts
	for i, dst := range []*[]byte{&acc.passwd, &acc.group} {
		if len(files) > 0 {
			*dst = files[i].Data
			continue
		}
		data, err := c.baseDB(ctx, nssDBs[i], base, p)
		if err != nil {
			return accounts{}, err
		}
		*dst = data
	}
	return acc, nil
}

// owner resolves --chown: a number stands for itself, a name is looked up;
// without a group, a user number is also the group's, and a user name
// gives its own group. Unread accounts resolve names to nil.
func (acc accounts) owner(ch *manifest.Chown) (*layerllb.Owner, error) {
	if acc.unread && ch.Named() {
		return nil, nil
	}
	var o layerllb.Owner
	var userGroup string
	if n, err := strconv.Atoi(ch.User); err == nil {
		o.UID, userGroup = n, ch.User
	} else {
		fields := lookup(acc.passwd, ch.User)
		if len(fields) < 4 {
			return nil, fmt.Errorf("no user %s in the image's /etc/passwd (ACCOUNT adds one)", ch.User)
		}
		if o.UID, err = strconv.Atoi(fields[2]); err != nil {
			return nil, fmt.Errorf("user %s has uid %q in the image's /etc/passwd", ch.User, fields[2])
		}
		userGroup = fields[3]
	}
	group := ch.Group
	if group == "" {
		group = userGroup
	}
	if n, err := strconv.Atoi(group); err == nil {
		o.GID = n
		return &o, nil
	}
	fields := lookup(acc.group, group)
	if len(fields) < 3 {
		return nil, fmt.Errorf("no group %s in the image's /etc/group", group)
	}
	n, err := strconv.Atoi(fields[2])
	if err != nil {
		return nil, fmt.Errorf("group %s has gid %q in the image's /etc/group", group, fields[2])
	}
	o.GID = n
	return &o, nil
}

// lookup returns the fields of name's line in an /etc/passwd or
// /etc/group; nil when it has none.
func lookup(content []byte, name string) []string {
	for line := range bytes.Lines(content) {
		if fields := strings.Split(strings.TrimRight(string(line), "\n"), ":"); fields[0] == name {
			return fields
		}
	}
	return nil
}
