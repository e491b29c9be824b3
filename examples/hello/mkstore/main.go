// Command mkstore lays out storepack's built-in example as a store inside a
// build context, without Nix: two store paths (the hello binary and the data
// it references by path), a `result` symlink to the application, a
// reference graph in closureInfo's registration format and a manifest.
//
//	go run ./examples/hello/mkstore DIR
//
// gives DIR/context (the build context: nix/store/…, result, graph) and
// DIR/app.storepack. Hashes are derived from the contents, so the same
// sources give the same store paths.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const storeDir = "/nix/store"

const message = "Hello from a storepack image!\n"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkstore DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mkstore:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	ctx := filepath.Join(dir, "context")
	data := storePath("hello-data", message)
	if err := writeFile(ctx, data+"/share/hello/message", message, 0o444); err != nil {
		return err
	}
	app := storePath("hello-1.0", message+data)
	bin := filepath.Join(ctx, app, "bin", "hello")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	build := exec.Command("go", "build", "-trimpath", "-o", bin,
		"-ldflags", "-s -w -X main.dataPath="+data, "github.com/storepack/storepack/examples/hello")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	// Make the tree look like a store: read-only files and directories.
	for _, p := range []string{data, app} {
		if err := readOnly(filepath.Join(ctx, p)); err != nil {
			return err
		}
	}
	if err := os.Symlink(app, filepath.Join(ctx, "result")); err != nil {
		return err
	}
	graph := registration(data, nil) + registration(app, []string{data})
	if err := writeFile(ctx, "graph", graph, 0o644); err != nil {
		return err
	}
	manifest := `# syntax=storepack
# The built-in example: ./result is the application, graph its closure.
CLOSURE ./result
GRAPH graph
LINK /bin -> bin
ENTRYPOINT ["/bin/hello"]
`
	return os.WriteFile(filepath.Join(dir, "app.storepack"), []byte(manifest), 0o644)
}

// storePath names a store path after a digest of its inputs, spelled in the
// store's hash alphabet.
func storePath(name, inputs string) string {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	sum := sha256.Sum256([]byte(name + "\x00" + inputs))
	var h strings.Builder
	for _, b := range sum[:32] {
		h.WriteByte(alphabet[b%32])
	}
	return storeDir + "/" + h.String() + "-" + name
}

// registration is one closureInfo registration record without hash and size.
func registration(path string, refs []string) string {
	return fmt.Sprintf("%s\n\n%d\n%s", path, len(refs), strings.Join(append(refs, ""), "\n"))
}

func writeFile(root, name, content string, mode os.FileMode) error {
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), mode)
}

func readOnly(root string) error {
	return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir(), fi.Mode()&0o111 != 0:
			return os.Chmod(p, 0o555)
		case fi.Mode().IsRegular():
			return os.Chmod(p, 0o444)
		}
		return nil
	})
}
