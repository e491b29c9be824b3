//go:build nix

package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestNixNarHash checks NarHash and NixHash against Nix: the pinned
// fixtures of narhash_test.go against nix hash path and nix-store --dump,
// and every path of a store that Nix built (testdata/nixstore.nix, plus the
// fixtures added with nix-store --add, which canonicalises their modes and
// times) against the narHash Nix recorded for it. Run it with go test -tags
// nix (see TestNix).
func TestNixNarHash(t *testing.T) {
	s := buildNixStore(t)
	s.build(t)

	src := t.TempDir()
	for _, fixture := range narHashFixtures {
		file := filepath.Join(src, testPath(fixture.name).Base())
		writeFixture(t, src, testPath(fixture.name), fixture.files)
		hashPath, err := exec.Command("nix", "hash", "path", "--type", "sha256", "--base16", file).Output()
		if err != nil {
			t.Fatalf("nix hash path %s: %v", file, err)
		}
		dump, err := exec.Command("nix-store", "--dump", file).Output()
		if err != nil {
			t.Fatalf("nix-store --dump %s: %v", file, err)
		}
		want := fmt.Sprintf("sha256:%x", sha256.Sum256(dump))
		if got := "sha256:" + strings.TrimSpace(string(hashPath)); got != want {
			t.Fatalf("%s: nix hash path says %s, nix-store --dump hashes to %s", fixture.name, got, want)
		}
		if string(fixture.hash) != want || fixture.size != uint64(len(dump)) {
			t.Errorf("fixture %s is pinned as %s, %d; Nix says %s, %d", fixture.name, fixture.hash, fixture.size, want, len(dump))
		}
		s.run(t, "nix-store", "--add", file)
	}

	var infos []struct {
		Path    string `json:"path"`
		NarHash string `json:"narHash"`
		NarSize uint64 `json:"narSize"`
	}
	if err := json.Unmarshal(s.run(t, "nix", "path-info", "--json", "--all"), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) < 10+len(narHashFixtures) {
		t.Fatalf("the test store has %d paths, want at least %d", len(infos), 10+len(narHashFixtures))
	}
	fsys := os.DirFS(s.onDisk)
	for _, info := range infos {
		p, err := ParsePath(info.Path)
		if err != nil {
			t.Fatal(err)
		}
		hash, size, err := NarHash(context.Background(), fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		if sri := sriOf(t, hash); sri != info.NarHash || size != info.NarSize {
			t.Errorf("NarHash(%s) = %s (%s), %d; Nix recorded %s, %d", p, hash, sri, size, info.NarHash, info.NarSize)
		}
		// Nix prints the nix32 form here.
		nixHash, err := NixHash(hash)
		if want := strings.TrimSpace(string(s.run(t, "nix-store", "--query", "--hash", p.String()))); err != nil || nixHash != want {
			t.Errorf("NixHash(%s) = %s, %v; nix-store --query --hash %s says %s", hash, nixHash, err, p, want)
		}
	}
	t.Logf("NarHash agrees with Nix on %d store paths", len(infos))
}

// sriOf renders a digest as nix path-info --json prints a NAR hash (Nix
// 2.8): an SRI hash, sha256-<base64>.
func sriOf(t *testing.T, d digest.Digest) string {
	sum, err := hex.DecodeString(d.Encoded())
	if err != nil {
		t.Fatal(err)
	}
	return "sha256-" + base64.StdEncoding.EncodeToString(sum)
}
