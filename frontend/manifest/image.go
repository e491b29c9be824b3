package manifest

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// The image instructions: FROM, the base image, and the Dockerfile
// instructions, whose commands are BuildKit's: ARG, and ENTRYPOINT, CMD,
// ENV, WORKDIR, USER, LABEL, EXPOSE and STOPSIGNAL, which set the config.

// fromCommand is FROM [--platform=P] IMAGE: not a Dockerfile's FROM, which
// starts a stage, but a base image.
type fromCommand struct{ words }

// parseDockerfile parses a Dockerfile instruction with BuildKit.
func parseDockerfile(node *parser.Node, _ *shell.Lex) (command, error) {
	parsed, err := instructions.ParseInstruction(node)
	if err != nil {
		return nil, err
	}
	cmd, ok := parsed.(command)
	if !ok {
		return nil, fmt.Errorf("unsupported instruction %T", parsed)
	}
	return cmd, nil
}

func (c fromCommand) apply(e *expansion, flags map[string]string, args []string) error {
	if len(args) != 1 {
		return errors.New("FROM takes exactly one argument: the base image, such as busybox:1.36")
	}
	if _, err := reference.ParseNormalizedNamed(args[0]); err != nil {
		return fmt.Errorf("FROM %s: not an image reference: %w", args[0], err)
	}
	b := Base{Platform: flags["platform"], Image: args[0], Location: c.loc}
	if b.Platform != "" {
		p, err := platforms.Parse(b.Platform)
		if err != nil {
			return fmt.Errorf("FROM --platform=%s: %w", b.Platform, err)
		}
		b.Platform = platforms.Format(platforms.Normalize(p))
	}
	for _, other := range e.spec.Bases {
		if other.Platform == b.Platform {
			what := "every platform"
			if b.Platform != "" {
				what = b.Platform
			}
			return fmt.Errorf("FROM: a second base image for %s (the first is at line %d)", what, other.Location[0].Start.Line)
		}
	}
	e.spec.Bases = append(e.spec.Bases, b)
	return nil
}

func (e *expansion) arg(c *instructions.ArgCommand) error {
	// As in a Dockerfile, every name and default of the line is expanded
	// before any of them is defined.
	args := make([]instructions.KeyValuePairOptional, len(c.Args))
	for j, a := range c.Args {
		var err error
		if args[j].Key, err = e.word(a.Key); err != nil {
			return err
		}
		if a.Value != nil {
			v, err := e.word(*a.Value)
			if err != nil {
				return err
			}
			args[j].Value = &v
		}
	}
	for _, a := range args {
		v, given := e.opt.BuildArgs[a.Key]
		if !given && a.Value != nil {
			v, given = *a.Value, true
		}
		if given {
			e.vars.set(a.Key, v)
		}
	}
	return nil
}

func (e *expansion) entrypoint(c *instructions.EntrypointCommand) error {
	e.spec.Image.Entrypoint = shellForm(c.ShellDependantCmdLine, "/bin/sh")
	// As in a Dockerfile, a new ENTRYPOINT resets a CMD given before it.
	e.spec.Image.Cmd = nil
	return nil
}

// env sets an ENV variable, for the instructions after it and the config.
func (e *expansion) env(key, value string) {
	e.vars.set(key, value)
	e.spec.Image.Env = setEnv(e.spec.Image.Env, key, value)
}

func setEnv(env []string, key, value string) []string {
	kv := key + "=" + value
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

func (e *expansion) workdir(c *instructions.WorkdirCommand) error {
	dir, err := e.word(c.Path)
	if err != nil {
		return err
	}
	img := &e.spec.Image
	if !path.IsAbs(dir) {
		dir = path.Join("/", img.WorkingDir, dir)
	}
	img.WorkingDir = path.Clean(dir)
	return nil
}

// setWord sets a config field to the expanded word w.
func (e *expansion) setWord(field *string, w string) error {
	v, err := e.word(w)
	if err != nil {
		return err
	}
	*field = v
	return nil
}

func (e *expansion) label(key, value string) {
	if e.spec.Image.Labels == nil {
		e.spec.Image.Labels = map[string]string{}
	}
	e.spec.Image.Labels[key] = value
}

func (e *expansion) expose(c *instructions.ExposeCommand) error {
	img := &e.spec.Image
	for _, word := range c.Ports {
		ports, err := e.exposedPorts(word)
		if err != nil {
			return err
		}
		if img.ExposedPorts == nil {
			img.ExposedPorts = map[string]struct{}{}
		}
		for _, port := range ports {
			img.ExposedPorts[port] = struct{}{}
		}
	}
	return nil
}

// exposedPorts expands one EXPOSE word such as "8080", "53/udp" or
// "8000-8002/tcp" into "port/proto" entries.
func (e *expansion) exposedPorts(word string) ([]string, error) {
	word, err := e.word(word)
	if err != nil {
		return nil, err
	}
	spec, proto, _ := strings.Cut(word, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("EXPOSE %s: protocol must be tcp, udp or sctp", word)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return nil, fmt.Errorf("EXPOSE %s: want a port or a range of ports such as 8000-8002", word)
	}
	var ports []string
	for n := first; n <= last; n++ {
		ports = append(ports, fmt.Sprintf("%d/%s", n, proto))
	}
	return ports, nil
}
