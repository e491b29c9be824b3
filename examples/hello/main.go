// Command hello is the application of storepack's built-in example: it
// prints the greeting stored in another store path, whose location is
// compiled in (go build -ldflags "-X main.dataPath=/nix/store/…-hello-data"),
// so the binary references that path as a Nix-built one would.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

var dataPath = "/nix/store/unset-hello-data"

func main() {
	msg, err := os.ReadFile(filepath.Join(dataPath, "share", "hello", "message"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
	fmt.Print(string(msg))
}
