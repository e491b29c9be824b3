package manifest2llb

import (
	"fmt"

	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/storedb"
)

// addStoreDB adds the store database of STORE --with-db to the
// customisation: Nix's or Guix's, as the store directory says, registering
// exactly the closure's paths with their references and the NAR hashes and
// sizes read from their files.
func addStoreDB(c *layerllb.Customisation, storeDir string, g *store.Graph, scans map[store.Path]store.HashScan) error {
	records := make([]storedb.Record, 0, g.Len())
	for _, p := range g.Paths() {
		scan := scans[p]
		if scan.NarHash == "" { // a Source that ignored StoreOptions
			return fmt.Errorf("STORE --with-db: no NAR hash of %s", p)
		}
		info, _ := g.Info(p)
		records = append(records, storedb.Record{Path: p, References: info.References, NarHash: scan.NarHash, NarSize: scan.NarSize})
	}
	files, err := storedb.Files(storeDir, records, storedb.DefaultRegistrationTime)
	if err != nil {
		return fmt.Errorf("STORE --with-db: %w", err)
	}
	for _, f := range files {
		if f.Mode.IsDir() {
			c.Dirs = append(c.Dirs, layerllb.Dir{Path: f.Path, Mode: uint32(f.Mode.Perm())})
		} else {
			c.Files = append(c.Files, layerllb.File{Path: f.Path, Mode: uint32(f.Mode.Perm()), Data: f.Data})
		}
	}
	return nil
}
