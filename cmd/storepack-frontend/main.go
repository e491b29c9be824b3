// Command storepack-frontend is the BuildKit gateway frontend that builds
// `# syntax=storepack` manifests. Dockerfile.frontend packs it into an image.
//
// Run inside the builder it also does what FileOps cannot: with the
// argument "write-stage" it writes the LINK and DIR entries of an image on
// older builders, with "find-hashes" it scans store paths for references
// when a manifest has no GRAPH, and with "check-store" it walks the store
// paths of a GRAPH's closure for what an image must not hold.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/moby/buildkit/util/appcontext"
	"github.com/storepack/storepack/frontend"
	"github.com/storepack/storepack/layerllb"
)

func main() {
	ctx := appcontext.Context()
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == layerllb.HelperCommand:
		err = writeStage(os.Args[2], os.Args[3])
	case len(os.Args) == 5 && (os.Args[1] == frontend.FindHashesCommand || os.Args[1] == frontend.CheckStoreCommand):
		err = frontend.RunStoreScan(ctx, os.Args[1], os.Args[2], os.Args[3], os.Args[4])
	default:
		err = grpcclient.RunFromEnvironment(ctx, frontend.Build)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "storepack-frontend:", err)
		os.Exit(1)
	}
}

func writeStage(dir, spec string) error {
	var c layerllb.Customisation
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		return err
	}
	return layerllb.WriteStage(dir, c)
}
