// Package podman loads images into Podman and runs them, through the
// podman command rather than Podman's Docker-compatible API: that needs a
// service the user must start, and Podman 4.3's answers lose container
// exit codes there (`docker run` of `exit 3` exits 0, a missing command 1,
// not 127); see docs/podman.md.
package podman

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/moby/moby/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Podman is the podman command.
type Podman struct {
	path string
}

// Find finds podman on PATH.
func Find() (*Podman, error) {
	path, err := exec.LookPath("podman")
	if err != nil {
		return nil, errors.New("podman is not on PATH: install Podman (Debian, Ubuntu: apt-get install podman uidmap slirp4netns)")
	}
	return &Podman{path: path}, nil
}

// Path is the podman command's path.
func (p *Podman) Path() string { return p.path }

// output runs podman with args and stdin, and returns its standard output;
// an error carries the last line podman wrote to its standard error.
func (p *Podman) output(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	c := exec.CommandContext(ctx, p.path, args...)
	var stdout, stderr bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &stdout, &stderr
	if err := c.Run(); err != nil {
		if msg := lastLine(stderr.String()); msg != "" {
			return nil, fmt.Errorf("podman %s: %s", args[0], msg)
		}
		return nil, fmt.Errorf("podman %s: %w", args[0], err)
	}
	return stdout.Bytes(), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimPrefix(strings.TrimSpace(lines[len(lines)-1]), "Error: ")
}

// Host is what Podman says of the machine its containers run on.
type Host struct {
	Platform ocispecs.Platform
	Kernel   string
}

// Host asks Podman for its platform and kernel.
func (p *Podman) Host(ctx context.Context) (Host, error) {
	out, err := p.output(ctx, nil, "info", "--format", "json")
	if err != nil {
		return Host{}, err
	}
	var info struct {
		Host struct {
			OS, Arch, Kernel string
		}
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return Host{}, fmt.Errorf("podman info: %w", err)
	}
	return Host{Platform: platforms.Normalize(ocispecs.Platform{OS: info.Host.OS, Architecture: info.Host.Arch}), Kernel: info.Host.Kernel}, nil
}

// Image is what Podman holds of an image.
type Image struct {
	ID       string
	Labels   map[string]string
	Platform ocispecs.Platform
}

// Image inspects ref; an error that is cerrdefs.ErrNotFound when Podman
// holds no image of that name.
func (p *Podman) Image(ctx context.Context, ref string) (Image, error) {
	if err := exec.CommandContext(ctx, p.path, "image", "exists", ref).Run(); err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() == 1 {
			return Image{}, fmt.Errorf("podman holds no image %s: %w", ref, cerrdefs.ErrNotFound)
		}
		return Image{}, fmt.Errorf("podman image exists: %w", err)
	}
	out, err := p.output(ctx, nil, "image", "inspect", "--format", "json", ref)
	if err != nil {
		return Image{}, err
	}
	var list []struct {
		ID           string `json:"Id"`
		Architecture string
		Os           string
		Config       struct{ Labels map[string]string }
	}
	if err := json.Unmarshal(out, &list); err != nil || len(list) != 1 {
		return Image{}, fmt.Errorf("podman image inspect %s: unexpected answer", ref)
	}
	img := list[0]
	return Image{ID: "sha256:" + img.ID, Labels: img.Config.Labels, Platform: ocispecs.Platform{OS: img.Os, Architecture: img.Architecture}}, nil
}

// RemoveImage removes the image id unless a container or another name
// uses it, as the docker engine's prune of a replaced image does.
func (p *Podman) RemoveImage(ctx context.Context, id string) error {
	_, err := p.output(ctx, nil, "image", "rm", strings.TrimPrefix(id, "sha256:"))
	return err
}

// ImageLoad loads a docker archive into Podman (`podman load`), answering
// as the docker engine does: a stream of JSON messages, here the names
// Podman loaded. So engineload loads into Podman as into the engine.
func (p *Podman) ImageLoad(ctx context.Context, archive io.Reader, _ ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	out, err := p.output(ctx, archive, "load", "--quiet")
	if err != nil {
		return nil, err
	}
	var msgs bytes.Buffer
	enc := json.NewEncoder(&msgs)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if err := enc.Encode(map[string]string{"stream": line + "\n"}); err != nil {
				return nil, err
			}
		}
	}
	return io.NopCloser(&msgs), nil
}
