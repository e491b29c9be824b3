// Command storepack-frontend is the BuildKit gateway frontend that builds
// `# syntax=storepack` manifests. Dockerfile.frontend packs it into an image.
//
// Run inside the builder with the argument "write-stage" it writes the LINK
// and DIR entries of an image instead, on builders whose FileOps cannot.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/moby/buildkit/util/appcontext"
	"github.com/storepack/storepack/frontend"
	"github.com/storepack/storepack/llb"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == llb.HelperCommand {
		if err := writeStage(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "storepack-frontend:", err)
			os.Exit(1)
		}
		return
	}
	if err := grpcclient.RunFromEnvironment(appcontext.Context(), frontend.Build); err != nil {
		fmt.Fprintln(os.Stderr, "storepack-frontend:", err)
		os.Exit(1)
	}
}

func writeStage(dir, spec string) error {
	var c llb.Customisation
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		return err
	}
	return llb.WriteStage(dir, c)
}
