package store

import (
	"bytes"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The schemas of the store databases, as far as a graph is concerned: Nix's
// (as created by Nix 2.8) and Guix's, which lacks the columns ultimate, sigs
// and ca.
const (
	nixDBSchema = `
CREATE TABLE ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer,
    sigs             text,
    ca               text
);
CREATE TABLE Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);
CREATE INDEX IndexReferrer on Refs(referrer);
CREATE INDEX IndexReference on Refs(reference);
CREATE TABLE DerivationOutputs (
    drv  integer not null,
    id   text not null,
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);`
	guixDBSchema = `
CREATE TABLE ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer
);
CREATE TABLE Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference)
);`
)

// openTestDB creates a store database in WAL mode, as Nix keeps it, and
// returns the open connection: while it stays open, committed transactions
// stay in the write-ahead log (automatic checkpoints are off).
func openTestDB(t testing.TB, file, schema string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	return db
}

// insertGraph adds g's paths and references to a store database in one
// transaction, skipping those already there. An unknown NAR hash is written
// as an empty one.
func insertGraph(t testing.TB, db *sql.DB, g *Graph) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[Path]int64)
	for _, p := range g.Paths() {
		info, _ := g.Info(p)
		if _, err := tx.Exec("INSERT OR IGNORE INTO ValidPaths (path, hash, registrationTime, narSize) VALUES (?, ?, 1, ?)",
			p.String(), string(info.NarHash), info.NarSize); err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := tx.QueryRow("SELECT id FROM ValidPaths WHERE path = ?", p.String()).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[p] = id
	}
	for _, p := range g.Paths() {
		info, _ := g.Info(p)
		for _, ref := range info.References {
			if _, err := tx.Exec("INSERT OR IGNORE INTO Refs (referrer, reference) VALUES (?, ?)", ids[p], ids[ref]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// checkpoint copies the write-ahead log into the database file.
func checkpoint(t testing.TB, db *sql.DB) {
	t.Helper()
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDB(t *testing.T) {
	tests := []struct {
		name, schema, storeDir string
	}{
		{"nix", nixDBSchema, "/nix/store"},
		{"guix", guixDBSchema, "/gnu/store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "db.sqlite")
			want := helloGraphIn(t, tc.storeDir, true, true)
			db := openTestDB(t, file, tc.schema)
			insertGraph(t, db, want)
			checkpoint(t, db)

			g, err := LoadDB(file)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, g)
			if !sameGraph(g, want) {
				t.Errorf("LoadDB:\n got %v\nwant %v", dumpGraph(g), dumpGraph(want))
			}

			// Load recognizes a database in a stream, read in place or,
			// without random access, through a copy.
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []io.Reader{bytes.NewReader(data), io.MultiReader(bytes.NewReader(data))} {
				if g, err = Load("db.sqlite", r); err != nil {
					t.Fatal(err)
				}
				if !sameGraph(g, want) {
					t.Errorf("Load(%T):\n got %v\nwant %v", r, dumpGraph(g), dumpGraph(want))
				}
			}
		})
	}
}

// TestLoadDBReadsTheLog checks that transactions committed to the
// write-ahead log, but not yet copied into the database file, are part of
// the graph, as they are for Nix.
func TestLoadDBReadsTheLog(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db.sqlite")
	db := openTestDB(t, file, nixDBSchema)
	hello := helloGraphIn(t, "/nix/store", true, true)
	libgcc, err := hello.Closure(mustParse(t, libgccPath))
	if err != nil {
		t.Fatal(err)
	}
	insertGraph(t, db, libgcc)
	checkpoint(t, db)
	insertGraph(t, db, hello) // committed, and only in db.sqlite-wal
	if info, err := os.Stat(file + "-wal"); err != nil || info.Size() == 0 {
		t.Fatalf("the test needs a non-empty write-ahead log: %v", err)
	}

	// The database file alone has only the first transaction.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := Load("copy", bytes.NewReader(data)); err != nil || g.Len() != 1 {
		t.Fatalf("the database file alone should hold only libgcc: %v, %v", g, err)
	}

	g, err := LoadDB(file)
	if err != nil {
		t.Fatal(err)
	}
	if !sameGraph(g, hello) {
		t.Errorf("LoadDB missed the write-ahead log:\n got %v\nwant %v", dumpGraph(g), dumpGraph(hello))
	}
}

func TestLoadDBErrors(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		sql     string // run after the schema
		wantErr string
	}{
		{"no tables", "CREATE TABLE x (y)", "", "reading ValidPaths (is it a Nix or Guix store database?): SQL logic error: no such table: ValidPaths"},
		{"no Refs", "CREATE TABLE ValidPaths (id integer primary key, path text, hash text, narSize integer)", "", "reading Refs (is it a Nix or Guix store database?)"},
		{"empty", nixDBSchema, "", "db.sqlite: no store paths"},
		{"invalid path", nixDBSchema, `INSERT INTO ValidPaths VALUES (7, '/nix/store/../etc', '', 1, NULL, 5, NULL, NULL, NULL)`,
			`db.sqlite: ValidPaths row 7: invalid store path "/nix/store/../etc"`},
		{"non-UTF-8 name", nixDBSchema, `INSERT INTO ValidPaths VALUES (7, '` + helloPath + `' || x'ff', '', 1, NULL, 5, NULL, NULL, NULL)`,
			`db.sqlite: ValidPaths row 7: invalid store path`},
		{"NULL path", "CREATE TABLE ValidPaths (id integer primary key, path text, hash text, narSize integer); CREATE TABLE Refs (referrer, reference)",
			`INSERT INTO ValidPaths VALUES (7, NULL, NULL, 5)`, "db.sqlite: ValidPaths: sql: Scan error on column index 1"},
		{"bad NAR hash", guixDBSchema, `INSERT INTO ValidPaths VALUES (7, '` + helloPath + `', 'sha256:` + strings.Repeat("g", 64) + `', 1, NULL, 5)`,
			"db.sqlite: ValidPaths row 7 (" + helloPath + `): NAR hash "sha256:ggg`},
		{"NAR hash of another algorithm", nixDBSchema, `INSERT INTO ValidPaths VALUES (7, '` + helloPath + `', 'sha1:` + strings.Repeat("0", 40) + `', 1, NULL, 5, NULL, NULL, NULL)`,
			"db.sqlite: ValidPaths row 7 (" + helloPath + `): NAR hash "sha1:000`},
		{"negative size", nixDBSchema, `INSERT INTO ValidPaths VALUES (7, '` + helloPath + `', '', 1, NULL, -5, NULL, NULL, NULL)`,
			"db.sqlite: ValidPaths row 7 (" + helloPath + "): narSize -5 is negative"},
		{"mixed store directories", nixDBSchema, `INSERT INTO ValidPaths VALUES (1, '` + helloPath + `', '', 1, NULL, 5, NULL, NULL, NULL);
			INSERT INTO ValidPaths VALUES (2, '/gnu/store/` + glibcBase + `', '', 1, NULL, 5, NULL, NULL, NULL)`,
			`db.sqlite: ValidPaths row 2: invalid store path "/gnu/store/` + glibcBase + `": not in store directory /nix/store`},
		{"dangling reference", guixDBSchema, `INSERT INTO ValidPaths VALUES (1, '` + helloPath + `', '', 1, NULL, 5);
			INSERT INTO Refs VALUES (1, 9)`, "db.sqlite: Refs row (referrer 1, reference 9): no ValidPaths row has id 9"},
		{"dangling referrer", guixDBSchema, `INSERT INTO ValidPaths VALUES (1, '` + helloPath + `', '', 1, NULL, 5);
			INSERT INTO Refs VALUES (9, 1)`, "db.sqlite: Refs row (referrer 9, reference 1): no ValidPaths row has id 9"},
		{"cycle", guixDBSchema, `INSERT INTO ValidPaths VALUES (1, '` + helloPath + `', '', 1, NULL, 5);
			INSERT INTO ValidPaths VALUES (2, '` + glibcPath + `', '', 1, NULL, 5);
			INSERT INTO Refs VALUES (1, 2); INSERT INTO Refs VALUES (2, 1)`, "db.sqlite: reference cycle between distinct store paths"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "db.sqlite")
			db := openTestDB(t, file, tc.schema)
			if tc.sql != "" {
				if _, err := db.Exec(tc.sql); err != nil {
					t.Fatal(err)
				}
			}
			checkpoint(t, db)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for name, load := range map[string]func() (*Graph, error){
				"LoadDB": func() (*Graph, error) { return LoadDB(file) },
				"Load":   func() (*Graph, error) { return Load(file, bytes.NewReader(data)) },
			} {
				g, err := load()
				if err == nil {
					t.Fatalf("%s succeeded with %d paths, want error %q", name, g.Len(), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), file+":") {
					t.Errorf("%s error\n  %s\ndoes not start with the file name or does not contain\n  %s", name, err, tc.wantErr)
				}
			}
		})
	}
}

func TestLoadDBNullIsUnknown(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db.sqlite")
	db := openTestDB(t, file, "CREATE TABLE ValidPaths (id integer primary key, path text, hash text, narSize integer); CREATE TABLE Refs (referrer, reference)")
	if _, err := db.Exec(`INSERT INTO ValidPaths VALUES (1, '` + helloPath + `', NULL, NULL); INSERT INTO ValidPaths VALUES (2, '` + glibcPath + `', '', 5)`); err != nil {
		t.Fatal(err)
	}
	g, err := LoadDB(file)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := g.Info(mustParse(t, helloPath)); info.NarSize != 0 || info.NarHash != "" {
		t.Errorf("NULL size and hash: NarSize = %d, NarHash = %q; want 0 and \"\" (unknown)", info.NarSize, info.NarHash)
	}
	if info, _ := g.Info(mustParse(t, glibcPath)); info.NarSize != 5 || info.NarHash != "" {
		t.Errorf("empty hash: NarSize = %d, NarHash = %q; want 5 and \"\" (unknown)", info.NarSize, info.NarHash)
	}
}

func TestLoadDBMissingFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db.sqlite")
	if _, err := LoadDB(file); err == nil || !strings.HasPrefix(err.Error(), file+":") {
		t.Errorf("LoadDB of a missing file: error %v, want one naming the file", err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Errorf("LoadDB created %s", file)
	}
}

// TestLoadTruncatedDB checks that a database cut short fails cleanly.
func TestLoadTruncatedDB(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db.sqlite")
	db := openTestDB(t, file, nixDBSchema)
	insertGraph(t, db, benchGraph(t, 2000))
	checkpoint(t, db)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{100, 4096, len(data) / 2, len(data) - 4096} {
		if _, err := Load("cut.sqlite", bytes.NewReader(data[:size])); err == nil || !strings.HasPrefix(err.Error(), "cut.sqlite: ") {
			t.Errorf("Load of %d of %d bytes: error %v, want one naming the file", size, len(data), err)
		} else {
			t.Log(err)
		}
	}
}

// TestLoadGarbageDB checks that a stream that starts like a database but is
// not one fails cleanly.
func TestLoadGarbageDB(t *testing.T) {
	garbage := sqliteHeader + strings.Repeat("\xff garbage", 10000)
	if _, err := Load("garbage.db", strings.NewReader(garbage)); err == nil || !strings.HasPrefix(err.Error(), "garbage.db: ") {
		t.Errorf("Load error = %v, want one naming the file", err)
	}
}
