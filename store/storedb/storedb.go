// Package storedb writes the store database of a closure: the SQLite
// database and schema version file with which Nix (/nix/var/nix/db) or Guix
// (/var/guix/db) knows which store paths are valid, what each references and
// the hash of its contents.
//
// Without it, nix or guix inside an image sees an empty store: every path
// of the closure is there on disk but invalid, so it cannot be queried,
// copied, used as a build input or kept from the garbage collector, and
// nix-store --verify would report nothing. With it the image's store is a
// store, as with nixpkgs' dockerTools (includeNixDB) or guix pack
// --localstatedir.
//
// The database is reproducible: the same records give the same bytes (for a
// given version of the SQLite library), whatever their order, with a
// registration time chosen by the caller instead of the clock. Records
// computes the records of a closure from its graph and its files.
package storedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/storepack/storepack/store"
)

// Record is what the database holds about one store path.
type Record struct {
	Path store.Path
	// References are the store paths Path references, possibly itself.
	// Each needs a record of its own: the records are a closure.
	References []store.Path
	// NarHash is the SHA-256 digest of the path's NAR serialisation, as
	// store.NarHash computes it.
	NarHash digest.Digest
	// NarSize is the size of that serialisation; 0 is refused.
	NarSize uint64
	// Deriver is the derivation (.drv) that built the path, or the zero
	// Path when unknown.
	Deriver store.Path
}

// File is a file or directory of the database as it belongs in the image.
type File struct {
	Path string      // absolute, e.g. /nix/var/nix/db/db.sqlite
	Mode fs.FileMode // permissions, with fs.ModeDir for a directory
	Data []byte      // a file's contents
}

// DefaultRegistrationTime is a registration time for Files: one second
// after the epoch, the modification time of every file in a store.
const DefaultRegistrationTime = 1

// layout is where and how a store keeps its database.
type layout struct {
	dbDir string // the directory of db.sqlite and schema
	// schemaVersion is what the daemon expects in the file schema: Nix
	// 2.8 calls it nixSchemaVersion (10 since Nix 2.0, in
	// src/libstore/local-store.hh); Guix has always used 7 (its
	// nix/libstore/local-store.hh), the schema of Nix 1.3 to 1.11.
	schemaVersion string
	schema        string // SQL creating the tables
}

// layouts are the stores whose databases this package writes, by store
// directory. Nix's schema is that of Nix 2.0 and later
// (src/libstore/schema.sql); its ca-derivations tables (Realisations) exist
// only where that experimental feature was enabled, and Nix creates them
// and the file ca-schema when it is. Guix's ValidPaths lacks Nix's columns
// ultimate, sigs and ca, and it keeps the table FailedPaths, whose
// statements its daemon prepares when it opens the database.
var layouts = map[string]layout{
	"/nix/store": {
		dbDir:         "/nix/var/nix/db",
		schemaVersion: "10",
		schema: validPathsTable(`,
	ultimate         INTEGER,
	sigs             TEXT,
	ca               TEXT`) + commonTables,
	},
	"/gnu/store": {
		dbDir:         "/var/guix/db",
		schemaVersion: "7",
		schema: validPathsTable("") + commonTables + `
CREATE TABLE FailedPaths (
	path TEXT PRIMARY KEY NOT NULL,
	time INTEGER NOT NULL
);`,
	},
}

// validPathsTable is the SQL that creates the table ValidPaths, with the
// extra columns that follow narSize.
func validPathsTable(extraColumns string) string {
	return `
CREATE TABLE ValidPaths (
	id               INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
	path             TEXT UNIQUE NOT NULL,
	hash             TEXT NOT NULL,
	registrationTime INTEGER NOT NULL,
	deriver          TEXT,
	narSize          INTEGER` + extraColumns + `
);`
}

// commonTables are the tables and indexes Nix and Guix share besides
// ValidPaths. A self-reference is a row (N, N) of Refs, which the trigger
// removes before its path is deleted, as the foreign key on reference would
// refuse the deletion.
const commonTables = `
CREATE TABLE Refs (
	referrer  INTEGER NOT NULL,
	reference INTEGER NOT NULL,
	PRIMARY KEY (referrer, reference),
	FOREIGN KEY (referrer) REFERENCES ValidPaths(id) ON DELETE CASCADE,
	FOREIGN KEY (reference) REFERENCES ValidPaths(id) ON DELETE RESTRICT
);
CREATE INDEX IndexReferrer ON Refs(referrer);
CREATE INDEX IndexReference ON Refs(reference);
CREATE TRIGGER DeleteSelfRefs BEFORE DELETE ON ValidPaths BEGIN
	DELETE FROM Refs WHERE referrer = old.id AND reference = old.id;
END;
CREATE TABLE DerivationOutputs (
	drv  INTEGER NOT NULL,
	id   TEXT NOT NULL,
	path TEXT NOT NULL,
	PRIMARY KEY (drv, id),
	FOREIGN KEY (drv) REFERENCES ValidPaths(id) ON DELETE CASCADE
);
CREATE INDEX IndexDerivationOutputs ON DerivationOutputs(path);`

// Dir returns the directory of the database of the store in storeDir:
// /nix/var/nix/db for /nix/store, /var/guix/db for /gnu/store. Other store
// directories have no fixed place for it.
func Dir(storeDir string) (string, error) {
	l, err := layoutOf(storeDir)
	return l.dbDir, err
}

func layoutOf(storeDir string) (layout, error) {
	l, ok := layouts[storeDir]
	if !ok {
		return layout{}, fmt.Errorf("store directory %s: no known place for its database (Nix's /nix/store has /nix/var/nix/db, Guix's /gnu/store /var/guix/db)", storeDir)
	}
	return l, nil
}

// Files returns the store database of the closure that records describe,
// for the store in storeDir (/nix/store or /gnu/store): db.sqlite and
// schema in Dir(storeDir), preceded by the directories above them that are
// not above the store directory (for Nix /nix/var, /nix/var/nix,
// /nix/var/nix/db), sorted by path. Directories have mode 0755, files 0644,
// as Nix and Guix create them.
//
// Every path gets registrationTime (seconds since the epoch, such as
// DefaultRegistrationTime or SOURCE_DATE_EPOCH) as its registration time.
// Nix's columns ultimate, sigs and ca stay NULL, as for paths loaded with
// nix-store --load-db: the paths are neither signed nor "built here", and
// content-addressed paths are not marked as such. DerivationOutputs stays
// empty: a derivation in the closure has no outputs recorded.
//
// The database is in write-ahead-log mode, as Nix and Guix keep theirs, so
// that neither rewrites it on opening. Both need its directory writable all
// the same, and create their lock files beside it.
func Files(storeDir string, records []Record, registrationTime int64) ([]File, error) {
	l, err := layoutOf(storeDir)
	if err != nil {
		return nil, err
	}
	if registrationTime < 0 {
		return nil, fmt.Errorf("registration time %d is before the epoch", registrationTime)
	}
	sorted, err := check(storeDir, records)
	if err != nil {
		return nil, err
	}
	db, err := writeDB(l.schema, sorted, registrationTime)
	if err != nil {
		return nil, err
	}
	var files []File
	for dir := l.dbDir; dir != "/" && !strings.HasPrefix(storeDir, dir+"/"); dir = path.Dir(dir) {
		files = append(files, File{Path: dir, Mode: fs.ModeDir | 0o755})
	}
	files = append(files,
		File{Path: path.Join(l.dbDir, "db.sqlite"), Mode: 0o644, Data: db},
		File{Path: path.Join(l.dbDir, "schema"), Mode: 0o644, Data: []byte(l.schemaVersion)},
	)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// check validates records as a closure in storeDir and returns them sorted
// by path, each with its references sorted and without duplicates.
func check(storeDir string, records []Record) ([]Record, error) {
	if len(records) == 0 {
		return nil, errors.New("no records: a store database needs at least one store path")
	}
	checkPath := func(p store.Path) error {
		text, err := p.MarshalText() // validates p
		if err != nil {
			return err
		}
		if p.Dir != storeDir {
			return fmt.Errorf("%s is not in store directory %s", text, storeDir)
		}
		return nil
	}
	sorted := slices.Clone(records)
	slices.SortFunc(sorted, func(a, b Record) int { return a.Path.Compare(b.Path) })
	known := make(map[store.Path]bool, len(sorted))
	for i, r := range sorted {
		if err := checkPath(r.Path); err != nil {
			return nil, err
		}
		if i > 0 && sorted[i-1].Path == r.Path {
			return nil, fmt.Errorf("%s: two records", r.Path)
		}
		known[r.Path] = true
		if err := r.NarHash.Validate(); err != nil || r.NarHash.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("%s: NAR hash %q is not a sha256 digest (sha256:<64 hex digits>)", r.Path, r.NarHash)
		}
		if r.NarSize == 0 {
			return nil, fmt.Errorf("%s: NAR size 0: the size is needed", r.Path)
		}
		if r.Deriver != (store.Path{}) {
			if err := checkPath(r.Deriver); err != nil {
				return nil, fmt.Errorf("%s: deriver: %w", r.Path, err)
			}
			if !strings.HasSuffix(r.Deriver.Name, ".drv") {
				return nil, fmt.Errorf("%s: deriver %s is not a derivation (.drv)", r.Path, r.Deriver)
			}
		}
	}
	for i, r := range sorted {
		refs := slices.Clone(r.References)
		slices.SortFunc(refs, store.Path.Compare)
		refs = slices.Compact(refs)
		for _, ref := range refs {
			if err := checkPath(ref); err != nil {
				return nil, fmt.Errorf("%s: reference: %w", r.Path, err)
			}
			if !known[ref] {
				return nil, fmt.Errorf("%s references %s, which has no record: the records must be a closure", r.Path, ref)
			}
		}
		sorted[i].References = refs
	}
	return sorted, nil
}

// writeDB builds the database of sorted records in a temporary file and
// returns its contents.
func writeDB(schema string, sorted []Record, registrationTime int64) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "storedb-*")
	if err != nil {
		return nil, fmt.Errorf("store database: %w", err)
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "db.sqlite")
	if err := fillDB(file, schema, sorted, registrationTime); err != nil {
		return nil, fmt.Errorf("store database: %w", err)
	}
	// Closing the last connection copied the log into the database and
	// removed it; anything left beside the database would be missing
	// from it.
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("store database: %w", err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return nil, fmt.Errorf("store database: SQLite left %s beside the database", strings.Join(names, ", "))
	}
	return os.ReadFile(file)
}

// fillDB creates the database file and writes the records into it.
func fillDB(file, schema string, sorted []Record, registrationTime int64) (err error) {
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: file}).String())
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := db.Close(); err == nil {
			err = closeErr
		}
	}()
	ctx := context.Background()
	// One connection, so that the pragmas hold for every statement, and
	// closing db closes the database.
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := conn.Close(); err == nil {
			err = closeErr
		}
	}()
	// The file is temporary until it is complete: no journal on disk, no
	// syncing. Foreign keys are checked, as Nix and Guix check them.
	for _, pragma := range []string{"PRAGMA journal_mode = MEMORY", "PRAGMA synchronous = OFF", "PRAGMA foreign_keys = ON"} {
		if _, err := conn.ExecContext(ctx, pragma); err != nil {
			return fmt.Errorf("%s: %w", pragma, err)
		}
	}
	if _, err := conn.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("creating the tables: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Ids follow the order of the paths, so that the rows depend on the
	// records alone.
	for i, r := range sorted {
		var deriver sql.NullString
		if r.Deriver != (store.Path{}) {
			deriver = sql.NullString{String: r.Deriver.String(), Valid: true}
		}
		if _, err := tx.Exec("INSERT INTO ValidPaths (id, path, hash, registrationTime, deriver, narSize) VALUES (?, ?, ?, ?, ?, ?)",
			i+1, r.Path.String(), r.NarHash.String(), registrationTime, deriver, int64(r.NarSize)); err != nil {
			return fmt.Errorf("%s: %w", r.Path, err)
		}
	}
	for i, r := range sorted {
		for _, ref := range r.References {
			j, _ := slices.BinarySearchFunc(sorted, ref, func(r Record, p store.Path) int { return r.Path.Compare(p) })
			if _, err := tx.Exec("INSERT INTO Refs (referrer, reference) VALUES (?, ?)", i+1, j+1); err != nil {
				return fmt.Errorf("%s references %s: %w", r.Path, ref, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Nix and Guix switch a database to write-ahead logging when they
	// open it, which rewrites its header, unless it is in that mode
	// already.
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil || mode != "wal" {
		return fmt.Errorf("switching to write-ahead logging: journal mode %q, %v", mode, err)
	}
	return nil
}

// Records computes the records of the closure that g describes, whose
// files fsys holds with the store directory at its root (as for
// store.NarHash): each path's NAR hash and size, with its references from
// g. A size that g knows must be the size measured. Derivers are left
// unknown.
func Records(ctx context.Context, fsys fs.FS, g *store.Graph) ([]Record, error) {
	paths := g.Paths()
	records := make([]Record, len(paths))
	group, groupCtx := errgroup.WithContext(ctx)
	group.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range paths {
		group.Go(func() error {
			info, _ := g.Info(p)
			hash, size, err := store.NarHash(groupCtx, fsys, p)
			if err != nil {
				return err
			}
			if info.NarSize != 0 && info.NarSize != size {
				return fmt.Errorf("%s: NAR size %d on disk, but the graph says %d", p, size, info.NarSize)
			}
			records[i] = Record{Path: p, References: info.References, NarHash: hash, NarSize: size}
			return nil
		})
	}
	if err := group.Wait(); err != nil {
		return nil, err
	}
	return records, nil
}
