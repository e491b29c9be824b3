// Command storepack-frontend is the BuildKit gateway frontend that builds
// `# syntax=storepack` manifests. Dockerfile.frontend packs it into an image.
//
// Run inside the builder with a command of package inbuilder as its first
// argument, it does what FileOps cannot (see frontend/inbuilder).
package main

import (
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/moby/buildkit/util/appcontext"
	"github.com/storepack/storepack/frontend"
	"github.com/storepack/storepack/frontend/inbuilder"
	"github.com/storepack/storepack/internal/memlimit"
)

func main() {
	memlimit.Apply()
	ctx := appcontext.Context()
	ok, err := inbuilder.Main(ctx, os.Args[1:])
	if !ok {
		// The image holds nothing but this binary; SQLite, which writes
		// the store database (STORE --with-db), needs a temporary directory.
		if err = os.MkdirAll(os.TempDir(), 0o1777); err == nil {
			err = grpcclient.RunFromEnvironment(ctx, frontend.Build)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "storepack-frontend:", err)
		os.Exit(1)
	}
}
