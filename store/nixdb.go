package store

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
	"modernc.org/sqlite/vfs"
)

// sqliteHeader starts every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// LoadDB reads the graph of a whole store from its SQLite database: Nix's
// /nix/var/nix/db/db.sqlite or Guix's /var/guix/db/db.sqlite. Both have the
// tables ValidPaths (id, path, hash, …, narSize, …; Nix has more columns than
// Guix) and Refs (referrer, reference), which hold ValidPaths ids. Both keep
// the NAR hash as sha256:<base16>. A NULL narSize (written by old versions)
// is an unknown size, and an empty or NULL hash (which neither writes) an
// unknown hash. Take the closure of the paths you need with Graph.Closure.
//
// The database is opened read-only, through SQLite's own locking, so a
// running Nix or Guix daemon is no problem, and its write-ahead log is
// honoured: Nix keeps its database in WAL mode, and transactions committed
// to the log but not yet copied into the database file are part of the
// graph. SQLite may leave an empty log and its index (db.sqlite-wal and
// db.sqlite-shm) beside the database, as every Nix command does. When it
// cannot create them and no log exists (a store nobody is using, read by an
// unprivileged user), the file is read as it is.
func LoadDB(file string) (*Graph, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	uri := func(params string) string {
		return (&url.URL{Scheme: "file", Path: abs, RawQuery: params}).String()
	}
	paths, nodes, err := readDB(file, uri("mode=ro"))
	if cannotOpenLog(err) && !exists(abs+"-wal") {
		paths, nodes, err = readDB(file, uri("mode=ro&immutable=1"))
	}
	if err != nil {
		return nil, err
	}
	return graphFrom(file, paths, nodes)
}

// readDBCopy reads a database found at the start of a stream without
// random access, which SQLite needs, through a temporary copy.
func readDBCopy(name string, r io.Reader) ([]Path, []idNode, error) {
	tmp, err := os.CreateTemp("", "storepack-*.sqlite")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, err := io.Copy(tmp, r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return readDBSection(name, io.NewSectionReader(tmp, 0, size))
}

// readDBSection reads a database found in a stream with random access,
// where it is. A stream carries no write-ahead log, so the database is read
// as it is: use LoadDB for a database in use.
func readDBSection(name string, section *io.SectionReader) ([]Path, []idNode, error) {
	vfsName, fsys, err := vfs.New(sectionFS{section})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	defer fsys.Close() // after readDB has closed the database
	return readDB(name, "file:"+sectionFileName+"?vfs="+vfsName+"&mode=ro&immutable=1")
}

// isDatabase reports whether section starts like a SQLite database.
func isDatabase(section *io.SectionReader) bool {
	head := make([]byte, len(sqliteHeader))
	n, _ := section.ReadAt(head, 0)
	return string(head[:n]) == sqliteHeader
}

// sectionOf returns the rest of r as a section, if r gives random access.
// r's offset is left as it was.
func sectionOf(r io.Reader) (*io.SectionReader, bool) {
	ra, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	})
	if !ok {
		return nil, false
	}
	start, err := ra.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false
	}
	end, err := ra.Seek(0, io.SeekEnd)
	if _, err2 := ra.Seek(start, io.SeekStart); err != nil || err2 != nil {
		return nil, false
	}
	return io.NewSectionReader(ra, start, end-start), true
}

// sectionFileName is the name of the one file of a sectionFS.
const sectionFileName = "db.sqlite"

// sectionFS is a file system of one file, sectionFileName, whose contents
// are a section of an io.ReaderAt: what SQLite reads a database from when it
// is not a file of its own.
type sectionFS struct{ section *io.SectionReader }

func (s sectionFS) Open(name string) (fs.File, error) {
	if name != sectionFileName {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	// Each opening reads at an offset of its own.
	return sectionFile{io.NewSectionReader(s.section, 0, s.section.Size())}, nil
}

type sectionFile struct{ *io.SectionReader }

func (f sectionFile) Stat() (fs.FileInfo, error) { return sectionFileInfo{f.Size()}, nil }
func (f sectionFile) Close() error               { return nil }

type sectionFileInfo struct{ size int64 }

func (i sectionFileInfo) Name() string       { return sectionFileName }
func (i sectionFileInfo) Size() int64        { return i.size }
func (i sectionFileInfo) Mode() fs.FileMode  { return 0o444 }
func (i sectionFileInfo) ModTime() time.Time { return time.Time{} }
func (i sectionFileInfo) IsDir() bool        { return false }
func (i sectionFileInfo) Sys() any           { return nil }

// readDB reads the paths and references of the database that the SQLite
// URI uri opens. name is used in errors. It returns the paths by id and the
// nodes.
func readDB(name, uri string) ([]Path, []idNode, error) {
	fail := func(err error) ([]Path, []idNode, error) {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	// Wait for a writer that holds a lock rather than fail at once.
	db, err := sql.Open("sqlite", uri+"&_busy_timeout=10000")
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	// Both queries run in one read transaction, so that they see the same
	// state of a database that Nix may be changing.
	tx, err := db.Begin()
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()

	rows, err := tx.Query("SELECT id, path, hash, narSize FROM ValidPaths")
	if err != nil {
		return fail(fmt.Errorf("reading ValidPaths (is it a Nix or Guix store database?): %w", err))
	}
	var (
		paths pathParser
		nodes []idNode
		byRow = make(map[int64]int) // ValidPaths id -> position in nodes
	)
	for rows.Next() {
		var (
			row     int64
			path    string
			hash    sql.NullString
			narSize sql.NullInt64
		)
		if err := rows.Scan(&row, &path, &hash, &narSize); err != nil {
			return fail(fmt.Errorf("ValidPaths: %w", err))
		}
		id, err := paths.parse(path)
		if err != nil {
			return fail(fmt.Errorf("ValidPaths row %d: %w", row, err))
		}
		if narSize.Int64 < 0 {
			return fail(fmt.Errorf("ValidPaths row %d (%s): narSize %d is negative", row, path, narSize.Int64))
		}
		var narHash digest.Digest
		if hash.String != "" {
			if narHash, err = parseNarHash(hash.String); err != nil {
				return fail(fmt.Errorf("ValidPaths row %d (%s): %w", row, path, err))
			}
		}
		if _, dup := byRow[row]; dup {
			return fail(fmt.Errorf("ValidPaths row %d (%s): the id is used twice", row, path))
		}
		byRow[row] = len(nodes)
		nodes = append(nodes, idNode{path: id, narSize: uint64(narSize.Int64), narHash: narHash})
	}
	if err := rows.Err(); err != nil {
		return fail(fmt.Errorf("ValidPaths: %w", err))
	}

	if rows, err = tx.Query("SELECT referrer, reference FROM Refs"); err != nil {
		return fail(fmt.Errorf("reading Refs (is it a Nix or Guix store database?): %w", err))
	}
	for rows.Next() {
		var referrer, reference int64
		if err := rows.Scan(&referrer, &reference); err != nil {
			return fail(fmt.Errorf("Refs: %w", err))
		}
		from, ok := byRow[referrer]
		to, ok2 := byRow[reference]
		if !ok || !ok2 {
			missing := referrer
			if ok {
				missing = reference
			}
			return fail(fmt.Errorf("Refs row (referrer %d, reference %d): no ValidPaths row has id %d", referrer, reference, missing))
		}
		nodes[from].refs = append(nodes[from].refs, nodes[to].path)
	}
	if err := rows.Err(); err != nil {
		return fail(fmt.Errorf("Refs: %w", err))
	}
	return paths.paths, nodes, nil
}

// cannotOpenLog reports whether err is how SQLite fails when it can create
// neither the write-ahead log nor its index: "unable to open database file"
// or "attempt to write a readonly database".
func cannotOpenLog(err error) bool {
	sqliteErr, ok := errors.AsType[*sqlite.Error](err)
	if !ok {
		return false
	}
	primary := sqliteErr.Code() & 0xff // the extended code's low byte
	return primary == sqlite3.SQLITE_CANTOPEN || primary == sqlite3.SQLITE_READONLY
}

func exists(file string) bool {
	_, err := os.Lstat(file)
	return err == nil
}
