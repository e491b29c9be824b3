//go:build nix

package storedb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/testdir"
	"github.com/storepack/storepack/store"
)

// TestNix checks the database that Files writes with Nix 2.8 itself: a
// closure that Nix built is copied into a store of its own with nothing
// but the files of Files for a database, and that store must verify
// (nix-store --verify --check-contents) and answer queries exactly as the
// store Nix built it in, without Nix rewriting the database. It needs
// nix-build, nix-store, nix (with the nix-command feature) and busybox, and
// fails without them: run it with go test -tags nix (see ENVIRONMENT.md for
// installing Nix offline).
func TestNix(t *testing.T) {
	for _, tool := range []string{"nix-build", "nix-store", "nix", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for this test (apt-get install --no-install-recommends nix-bin busybox-static; see ENVIRONMENT.md): %v", tool, err)
		}
	}
	built := newNixStore(t)
	roots := built.build(t)
	closure := strings.Fields(string(built.run(t, append([]string{"nix-store", "--query", "--requisites"}, roots...)...)))
	builtJSON := built.run(t, append([]string{"nix", "path-info", "--json", "--recursive"}, roots...)...)
	builtInfos := pathInfos(t, builtJSON)
	if len(closure) < 10 || len(builtInfos) != len(closure) {
		t.Fatalf("closure of %v: %d paths, path-info %d; want at least 10, the same", roots, len(closure), len(builtInfos))
	}

	// The image: the closure's store paths and the database, nothing else.
	image := newNixStore(t)
	for _, p := range closure {
		base := filepath.Base(p)
		if out, err := exec.Command("cp", "-a", filepath.Join(built.storeDir, base), filepath.Join(image.storeDir, base)).CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v\n%s", p, err, out)
		}
	}
	g, err := store.Load("path-info.json", bytes.NewReader(builtJSON))
	if err != nil {
		t.Fatal(err)
	}
	records, err := Records(context.Background(), os.DirFS(image.storeDir), g)
	if err != nil {
		t.Fatal(err)
	}
	selfReferences := 0
	for i, r := range records {
		if deriver := builtInfos[r.Path.String()].Deriver; deriver != "" {
			if records[i].Deriver, err = store.ParsePath(deriver); err != nil {
				t.Fatal(err)
			}
		}
		if slices.Contains(r.References, r.Path) {
			selfReferences++
		}
	}
	if selfReferences == 0 {
		t.Fatalf("no path of the closure references itself: the test no longer tests self-references")
	}
	files, err := Files("/nix/store", records, DefaultRegistrationTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Join(image.root, filepath.FromSlash(f.Path))
		if f.Mode.IsDir() {
			err = os.Mkdir(name, f.Mode.Perm())
		} else {
			err = os.WriteFile(name, f.Data, f.Mode.Perm())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	dbFile := filepath.Join(image.root, "nix/var/nix/db/db.sqlite")
	written := fileHash(t, dbFile)

	// Every path exists and has the contents the database says.
	verify := func() {
		t.Helper()
		stdout, stderr := image.runWithStderr(t, "nix-store", "--verify", "--check-contents")
		out := append(stdout, stderr...)
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			switch line {
			case "reading the Nix store...", "checking path existence...", "checking link hashes...", "checking store hashes...":
			default:
				t.Errorf("nix-store --verify --check-contents complains:\n%s", out)
				return
			}
		}
	}
	verify()

	// The database answers as the store Nix built the paths in.
	imageInfos := pathInfos(t, image.run(t, append([]string{"nix", "path-info", "--json", "--recursive"}, roots...)...))
	if len(imageInfos) != len(builtInfos) {
		t.Errorf("nix path-info --recursive %v: %d paths, want %d", roots, len(imageInfos), len(builtInfos))
	}
	for _, r := range records {
		p := r.Path.String()
		got, want := imageInfos[p], builtInfos[p]
		if got.NarHash != want.NarHash || got.NarSize != want.NarSize || !slices.Equal(got.References, want.References) ||
			got.Deriver != want.Deriver || got.RegistrationTime != DefaultRegistrationTime {
			t.Errorf("nix path-info %s:\n got %+v\nwant %+v (registration time %d)", p, got, want, DefaultRegistrationTime)
		}
		if sri := "sha256-" + base64.StdEncoding.EncodeToString(mustHex(t, r.NarHash.Encoded())); got.NarHash != sri {
			t.Errorf("nix path-info %s: narHash %s, the record has %s (%s)", p, got.NarHash, sri, r.NarHash)
		}
		refs := strings.Fields(string(image.run(t, "nix-store", "--query", "--references", p)))
		slices.Sort(refs)
		var wantRefs []string
		for _, ref := range r.References {
			wantRefs = append(wantRefs, ref.String())
		}
		if !slices.Equal(refs, wantRefs) {
			t.Errorf("nix-store --query --references %s:\n got %v\nwant %v", p, refs, wantRefs)
		}
	}
	requisites := strings.Fields(string(image.run(t, append([]string{"nix-store", "--query", "--requisites"}, roots...)...)))
	if !slices.Equal(sorted(requisites), sorted(closure)) {
		t.Errorf("nix-store --query --requisites %v:\n got %v\nwant %v", roots, requisites, closure)
	}
	if now := fileHash(t, dbFile); now != written {
		t.Errorf("reading the store changed db.sqlite")
	}

	// The database is a live one: Nix adds to it, and the store still
	// verifies.
	added := filepath.Join(t.TempDir(), "added")
	if err := os.WriteFile(added, []byte("added after the fact\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addedPath := strings.TrimSpace(string(image.run(t, "nix-store", "--add", added)))
	if valid := image.run(t, "nix-store", "--query", "--hash", addedPath); len(valid) == 0 {
		t.Errorf("nix-store --add %s did not register it", added)
	}
	verify()
	t.Logf("Nix accepted the database of %d paths (%d with a self-reference) and added to it", len(records), selfReferences)
}

// nixStore is a Nix store in a directory of its own (--store
// local?root=DIR): its paths are /nix/store/… to Nix, DIR/nix/store/… on
// disk.
type nixStore struct {
	root     string
	storeDir string // on disk
}

func newNixStore(t *testing.T) *nixStore {
	root := testdir.ForStore(t)
	s := &nixStore{root: root, storeDir: filepath.Join(root, "nix", "store")}
	if err := os.MkdirAll(s.storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// build adds busybox to the store and builds two closures: app of
// store/testdata/nixstore.nix, whose paths reference themselves and each
// other in every way Nix detects, and hello of e2e/testdata/hello.nix. It
// returns their store paths.
func (s *nixStore) build(t *testing.T) []string {
	busybox, _ := exec.LookPath("busybox")
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "busybox")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "busybox"), data, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(src, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	bb := strings.TrimSpace(string(s.run(t, "nix-store", "--add", src)))
	app := strings.TrimSpace(string(s.run(t, "nix-build", "--no-out-link", "--argstr", "busybox", bb, "-A", "app", "../testdata/nixstore.nix")))
	hello := strings.TrimSpace(string(s.run(t, "nix-build", "--no-out-link", "--argstr", "busybox", bb, "../../e2e/testdata/hello.nix")))
	return []string{app, hello}
}

// run runs a Nix command on the store and returns its output.
func (s *nixStore) run(t *testing.T, args ...string) []byte {
	t.Helper()
	out, _ := s.runWithStderr(t, args...)
	return out
}

// runWithStderr is run that also returns what the command printed on
// stderr, where Nix reports progress and problems.
func (s *nixStore) runWithStderr(t *testing.T, args ...string) (stdout, stderr []byte) {
	t.Helper()
	cmd := exec.Command(args[0], append([]string{"--store", "local?root=" + s.root}, args[1:]...)...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, errBuf.String())
	}
	return out, errBuf.Bytes()
}

// pathInfo is an entry of nix path-info --json (Nix 2.8).
type pathInfo struct {
	NarHash          string   `json:"narHash"`
	NarSize          uint64   `json:"narSize"`
	References       []string `json:"references"`
	Deriver          string   `json:"deriver"`
	RegistrationTime int64    `json:"registrationTime"`
}

func pathInfos(t *testing.T, data []byte) map[string]pathInfo {
	t.Helper()
	var entries []struct {
		Path string `json:"path"`
		pathInfo
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatalf("nix path-info --json: %v\n%s", err, data)
	}
	infos := make(map[string]pathInfo)
	for _, e := range entries {
		slices.Sort(e.References)
		infos[e.Path] = e.pathInfo
	}
	return infos
}

func fileHash(t *testing.T, file string) [sha256.Size]byte {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
