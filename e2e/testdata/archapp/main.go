// Command archapp is the program of the multi-arch Nix test closures (e2e/testdata/multiarch.nix,
// built by hack/nix-multiarch.sh): it prints "arch=GOARCH" and then the content of the greeting
// file named by its argument, so a run shows which architecture's binary ran and which data
// path it read. Cross-compiled statically (CGO_ENABLED=0) for amd64, 386, arm (GOARM=7) and
// mips64le.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: archapp GREETING-FILE")
		os.Exit(2)
	}
	fmt.Printf("arch=%s\n", runtime.GOARCH)
	greeting, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "archapp: %v\n", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(greeting); err != nil {
		os.Exit(1)
	}
}
