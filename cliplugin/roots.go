package cliplugin

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
