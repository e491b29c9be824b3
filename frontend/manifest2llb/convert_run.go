package manifest2llb

import (
	"fmt"
	"strings"

	"github.com/storepack/storepack/frontend/manifest"
	"github.com/storepack/storepack/llb/layerllb"
)

// runs are the manifest's RUN commands as the customisation layer runs
// them: with the image's environment env (the base's included), named in
// the progress and in errors by the manifest's file and line.
func (c *conversion) runs(spec *manifest.Spec, env []string) []layerllb.Run {
	runs := make([]layerllb.Run, len(spec.Runs))
	for i, r := range spec.Runs {
		where := fmt.Sprintf("line %d", r.Location[0].Start.Line)
		if c.opt.SourceMap != nil {
			where = fmt.Sprintf("%s:%d", c.opt.SourceMap.Filename, r.Location[0].Start.Line)
		}
		runs[i] = layerllb.Run{
			Args:  r.Args,
			Env:   env,
			Name:  fmt.Sprintf("[%s] RUN %s", where, strings.Join(r.Args, " ")),
			Where: c.opt.SourceMap.Location(Ranges(r.Location)),
		}
	}
	return runs
}
