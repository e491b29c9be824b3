//go:build unix

package podman

import (
	"os"
	"syscall"

	"github.com/storepack/storepack/cliplugin/rundir"
)

// Exec replaces this process with podman and args, so that podman gets
// the terminal, the signals and the exit code unchanged, as docker run has
// them.
func (p *Podman) Exec(args []string) error {
	// Nothing would remove this run's temporary directory after the exec.
	rundir.Leave()
	return syscall.Exec(p.path, append([]string{"podman"}, args...), os.Environ())
}
