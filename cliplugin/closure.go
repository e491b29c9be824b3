package cliplugin

import (
	"context"
	"io"

	"github.com/spf13/pflag"

	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/hoststore"
)

// closureOptions are the flags that say where the graph of ROOTs comes from.
type closureOptions struct {
	from     string
	storeDir string
}

func (o *closureOptions) addFlags(flags *pflag.FlagSet) {
	flags.StringVar(&o.from, "from", string(hoststore.FromAuto), `Where the reference graph comes from: "auto", "nix", "db", "scan", or a graph file`)
	flags.StringVar(&o.storeDir, "store-dir", "", "Store directory of the roots (default: inferred from the roots)")
}

// load resolves the ROOT arguments and loads their closure graph as the
// flags say, for `graph` and for `plan` without a manifest. Warnings go to
// warn.
func (o closureOptions) load(ctx context.Context, args []string, warn io.Writer) (*store.Graph, error) {
	roots, storeDir, err := hoststore.ResolveRoots(args, o.storeDir)
	if err != nil {
		return nil, err
	}
	return hoststore.LoadClosure(ctx, roots, storeDir, hoststore.GraphSource(o.from), hoststore.Options{Warn: warn})
}

// fromHelp explains --from in the long help of the commands that take it.
const fromHelp = `ROOT is a store path, a path inside one (which means that store path), or a
symlink into the store such as nix-build's ./result (chains of symlinks are
followed). The store directory is --store-dir, else the one the roots are in.

--from says where the reference graph comes from:
  auto   the store's database (/nix/var/nix/db/db.sqlite for /nix/store,
         /var/guix/db/db.sqlite for /gnu/store) if it exists and holds every
         root, else a scan (the default)
  nix    the output of "nix path-info --json --recursive ROOT..."
  db     the store's database; an error if there is none
  scan   a scan of the store directory for the hashes of store paths, as Nix
         scans a build's outputs (sizes are measured)
  FILE   a graph file: nix path-info --json output (any form), registration
         records (closureInfo, exportReferencesGraph, nix-store --dump-db),
         nix-store --query --graph output or a store database; write ./scan
         for a file named like one of the words above
Only the closure of the roots is taken from the graph.`
