package manifest2llb

import (
	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/llb/layerllb"
	"github.com/storepack/storepack/store"
)

// customisation gathers the LINK and DIR entries; a relative LINK target
// resolves inside the first root.
func customisation(spec *manifest.Spec, firstRoot store.Path) layerllb.Customisation {
	var c layerllb.Customisation
	for _, d := range spec.Dirs {
		dir := layerllb.Dir{Path: d.Path, Mode: d.Mode}
		if d.Owner != nil {
			dir.Owner = &layerllb.Owner{UID: d.Owner.UID, GID: d.Owner.GID}
		}
		c.Dirs = append(c.Dirs, dir)
	}
	if a := spec.Account; a != nil {
		c.Dirs = append(c.Dirs, layerllb.Dir{Path: a.Home, Mode: 0o755, Owner: &layerllb.Owner{UID: a.Owner.UID, GID: a.Owner.GID}})
	}
	for _, l := range spec.Links {
		target := l.Target
		if target[0] != '/' {
			target = firstRoot.String() + "/" + target
		}
		c.Links = append(c.Links, layerllb.Link{Path: l.Path, Target: target})
	}
	return c
}
