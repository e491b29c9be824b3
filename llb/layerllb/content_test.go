package layerllb

import (
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/store"
)

func contentPath(t *testing.T, hash byte, name string) store.Path {
	t.Helper()
	p, err := store.ParsePath("/nix/store/" + strings.Repeat(string(hash), 32) + "-" + name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestContentKey: the key depends on everything a layer's bytes depend on,
// and on nothing else (the order the paths are given in).
func TestContentKey(t *testing.T) {
	paths := func() []PathContent {
		return []PathContent{
			{Path: contentPath(t, 'a', "app"), NarHash: digest.FromString("app"), NarSize: 100},
			{Path: contentPath(t, 'b', "lib"), NarHash: digest.FromString("lib"), NarSize: 200},
		}
	}
	epoch := time.Unix(1, 0)
	base, ok := ContentKey("/nix/store", epoch, paths())
	if !ok {
		t.Fatal("no key")
	}
	// Images record keys (ContentLabel): the text hashed must stay as it is.
	text := "storepack layer 1\nstore \"/nix/store\"\nepoch 1\n" +
		"path \"/nix/store/" + strings.Repeat("a", 32) + "-app\" " + digest.FromString("app").String() + " 100\n" +
		"path \"/nix/store/" + strings.Repeat("b", 32) + "-lib\" " + digest.FromString("lib").String() + " 200\n"
	if want := digest.FromString(text); base != want {
		t.Errorf("key %s, want %s, the digest of:\n%s", base, want, text)
	}
	swapped := paths()
	swapped[0], swapped[1] = swapped[1], swapped[0]
	if k, _ := ContentKey("/nix/store", epoch, swapped); k != base {
		t.Error("the order of the paths changed the key")
	}
	seen := map[digest.Digest]string{base: "base"}
	for name, key := range map[string]func() (digest.Digest, bool){
		"store":    func() (digest.Digest, bool) { return ContentKey("/gnu/store", epoch, paths()) },
		"epoch":    func() (digest.Digest, bool) { return ContentKey("/nix/store", time.Unix(2, 0), paths()) },
		"one less": func() (digest.Digest, bool) { return ContentKey("/nix/store", epoch, paths()[:1]) },
		"nar hash": func() (digest.Digest, bool) {
			p := paths()
			p[0].NarHash = digest.FromString("app2")
			return ContentKey("/nix/store", epoch, p)
		},
		"nar size": func() (digest.Digest, bool) {
			p := paths()
			p[1].NarSize = 201
			return ContentKey("/nix/store", epoch, p)
		},
		"path": func() (digest.Digest, bool) {
			p := paths()
			p[1].Path = contentPath(t, 'c', "lib")
			return ContentKey("/nix/store", epoch, p)
		},
	} {
		k, ok := key()
		if !ok {
			t.Fatalf("%s: no key", name)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s gave the key of %s", name, other)
		}
		seen[k] = name
	}
	unknown := paths()
	unknown[1].NarHash = ""
	if _, ok := ContentKey("/nix/store", epoch, unknown); ok {
		t.Error("a path without a NAR hash gave a key")
	}
}
