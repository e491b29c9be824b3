//go:build !unix

package podman

import (
	"os"
	"os/exec"

	"github.com/docker/cli/cli"
)

// Exec runs podman with args on this terminal and returns its exit code
// as a status error (where no process can replace this one).
func (p *Podman) Exec(args []string) error {
	c := exec.Command(p.path, args...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return cli.StatusError{StatusCode: ee.ExitCode()}
		}
		return cli.StatusError{Status: err.Error(), StatusCode: 125}
	}
	return nil
}
