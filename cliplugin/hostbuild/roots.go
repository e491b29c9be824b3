package hostbuild

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/storepack/storepack/store"
)

// RootsHelp says what an image of bare roots holds, for --help.
const RootsHelp = `Without a manifest, ROOTs (store paths, paths inside them, or symlinks into
the store such as ./result) make the image that "nix build" output suggests:
the closure of the roots, /bin linked to the first root's bin directory when
it has one, PATH=/bin, and the entrypoint /bin/NAME when that directory holds
exactly one executable NAME (otherwise no entrypoint, which the build says).`

// RootsManifest is the manifest of an image of bare roots, as RootsHelp
// says, and a note when it has no entrypoint. storeRoot holds the store on
// the host ("": the host's root).
func RootsManifest(roots []store.Path, storeRoot string) (src []byte, note string, err error) {
	for _, r := range roots {
		if _, err := os.Lstat(filepath.Join(storeRoot, r.String())); err != nil {
			if os.IsNotExist(err) {
				return nil, "", fmt.Errorf("root %s is not in %s", r, r.Dir)
			}
			return nil, "", fmt.Errorf("root %s: %w", r, err)
		}
	}
	first := roots[0]
	lines := []string{"# syntax=storepack", "STORE " + first.Dir}
	var closure []string
	for _, r := range roots {
		closure = append(closure, r.String())
	}
	lines = append(lines, "CLOSURE "+strings.Join(closure, " "))
	bin := filepath.Join(storeRoot, first.String(), "bin")
	entries, err := os.ReadDir(bin)
	switch {
	case os.IsNotExist(err):
		return []byte(strings.Join(lines, "\n") + "\n"), fmt.Sprintf("%s has no bin directory: the image has no entrypoint", first), nil
	case err != nil:
		return nil, "", err
	}
	lines = append(lines, "LINK /bin -> bin", "ENV PATH=/bin")
	var executables []string
	for _, e := range entries {
		fi, err := os.Stat(filepath.Join(bin, e.Name())) // a symlink counts as what it points to
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			executables = append(executables, e.Name())
		}
	}
	if len(executables) != 1 {
		return []byte(strings.Join(lines, "\n") + "\n"), fmt.Sprintf("%s/bin holds %d executables: the image has no entrypoint (give one with docker run)", first, len(executables)), nil
	}
	entrypoint, err := json.Marshal([]string{"/bin/" + executables[0]})
	if err != nil {
		return nil, "", err
	}
	lines = append(lines, "ENTRYPOINT "+string(entrypoint))
	return []byte(strings.Join(lines, "\n") + "\n"), "", nil
}
