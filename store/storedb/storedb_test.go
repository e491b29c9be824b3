package storedb

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/store"
)

func testHash(name string) digest.Digest { return digest.FromString(name) }

// testRecords is a closure: app references lib (which references itself)
// and data, and itself; app has a deriver.
func testRecords(t testing.TB, dir string) []Record {
	app, lib, data := storetest.FakePath(t, dir, "app"), storetest.FakePath(t, dir, "lib"), storetest.FakePath(t, dir, "data")
	return []Record{
		{Path: app, References: []store.Path{lib, app, data}, NarHash: testHash("app"), NarSize: 1000, Deriver: storetest.FakePath(t, dir, "app.drv")},
		{Path: lib, References: []store.Path{lib}, NarHash: testHash("lib"), NarSize: 2000},
		{Path: data, NarHash: testHash("data"), NarSize: 96},
	}
}

// openFiles writes the database files under a temporary root and opens
// db.sqlite read-only, as it is.
func openFiles(t *testing.T, files []File) (root string, db *sql.DB) {
	t.Helper()
	root = t.TempDir()
	var dbFile string
	for _, f := range files {
		name := filepath.Join(root, filepath.FromSlash(f.Path))
		if f.Mode.IsDir() {
			// The image has the parents (/nix) already.
			if err := os.MkdirAll(name, f.Mode.Perm()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(name, f.Data, f.Mode.Perm()); err != nil {
			t.Fatal(err)
		}
		if filepath.Base(name) == "db.sqlite" {
			dbFile = name
		}
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: dbFile, RawQuery: "mode=ro&immutable=1"}).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return root, db
}

// queryStrings returns the rows of a query as strings, columns separated
// by "|", NULL as "NULL".
func queryStrings(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	columns, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		values := make([]sql.NullString, len(columns))
		ptrs := make([]any, len(columns))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var fields []string
		for _, v := range values {
			if v.Valid {
				fields = append(fields, v.String)
			} else {
				fields = append(fields, "NULL")
			}
		}
		out = append(out, strings.Join(fields, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFiles(t *testing.T) {
	for _, tc := range []struct {
		storeDir, dbDir, version string
		dirs                     []string
	}{
		{"/nix/store", "/nix/var/nix/db", "10", []string{"/nix/var", "/nix/var/nix", "/nix/var/nix/db"}},
		{"/gnu/store", "/var/guix/db", "7", []string{"/var", "/var/guix", "/var/guix/db"}},
	} {
		t.Run(tc.storeDir, func(t *testing.T) {
			dbDir, err := Dir(tc.storeDir)
			if err != nil || dbDir != tc.dbDir {
				t.Fatalf("Dir(%s) = %q, %v; want %s", tc.storeDir, dbDir, err, tc.dbDir)
			}
			records := testRecords(t, tc.storeDir)
			files, err := Files(tc.storeDir, records, 1234)
			if err != nil {
				t.Fatal(err)
			}
			var listing []string
			for _, f := range files {
				listing = append(listing, fmt.Sprintf("%s %s", f.Path, f.Mode))
			}
			var want []string
			for _, dir := range tc.dirs {
				want = append(want, dir+" drwxr-xr-x")
			}
			want = append(want, tc.dbDir+"/db.sqlite -rw-r--r--", tc.dbDir+"/schema -rw-r--r--")
			if !slices.Equal(listing, want) {
				t.Fatalf("Files:\n got %q\nwant %q", listing, want)
			}
			if schema := string(files[len(files)-1].Data); schema != tc.version {
				t.Errorf("schema file holds %q, want %q", schema, tc.version)
			}
			dbData := files[len(files)-2].Data
			// The header's read and write versions (bytes 18 and 19) are
			// 2 in write-ahead-log mode.
			if len(dbData) < 100 || !bytes.HasPrefix(dbData, []byte("SQLite format 3\x00")) || dbData[18] != 2 || dbData[19] != 2 {
				t.Errorf("db.sqlite is not a SQLite database in WAL mode: header % x", dbData[:min(len(dbData), 20)])
			}

			_, db := openFiles(t, files)
			app, lib, data := records[0].Path, records[1].Path, records[2].Path
			// Ids follow the order of the paths.
			wantRows := []string{
				fmt.Sprintf("%s|%s|1234|%s|1000", app, testHash("app"), storetest.FakePath(t, tc.storeDir, "app.drv")),
				fmt.Sprintf("%s|%s|1234|NULL|96", data, testHash("data")),
				fmt.Sprintf("%s|%s|1234|NULL|2000", lib, testHash("lib")),
			}
			slices.Sort(wantRows)
			for i := range wantRows {
				wantRows[i] = fmt.Sprint(i+1) + "|" + wantRows[i]
			}
			gotRows := queryStrings(t, db, "SELECT id, path, hash, registrationTime, deriver, narSize FROM ValidPaths ORDER BY id")
			if !slices.Equal(gotRows, wantRows) {
				t.Errorf("ValidPaths:\n got %q\nwant %q", gotRows, wantRows)
			}
			gotRefs := queryStrings(t, db, "SELECT a.path, b.path FROM Refs JOIN ValidPaths a ON referrer = a.id JOIN ValidPaths b ON reference = b.id ORDER BY a.path, b.path")
			wantRefs := []string{app.String() + "|" + app.String(), app.String() + "|" + data.String(), app.String() + "|" + lib.String(), lib.String() + "|" + lib.String()}
			slices.Sort(wantRefs)
			if !slices.Equal(gotRefs, wantRefs) {
				t.Errorf("Refs:\n got %q\nwant %q", gotRefs, wantRefs)
			}
			if tc.storeDir == "/nix/store" {
				if got := queryStrings(t, db, "SELECT count(*) FROM ValidPaths WHERE ultimate IS NULL AND sigs IS NULL AND ca IS NULL"); !slices.Equal(got, []string{"3"}) {
					t.Errorf("ultimate, sigs and ca are not all NULL: %v", got)
				}
			}
			if got := queryStrings(t, db, "PRAGMA integrity_check"); !slices.Equal(got, []string{"ok"}) {
				t.Errorf("integrity_check: %v", got)
			}
			if got := queryStrings(t, db, "PRAGMA foreign_key_check"); len(got) != 0 {
				t.Errorf("foreign_key_check: %v", got)
			}
		})
	}
}

// The schemas as the daemons define them: Nix 2.8's src/libstore/schema.sql
// (schema version 10) and Guix's nix/libstore/schema.sql (version 7, the
// schema of Nix 1.3 to 1.11): per table its columns (name, type, not null,
// primary key position), indexes and triggers.
var wantSchemas = map[string][]string{
	"/nix/store": {
		"table DerivationOutputs: drv integer notnull pk1, id text notnull pk2, path text notnull",
		"table Refs: referrer integer notnull pk1, reference integer notnull pk2",
		"table ValidPaths: id integer notnull pk1, path text notnull, hash text notnull, registrationTime integer notnull, deriver text, narSize integer, ultimate integer, sigs text, ca text",
		"index IndexDerivationOutputs on DerivationOutputs(path)",
		"index IndexReference on Refs(reference)",
		"index IndexReferrer on Refs(referrer)",
		"trigger DeleteSelfRefs on ValidPaths",
		"foreign key DerivationOutputs(drv) -> ValidPaths(id) on delete CASCADE",
		"foreign key Refs(reference) -> ValidPaths(id) on delete RESTRICT",
		"foreign key Refs(referrer) -> ValidPaths(id) on delete CASCADE",
	},
	"/gnu/store": {
		"table DerivationOutputs: drv integer notnull pk1, id text notnull pk2, path text notnull",
		"table FailedPaths: path text notnull pk1, time integer notnull",
		"table Refs: referrer integer notnull pk1, reference integer notnull pk2",
		"table ValidPaths: id integer notnull pk1, path text notnull, hash text notnull, registrationTime integer notnull, deriver text, narSize integer",
		"index IndexDerivationOutputs on DerivationOutputs(path)",
		"index IndexReference on Refs(reference)",
		"index IndexReferrer on Refs(referrer)",
		"trigger DeleteSelfRefs on ValidPaths",
		"foreign key DerivationOutputs(drv) -> ValidPaths(id) on delete CASCADE",
		"foreign key Refs(reference) -> ValidPaths(id) on delete RESTRICT",
		"foreign key Refs(referrer) -> ValidPaths(id) on delete CASCADE",
	},
}

// describeSchema lists a database's tables, indexes, triggers and foreign
// keys in the form of wantSchemas.
func describeSchema(t *testing.T, db *sql.DB) []string {
	t.Helper()
	var tables, indexes, triggers, keys []string
	for _, row := range queryStrings(t, db, "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name") {
		f := strings.Split(row, "|")
		kind, name, table := f[0], f[1], f[2]
		switch kind {
		case "table":
			var columns []string
			for _, c := range queryStrings(t, db, fmt.Sprintf("SELECT name, lower(type), \"notnull\", pk FROM pragma_table_info('%s') ORDER BY cid", name)) {
				f := strings.Split(c, "|")
				col := f[0] + " " + f[1]
				if f[2] == "1" {
					col += " notnull"
				}
				if f[3] != "0" {
					col += " pk" + f[3]
				}
				columns = append(columns, col)
			}
			tables = append(tables, fmt.Sprintf("table %s: %s", name, strings.Join(columns, ", ")))
			for _, k := range queryStrings(t, db, fmt.Sprintf("SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list('%s')", name)) {
				f := strings.Split(k, "|")
				keys = append(keys, fmt.Sprintf("foreign key %s(%s) -> %s(%s) on delete %s", name, f[0], f[1], f[2], f[3]))
			}
		case "index":
			columns := queryStrings(t, db, fmt.Sprintf("SELECT name FROM pragma_index_info('%s') ORDER BY seqno", name))
			indexes = append(indexes, fmt.Sprintf("index %s on %s(%s)", name, table, strings.Join(columns, ", ")))
		case "trigger":
			triggers = append(triggers, fmt.Sprintf("trigger %s on %s", name, table))
		}
	}
	slices.Sort(keys)
	return slices.Concat(tables, indexes, triggers, keys)
}

func TestSchemas(t *testing.T) {
	for storeDir, want := range wantSchemas {
		t.Run(storeDir, func(t *testing.T) {
			files, err := Files(storeDir, testRecords(t, storeDir), DefaultRegistrationTime)
			if err != nil {
				t.Fatal(err)
			}
			_, db := openFiles(t, files)
			if got := describeSchema(t, db); !slices.Equal(got, want) {
				t.Errorf("schema:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
			}
		})
	}
}

func TestFilesReproducible(t *testing.T) {
	records := testRecords(t, "/nix/store")
	first, err := Files("/nix/store", records, DefaultRegistrationTime)
	if err != nil {
		t.Fatal(err)
	}
	// The same records in another order, with references in another
	// order and repeated, give the same bytes.
	shuffled := slices.Clone(records)
	slices.Reverse(shuffled)
	for i := range shuffled {
		refs := slices.Clone(shuffled[i].References)
		slices.Reverse(refs)
		shuffled[i].References = append(refs, refs...)
	}
	for run := range 3 {
		again, err := Files("/nix/store", map[bool][]Record{true: records, false: shuffled}[run%2 == 0], DefaultRegistrationTime)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(first, again, func(a, b File) bool {
			return a.Path == b.Path && a.Mode == b.Mode && bytes.Equal(a.Data, b.Data)
		}) {
			t.Fatalf("run %d gave different files", run+1)
		}
	}
	// The caller's records are left as they were.
	if !slices.Equal(records[0].References, testRecords(t, "/nix/store")[0].References) {
		t.Errorf("Files changed the records' references: %v", records[0].References)
	}
	// Another registration time changes the database.
	other, err := Files("/nix/store", records, 2)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first[3].Data, other[3].Data) {
		t.Errorf("the registration time does not reach the database")
	}
}

// TestFilesLoadDB reads the database back with store.LoadDB, as storepack
// reads a live store's database.
func TestFilesLoadDB(t *testing.T) {
	records := testRecords(t, "/gnu/store")
	files, err := Files("/gnu/store", records, DefaultRegistrationTime)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := openFiles(t, files)
	dbDir := filepath.Join(root, "var/guix/db")
	g, err := store.LoadDB(filepath.Join(dbDir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		info, ok := g.Info(r.Path)
		refs := slices.SortedFunc(slices.Values(r.References), store.Path.Compare)
		if !ok || info.NarSize != r.NarSize || info.NarHash != r.NarHash || !slices.Equal(info.References, refs) {
			t.Errorf("LoadDB: %s is %+v, want size %d, hash %s, references %v", r.Path, info, r.NarSize, r.NarHash, refs)
		}
	}
	if g.Len() != len(records) {
		t.Errorf("LoadDB: %d paths, want %d", g.Len(), len(records))
	}
}

func TestFilesErrors(t *testing.T) {
	records := func(change func(rs []Record)) []Record {
		rs := testRecords(t, "/nix/store")
		change(rs)
		return rs
	}
	app, lib := testRecords(t, "/nix/store")[0].Path, testRecords(t, "/nix/store")[1].Path
	missing := storetest.FakePath(t, "/nix/store", "missing")
	tests := []struct {
		name     string
		storeDir string
		records  []Record
		time     int64
		wantErr  string
	}{
		{"unknown store", "/opt/store", testRecords(t, "/opt/store"), 1, "store directory /opt/store: no known place for its database"},
		{"no records", "/nix/store", nil, 1, "no records"},
		{"negative time", "/nix/store", testRecords(t, "/nix/store"), -1, "registration time -1 is before the epoch"},
		{"not a closure", "/nix/store", records(func(rs []Record) { rs[1].References = append(rs[1].References, missing) }),
			1, lib.String() + " references " + missing.String() + ", which has no record: the records must be a closure"},
		{"other store", "/nix/store", append(testRecords(t, "/nix/store"), Record{Path: storetest.FakePath(t, "/gnu/store", "x"), NarHash: testHash("x"), NarSize: 1}),
			1, storetest.FakePath(t, "/gnu/store", "x").String() + " is not in store directory /nix/store"},
		{"reference in other store", "/nix/store", records(func(rs []Record) { rs[0].References = []store.Path{storetest.FakePath(t, "/gnu/store", "x")} }),
			1, app.String() + ": reference: " + storetest.FakePath(t, "/gnu/store", "x").String() + " is not in store directory /nix/store"},
		{"invalid path", "/nix/store", records(func(rs []Record) { rs[0].Path.Hash = "x" }), 1, "invalid store path"},
		{"duplicate", "/nix/store", append(testRecords(t, "/nix/store"), testRecords(t, "/nix/store")[1]), 1, lib.String() + ": two records"},
		{"no hash", "/nix/store", records(func(rs []Record) { rs[0].NarHash = "" }), 1, app.String() + `: NAR hash "" is not a sha256 digest`},
		{"sha512", "/nix/store", records(func(rs []Record) { rs[0].NarHash = digest.Digest("sha512:" + strings.Repeat("0", 128)) }), 1, "is not a sha256 digest"},
		{"no size", "/nix/store", records(func(rs []Record) { rs[0].NarSize = 0 }), 1, app.String() + ": NAR size 0"},
		{"deriver not a drv", "/nix/store", records(func(rs []Record) { rs[0].Deriver = lib }), 1, app.String() + ": deriver " + lib.String() + " is not a derivation"},
		{"deriver elsewhere", "/nix/store", records(func(rs []Record) { rs[0].Deriver = storetest.FakePath(t, "/gnu/store", "x.drv") }), 1, app.String() + ": deriver: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Files(tc.storeDir, tc.records, tc.time); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Files: %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
	if _, err := Dir("/gnu/store/"); err == nil {
		t.Errorf("Dir accepted a store directory with a trailing slash")
	}
}

func TestRecords(t *testing.T) {
	storeDir := t.TempDir()
	app, lib := storetest.FakePath(t, "/nix/store", "app"), storetest.FakePath(t, "/nix/store", "lib")
	for name, data := range map[string]string{
		app.Base() + "/bin/app": "#!" + lib.String() + "/bin/sh\n",
		lib.Base() + "/bin/sh":  "not really a shell",
	} {
		file := filepath.Join(storeDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fsys := os.DirFS(storeDir)
	g, err := store.NewGraph([]store.Info{{Path: app, References: []store.Path{lib}}, {Path: lib}})
	if err != nil {
		t.Fatal(err)
	}
	records, err := Records(context.Background(), fsys, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Fatalf("Records gave %d records, want 2", len(records))
	}
	for _, r := range records {
		hash, size, err := store.NarHash(context.Background(), fsys, r.Path)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := g.Info(r.Path)
		if r.NarHash != hash || r.NarSize != size || !slices.Equal(r.References, info.References) || r.Deriver != (store.Path{}) {
			t.Errorf("record %+v, want hash %s, size %d, references %v", r, hash, size, info.References)
		}
	}
	if _, err := Files("/nix/store", records, DefaultRegistrationTime); err != nil {
		t.Errorf("Files of Records: %v", err)
	}

	// A size in the graph that the files contradict.
	wrong, err := store.NewGraph([]store.Info{{Path: app, References: []store.Path{lib}, NarSize: 1}, {Path: lib}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Records(context.Background(), fsys, wrong); err == nil || !strings.Contains(err.Error(), app.String()+": NAR size ") {
		t.Errorf("Records with a wrong size: %v", err)
	}
	// A path missing on disk.
	absent, err := store.NewGraph([]store.Info{{Path: storetest.FakePath(t, "/nix/store", "absent")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Records(context.Background(), fsys, absent); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Records with a missing path: %v", err)
	}
}
