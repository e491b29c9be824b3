package frontend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/internal/gatewaytest"
	"github.com/storepack/storepack/store"
)

// maxMessage is the largest gRPC message buildkitd takes from a frontend
// (BuildKit's defaults.DefaultMaxRecvMsgSize), which its users cannot raise.
const maxMessage = 16 << 20

// TestMessagesOfALargeClosure builds generated closures (a root and
// paths referencing a few shared ones, named as the scale benchmark names
// them) in-process and measures the gateway messages that grow with the
// closure: the Solve of the check-store walk and the Solve of the image.
// Their growth per store path, from two sizes, may not bring them near
// BuildKit's limit at 100,000 paths, nor may the Return of the result,
// which carries the image's definition and its config (whose plan label
// names every store path). The transfers are bounded by maxTransferPaths
// on their own.
func TestMessagesOfALargeClosure(t *testing.T) {
	const small, large, target = 10000, 20000, 100000
	a, b := closureMessages(t, small), closureMessages(t, large)
	for i, m := range []struct {
		name  string
		limit int64 // the most it may reach at target paths
	}{
		// Each store path once, in its transfer's include patterns.
		{"the image's Solve", maxMessage / 3},
		// The transfers, and the request naming each path.
		{"the check's Solve", maxMessage * 3 / 4},
		// The image's definition and config.
		{"the Return", maxMessage * 3 / 4},
	} {
		at := b[i] + (b[i]-a[i])*(target-large)/(large-small)
		t.Logf("%s: %d bytes for %d store paths, %d for %d: %d at %d", m.name, a[i], small, b[i], large, at, target)
		if at >= m.limit {
			t.Errorf("%s: %d bytes at %d store paths, more than %d", m.name, at, target, m.limit)
		}
	}
}

// closureMessages builds a generated closure of n store paths and returns
// the sizes of the image's Solve, the check's Solve and the Return.
func closureMessages(t *testing.T, n int) [3]int64 {
	dir := t.TempDir()
	ctxDir, storeDir := filepath.Join(dir, "ctx"), filepath.Join(dir, "store")
	var infos []store.Info
	path := func(i int, name string) store.Path {
		sum := sha256.Sum256(fmt.Appendf(nil, "%d", i))
		hash := make([]byte, 32)
		for k := range hash {
			hash[k] = "0123456789abcdfghijklmnpqrsvwxyz"[sum[k]%32]
		}
		p, err := store.ParsePath("/nix/store/" + string(hash) + "-" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(storeDir, p.Base()), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i := range n - 1 {
		info := store.Info{Path: path(i, fmt.Sprintf("pkg%06d-1.%d", i, i%7))}
		if i >= 500 {
			info.References = []store.Path{infos[i%500].Path}
		}
		infos = append(infos, info)
	}
	root := store.Info{Path: path(n, "scale-app-1.0")}
	for _, in := range infos {
		root.References = append(root.References, in.Path)
	}
	infos = append(infos, root)
	// Every path is an empty directory: the same NAR.
	_, size, err := store.NarHash(context.Background(), os.DirFS(storeDir), root.Path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range infos {
		infos[i].NarSize = size
	}
	graph, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := store.WritePathInfoJSON(&buf, graph); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "graph.json"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root.Path.String(), filepath.Join(ctxDir, "result")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "app.storepack"), []byte("# syntax=storepack\nCLOSURE ./result\nGRAPH graph.json\nLAYERS --max=100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &gatewaytest.Client{
		Opts:     map[string]string{"filename": "app.storepack", "context:store": "local:store"},
		Locals:   map[string]string{"context": ctxDir, "dockerfile": ctxDir, "store": storeDir},
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
		Frontend: "storepack:test", WorkDir: t.TempDir(),
	}
	res, err := Build(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	solved := c.Solved()
	image := solved[len(solved)-1]
	var check *pb.Definition
	for _, def := range solved {
		if isScan(t, def) {
			check = def
		}
	}
	if check == nil || !hasMerge(t, image) {
		t.Fatal("no check-store walk, or the last solve is not the image's")
	}
	ret := &gwpb.ReturnRequest{Result: &gwpb.Result{Metadata: res.Metadata, Result: &gwpb.Result_Ref{Ref: &gwpb.Ref{Def: image}}}}
	return [3]int64{
		int64((&gwpb.SolveRequest{Definition: image}).SizeVT()),
		int64((&gwpb.SolveRequest{Definition: check}).SizeVT()),
		int64(ret.SizeVT()),
	}
}

// isScan reports whether def runs the check-store walk of the helper.
func isScan(t *testing.T, def *pb.Definition) bool {
	for _, op := range definitionOps(t, def) {
		if e := op.GetExec(); e != nil && len(e.Meta.Args) > 1 && e.Meta.Args[1] == string(inbuilder.CheckStore) {
			return true
		}
	}
	return false
}

// hasMerge reports whether def merges layers.
func hasMerge(t *testing.T, def *pb.Definition) bool {
	for _, op := range definitionOps(t, def) {
		if op.GetMerge() != nil {
			return true
		}
	}
	return false
}
