package manifest

import (
	"errors"
	"path"
)

// sbomCommand is SBOM --metadata=FILE: what an SBOM of the image states
// besides the store's graph.
type sbomCommand struct{ words }

func (c sbomCommand) apply(e *expansion, flags map[string]string, args []string) error {
	file, ok := flags["metadata"]
	if len(args) != 0 || !ok {
		return errors.New("SBOM takes only flags: SBOM --metadata=FILE, a JSON file in the build context")
	}
	if file == "" || path.IsAbs(file) {
		return errors.New("SBOM --metadata: want a file in the build context, a relative path")
	}
	e.spec.SBOM = SBOM{Metadata: file, Location: c.loc}
	return nil
}
