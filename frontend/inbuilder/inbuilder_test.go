package inbuilder

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

var testHelper = Helper{Image: llb.Image("storepack:latest"), Binary: "/bin/storepack-frontend"}

// execOf marshals st and returns its one ExecOp and the files its FileOps
// make, by path.
func execOf(t *testing.T, st llb.State) (*pb.ExecOp, map[string][]byte) {
	t.Helper()
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var exec *pb.ExecOp
	files := map[string][]byte{}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		if e := op.GetExec(); e != nil {
			if exec != nil {
				t.Fatal("more than one ExecOp")
			}
			exec = e
		}
		for _, a := range op.GetFile().GetActions() {
			if mk := a.GetMkfile(); mk != nil {
				files[mk.Path] = mk.Data
			}
		}
	}
	if exec == nil {
		t.Fatal("no ExecOp")
	}
	return exec, files
}

// runLikeTheBuilder runs the command line of exec with Main, its request
// file taken from the request mount and its mounts under dir.
func runLikeTheBuilder(t *testing.T, exec *pb.ExecOp, files map[string][]byte, dir string) {
	t.Helper()
	args := exec.Meta.Args
	if args[0] != testHelper.Binary || len(args) != 4 {
		t.Fatalf("command line %q", args)
	}
	if exec.Network != pb.NetMode_NONE {
		t.Error("the helper has network")
	}
	request := filepath.Join(dir, args[2])
	if err := os.MkdirAll(filepath.Dir(request), 0o755); err != nil {
		t.Fatal(err)
	}
	data := files["/"+filepath.Base(args[2])]
	if Command(args[1]) != WriteStage { // the store mount is under dir too
		var req ScanRequest
		if err := json.Unmarshal(data, &req); err != nil {
			t.Fatal(err)
		}
		for i := range req.Parts {
			req.Parts[i].StoreDir = filepath.Join(dir, req.Parts[i].StoreDir)
		}
		data, _ = json.Marshal(req)
	}
	if err := os.WriteFile(request, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, args[3])
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	ok, err := Main(context.Background(), []string{args[1], request, out})
	if !ok || err != nil {
		t.Fatalf("Main: ok %v, err %v", ok, err)
	}
}

func TestStage(t *testing.T) {
	c := layerllb.Customisation{
		Dirs:  []layerllb.Dir{{Path: "/tmp", Mode: 0o1777}, {Path: "/var/lib/app", Mode: 0o750}},
		Links: []layerllb.Link{{Path: "/bin", Target: "/nix/store/x-hello/bin"}, {Path: "/etc/ssl/certs", Target: "../../x"}},
	}
	st, err := testHelper.Stage(c)
	if err != nil {
		t.Fatal(err)
	}
	exec, files := execOf(t, st)
	dir := t.TempDir()
	runLikeTheBuilder(t, exec, files, dir)
	out := filepath.Join(dir, outputMount)
	fi, err := os.Lstat(filepath.Join(out, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp mode %v", fi.Mode())
	}
	if fi, _ := os.Lstat(filepath.Join(out, "var/lib/app")); fi == nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("/var/lib/app: %v", fi)
	}
	for _, l := range c.Links {
		if got, err := os.Readlink(filepath.Join(out, l.Path)); err != nil || got != l.Target {
			t.Errorf("%s -> %q (%v), want %q", l.Path, got, err, l.Target)
		}
	}
}

// testStore writes two store paths, the app referencing the data path, as
// two parts of a scan would mount them: the app under dir/store/0, the data
// under dir/store/1.
func testStore(t testing.TB, dir string) (app, data store.Path) {
	t.Helper()
	data, _ = store.ParsePath("/nix/store/00000000000000000000000000000000-data")
	app, _ = store.ParsePath("/nix/store/11111111111111111111111111111111-app")
	for name, content := range map[string]string{
		"1/" + data.Base() + "/share/greeting": "hello",
		"0/" + app.Base() + "/bin/app":         "#!/bin/sh\ncat " + data.String() + "/share/greeting\n",
	} {
		p := filepath.Join(dir, "store", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return app, data
}

// TestScan runs each scan as the builder would; hash-store lists the files
// when asked, and only then.
func TestScan(t *testing.T) {
	for _, tc := range []struct {
		command Command
		files   bool
	}{{FindHashes, false}, {CheckStore, false}, {HashStore, false}, {HashStore, true}} {
		command := tc.command
		t.Run(fmt.Sprintf("%s files=%t", command, tc.files), func(t *testing.T) {
			dir := t.TempDir()
			app, data := testStore(t, dir)
			st, err := testHelper.Scan(command, []layerllb.Part{
				{State: llb.Local("app"), Dir: "/", Paths: []store.Path{app}},
				{State: llb.Local("data"), Dir: "/", Paths: []store.Path{data}},
			}, tc.files, "scan")
			if err != nil {
				t.Fatal(err)
			}
			exec, files := execOf(t, st)
			var mounts []string
			for _, m := range exec.Mounts {
				if m.Readonly && strings.HasPrefix(m.Dest, storeMount) {
					mounts = append(mounts, m.Dest)
				}
			}
			if want := []string{"/store/0", "/store/1"}; !slices.Equal(mounts, want) {
				t.Errorf("read-only store mounts %v, want %v", mounts, want)
			}
			runLikeTheBuilder(t, exec, files, dir)
			result, err := os.ReadFile(filepath.Join(dir, outputMount, ResultFile))
			if err != nil {
				t.Fatal(err)
			}
			scans, err := DecodeScanResult(result, "the test store")
			if err != nil {
				t.Fatal(err)
			}
			if scans[app.String()].NarSize == 0 || scans[data.String()].NarSize == 0 {
				t.Errorf("NAR sizes not measured: %+v", scans)
			}
			refs := scans[app.String()].Hashes
			if want := command == FindHashes; want != (len(refs) == 1 && refs[0] == data.Hash) {
				t.Errorf("%s: hashes of the app %v", command, refs)
			}
			for _, p := range []store.Path{app, data} {
				root, err := os.OpenRoot(filepath.Join(dir, "store", map[store.Path]string{app: "0", data: "1"}[p]))
				if err != nil {
					t.Fatal(err)
				}
				defer root.Close()
				want, err := store.NarHashFiles(context.Background(), root.FS(), p)
				if err != nil {
					t.Fatal(err)
				}
				if got := scans[p.String()].NarHash; (command == HashStore) != (got == want.NarHash) {
					t.Errorf("%s: NAR hash of %s %q, want %q only from %s", command, p, got, want.NarHash, HashStore)
				}
				if got := scans[p.String()].Files; len(want.Files) != 1 || tc.files != slices.Equal(got, want.Files) {
					t.Errorf("%s files=%t: files of %s %v, NarHashFiles lists %v", command, tc.files, p, got, want.Files)
				}
			}
		})
	}
}

func TestScanReportsUnfitPaths(t *testing.T) {
	dir := t.TempDir()
	app, _ := testStore(t, dir)
	if err := os.Chmod(filepath.Join(dir, "store", "0", app.Base(), "bin", "app"), os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(ScanRequest{Parts: []ScanPart{{StoreDir: filepath.Join(dir, "store", "0"), Paths: []store.Path{app}}}})
	reqFile := filepath.Join(dir, "request.json")
	if err := os.WriteFile(reqFile, req, 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := Main(context.Background(), []string{string(CheckStore), reqFile, dir}); !ok || err != nil {
		t.Fatalf("Main: ok %v, err %v (an unfit path is a result, not a failure)", ok, err)
	}
	result, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecodeScanResult(result, "the test store")
	if err == nil || !strings.HasPrefix(err.Error(), "the test store: ") || !strings.Contains(err.Error(), "setuid") {
		t.Errorf("err = %v, want the store and the setuid bit named", err)
	}
}

func TestMainArguments(t *testing.T) {
	if ok, err := Main(context.Background(), nil); ok || err != nil {
		t.Errorf("no arguments: ok %v, err %v; want the gateway frontend", ok, err)
	}
	if ok, _ := Main(context.Background(), []string{"--help"}); ok {
		t.Error("an unknown first argument is taken as a command")
	}
	if ok, err := Main(context.Background(), []string{string(FindHashes), "only-one"}); !ok || err == nil {
		t.Errorf("a short command line: ok %v, err %v", ok, err)
	}
}
