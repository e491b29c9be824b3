//go:build unix

package layertar

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

var epoch = time.Unix(1700000000, 0)

// entries reads a tar's headers as "name mode uid:gid mtime [-> link]".
func entries(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		e := fmt.Sprintf("%s %o %d:%d %d", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime.Unix())
		if h.Linkname != "" {
			e += " -> " + h.Linkname
		}
		out = append(out, e)
	}
}

// TestWrite: a layer holds the store directory and its parents, then its
// store paths depth first in byte order, owned by 0:0 at the epoch, modes
// and symlinks as in the store; the host directory need not end with the
// store directory; the digest is the tar's.
func TestWrite(t *testing.T) {
	for _, storeName := range []string{"/nix/store", "/gnu/store"} {
		t.Run(storeName, func(t *testing.T) {
			f := storetest.New(t, storeName)
			if err := os.Symlink("greeting", filepath.Join(f.StoreDir, f.Data.Base(), "share", "link")); err != nil {
				t.Fatal(err)
			}
			l := Layer{StoreDir: storeName, HostDir: f.StoreDir, Paths: []store.Path{f.Lib, f.Data}, Epoch: epoch}
			var buf bytes.Buffer
			if err := Write(context.Background(), &buf, l); err != nil {
				t.Fatal(err)
			}
			dir := storeName[1:]
			ts := epoch.Unix()
			want := []string{
				fmt.Sprintf("%s/ 755 0:0 %d", strings.Split(dir, "/")[0], ts),
				fmt.Sprintf("%s/ 755 0:0 %d", dir, ts),
				fmt.Sprintf("%s/%s/ 755 0:0 %d", dir, f.Data.Base(), ts),
				fmt.Sprintf("%s/%s/share/ 755 0:0 %d", dir, f.Data.Base(), ts),
				fmt.Sprintf("%s/%s/share/greeting 444 0:0 %d", dir, f.Data.Base(), ts),
				fmt.Sprintf("%s/%s/share/link 777 0:0 %d -> greeting", dir, f.Data.Base(), ts),
				fmt.Sprintf("%s/%s/ 755 0:0 %d", dir, f.Lib.Base(), ts),
				fmt.Sprintf("%s/%s/lib/ 755 0:0 %d", dir, f.Lib.Base(), ts),
				fmt.Sprintf("%s/%s/lib/libgreet.so 555 0:0 %d", dir, f.Lib.Base(), ts),
			}
			if got := entries(t, buf.Bytes()); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			d, size, err := Digest(context.Background(), l)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("sha256:%x", sha256.Sum256(buf.Bytes())); d.String() != want || size != int64(buf.Len()) {
				t.Errorf("Digest %s, %d bytes; the tar's %s, %d bytes", d, size, want, buf.Len())
			}
		})
	}
}

// TestWriteRefuses: what a store path cannot hold is an error naming the
// file, and so is a path of another store directory.
func TestWriteRefuses(t *testing.T) {
	f := storetest.New(t, "/nix/store")
	setuid := filepath.Join(f.StoreDir, f.Data.Base(), "share", "greeting")
	if err := os.Chmod(setuid, os.ModeSetuid|0o555); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(f.StoreDir, f.Lib.Base(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		paths []store.Path
		want  string
	}{
		{[]store.Path{f.Data}, f.Data.String() + "/share/greeting: mode"},
		{[]store.Path{f.Lib}, f.Lib.String() + "/fifo"},
		{[]store.Path{storetest.FakePath(t, "/gnu/store", "other")}, "not in the layer's store directory /nix/store"},
	} {
		err := Write(context.Background(), io.Discard, Layer{StoreDir: "/nix/store", HostDir: f.StoreDir, Paths: tc.paths, Epoch: epoch})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.paths, err, tc.want)
		}
	}
}

// TestWriteEntries: a customisation layer holds its entries in their
// order, at the epoch, with their owners, modes, targets and data.
func TestWriteEntries(t *testing.T) {
	c := layerllb.Customisation{
		Dirs:  []layerllb.Dir{{Path: "/home/app", Mode: 0o750, Owner: &layerllb.Owner{UID: 1001, GID: 1002}}},
		Links: []layerllb.Link{{Path: "/bin", Target: "/gnu/store/x-hello/bin"}},
		Files: []layerllb.File{{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0::/:/bin/sh\n")}},
	}
	var buf bytes.Buffer
	if err := WriteEntries(context.Background(), &buf, c.Entries(), epoch); err != nil {
		t.Fatal(err)
	}
	got := entries(t, buf.Bytes())
	want := []string{
		fmt.Sprintf("bin %o 0:0 %d -> /gnu/store/x-hello/bin", 0o777, epoch.Unix()),
		fmt.Sprintf("etc/ %o 0:0 %d", 0o755, epoch.Unix()),
		fmt.Sprintf("etc/passwd %o 0:0 %d", 0o644, epoch.Unix()),
		fmt.Sprintf("home/ %o 0:0 %d", 0o755, epoch.Unix()),
		fmt.Sprintf("home/app/ %o 1001:1002 %d", 0o750, epoch.Unix()),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal("no /etc/passwd")
		}
		if h.Name == "etc/passwd" {
			data, _ := io.ReadAll(tr)
			if string(data) != string(c.Files[0].Data) {
				t.Errorf("etc/passwd holds %q", data)
			}
			return
		}
	}
}

// recorded is a graph of paths in f's store with the NAR hashes and sizes
// they have now.
func recorded(t testing.TB, f *storetest.Fixture, paths ...store.Path) *store.Graph {
	t.Helper()
	infos := make([]store.Info, len(paths))
	for i, p := range paths {
		hash, size, err := store.NarHash(context.Background(), os.DirFS(f.StoreDir), p)
		if err != nil {
			t.Fatal(err)
		}
		infos[i] = store.Info{Path: p, NarHash: hash, NarSize: size}
	}
	g, err := store.NewGraph(infos)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestWriteChecksNar: with a graph, the layer's tar is the same bytes as
// without, files large and small, with and without extended headers; a
// store path whose contents changed since the graph was recorded (same
// size, or not) is refused, naming it with both NARs.
func TestWriteChecksNar(t *testing.T) {
	f := storetest.New(t, "/gnu/store")
	f.Write(t, f.Data, "share/big", strings.Repeat("0123456789abcdef", 12345)+"tail", 0o444)
	f.Write(t, f.Data, "share/empty", "", 0o444)
	f.Write(t, f.Data, "share/"+strings.Repeat("long name ", 12), "a PAX header's path", 0o444)
	l := Layer{StoreDir: "/gnu/store", HostDir: f.StoreDir, Paths: []store.Path{f.Lib, f.Data}, Epoch: epoch}
	var plain, checked bytes.Buffer
	if err := Write(context.Background(), &plain, l); err != nil {
		t.Fatal(err)
	}
	l.Graph = recorded(t, f, f.Lib, f.Data)
	if err := Write(context.Background(), &checked, l); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Bytes(), checked.Bytes()) {
		t.Error("the tar written with a graph differs from the one without")
	}
	// The last path of the layer changes: the tar written must not end
	// as a whole one does.
	want, _ := l.Graph.Info(f.Lib)
	for _, tc := range []struct{ name, content string }{
		{"same size", "LIBRARY reading " + f.Data.String() + "/share/greeting"},
		{"other size", "library"},
	} {
		f.Write(t, f.Lib, "lib/libgreet.so", tc.content, 0o555)
		hash, size, err := store.NarHash(context.Background(), os.DirFS(f.StoreDir), f.Lib)
		if err != nil {
			t.Fatal(err)
		}
		var written bytes.Buffer
		err = Write(context.Background(), &written, l)
		wantErr := fmt.Sprintf("store path %s changed since its graph was recorded: its NAR is %s (%d bytes), the graph says %s (%d bytes)", f.Lib, hash, size, want.NarHash, want.NarSize)
		if err == nil || err.Error() != wantErr {
			t.Errorf("%s: error %v, want %q", tc.name, err, wantErr)
		}
		if bytes.HasSuffix(written.Bytes(), make([]byte, 1024)) {
			t.Errorf("%s: the refused layer's tar ends as a whole one", tc.name)
		}
		if _, _, err := Digest(context.Background(), l); err == nil {
			t.Errorf("%s: Digest took the changed path", tc.name)
		}
	}
}

// BenchmarkDigest: a layer's digest, with and without the NAR hash check
// of its store paths against a graph.
func BenchmarkDigest(b *testing.B) {
	f := storetest.New(b, "/nix/store")
	chunk := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	for i := range 64 {
		f.Write(b, f.Data, fmt.Sprintf("share/small/%02d", i), chunk[:i*97], 0o444)
	}
	f.Write(b, f.Data, "share/big", strings.Repeat(chunk, 256), 0o444) // 16 MiB
	l := Layer{StoreDir: "/nix/store", HostDir: f.StoreDir, Paths: []store.Path{f.Lib, f.Data}, Epoch: epoch}
	for _, check := range []bool{false, true} {
		if check {
			l.Graph = recorded(b, f, f.Lib, f.Data)
		}
		b.Run(fmt.Sprintf("check=%v", check), func(b *testing.B) {
			_, size, err := Digest(context.Background(), l)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			for b.Loop() {
				if _, _, err := Digest(context.Background(), l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
