package hostbuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/internal/storetest"
)

// TestInputKey: the key changes with everything a build reads, and with
// nothing else.
func TestInputKey(t *testing.T) {
	f := storetest.New(t, "")
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	base := func() Options {
		return Options{
			Manifest:     []byte("# syntax=storepack\nSTORE " + f.StoreName + "\nCLOSURE ./result-amd64\nGRAPH graph.json\n"),
			ManifestName: "app.storepack",
			ContextDir:   f.CtxDir,
			BuildArgs:    map[string]string{"A": "1"},
			Labels:       map[string]string{"org.example": "x"},
		}
	}
	key := func(opt Options, p ocispecs.Platform) string {
		t.Helper()
		k, err := InputKey(context.Background(), opt, p)
		if err != nil {
			t.Fatal(err)
		}
		return k.String()
	}
	first := key(base(), amd64)
	if again := key(base(), amd64); again != first {
		t.Fatalf("the same inputs gave %s, then %s", first, again)
	}
	// An unrelated file in the context and the order of map entries
	// change nothing.
	if err := os.WriteFile(filepath.Join(f.CtxDir, "notes.txt"), []byte("unrelated"), 0o644); err != nil {
		t.Fatal(err)
	}
	more := base()
	more.BuildArgs["B"], more.Labels["org.example.b"] = "2", "y"
	withMore := key(more, amd64)
	for i := 0; i < 20; i++ {
		if key(more, amd64) != withMore {
			t.Fatal("the key depends on map order")
		}
	}
	if key(base(), amd64) != first {
		t.Error("an unrelated context file changed the key")
	}

	changed := map[string]string{"more build args and labels": withMore}
	opt := base()
	opt.Manifest = append(opt.Manifest, "ENV X=1\n"...)
	changed["manifest"] = key(opt, amd64)
	opt = base()
	opt.BuildArgs["A"] = "2"
	changed["build arg"] = key(opt, amd64)
	opt = base()
	opt.Labels["org.example"] = "y"
	changed["label"] = key(opt, amd64)
	opt = base()
	opt.Strategy, opt.MaxLayers = "single", 7
	changed["layering"] = key(opt, amd64)
	changed["platform"] = key(base(), ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"})

	graph := filepath.Join(f.CtxDir, "graph.json")
	data, err := os.ReadFile(graph)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(graph, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	changed["GRAPH file"] = key(base(), amd64)
	if err := os.WriteFile(graph, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// ./result-amd64 now points to another store path, as after a rebuild.
	link := filepath.Join(f.CtxDir, "result-amd64")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.Apps["arm"].String(), link); err != nil {
		t.Fatal(err)
	}
	changed["root"] = key(base(), amd64)

	seen := map[string]string{first: "the first inputs"}
	for what, k := range changed {
		if other, ok := seen[k]; ok {
			t.Errorf("%s gave the same key as %s", what, other)
		}
		seen[k] = what
	}

	bad := base()
	bad.Manifest = []byte("# syntax=storepack\nSTORE " + f.StoreName + "\nCLOSURE ./no-such-result\n")
	if _, err := InputKey(context.Background(), bad, amd64); err == nil || !strings.Contains(err.Error(), "app.storepack:3") {
		t.Errorf("a missing root: %v, want an error at app.storepack:3", err)
	}
}
