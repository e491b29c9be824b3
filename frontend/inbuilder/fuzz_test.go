package inbuilder

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/storepack/storepack/store"
)

// FuzzDecodeScanResult feeds DecodeScanResult the result file of a scan,
// which the builder hands back, seeded with what each command writes
// (check-store's about a path its part lacks). What it accepts, the
// helper's encoding writes and reads back to the same text; a problem is
// an error that names where the store came from.
func FuzzDecodeScanResult(f *testing.F) {
	dir := f.TempDir()
	app, data := testStore(f, dir)
	for _, command := range []Command{FindHashes, CheckStore, HashStore} {
		req := ScanRequest{Parts: []ScanPart{
			{StoreDir: filepath.Join(dir, "store", "0"), Paths: []store.Path{app}},
			{StoreDir: filepath.Join(dir, "store", "1"), Paths: []store.Path{data}},
		}}
		if command == CheckStore {
			req.Parts[1].Paths = append(req.Parts[1].Paths, app)
		}
		out := filepath.Join(dir, string(command)+".json")
		if err := scanStore(context.Background(), command, req, out); err != nil {
			f.Fatal(err)
		}
		result, err := os.ReadFile(out)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(result)
	}
	for _, s := range []string{"", "null", "{}", `{"scans":null,"problem":""}`, `{"scans":{"x":{"hashes":[],"narSize":-1}}}`, `{"SCANS":{"":null},"Problem":"x"}`} {
		f.Add([]byte(s))
	}
	const where = "the fuzzed store"
	f.Fuzz(func(t *testing.T, data []byte) {
		scans, err := DecodeScanResult(data, where)
		var result ScanResult
		switch jsonErr := json.Unmarshal(data, &result); {
		case jsonErr != nil:
			if scans != nil || err == nil || err.Error() != "the scan's result: "+jsonErr.Error() {
				t.Fatalf("%q: %v, %v; want the JSON error %v", data, scans, err, jsonErr)
			}
			return
		case result.Problem != "":
			if scans != nil || err == nil || err.Error() != where+": "+result.Problem {
				t.Fatalf("%q: %v, %v; want the problem where it came from", data, scans, err)
			}
			return
		case err != nil:
			t.Fatalf("%q: a result without a problem, but %v", data, err)
		}
		again, err := json.Marshal(ScanResult{Scans: scans})
		if err != nil {
			t.Fatalf("%q: read as %+v, which the helper cannot write: %v", data, scans, err)
		}
		back, err := DecodeScanResult(again, where)
		if err != nil {
			t.Fatalf("%q: read as %+v, written as %s, which does not read: %v", data, scans, again, err)
		}
		if twice, err := json.Marshal(ScanResult{Scans: back}); err != nil || string(twice) != string(again) {
			t.Fatalf("%q: read as %+v, written as %s, read and written again as %s (%v)", data, scans, again, twice, err)
		}
	})
}
