package manifest

import (
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// command is one parsed instruction, not yet expanded: a BuildKit command
// for a Dockerfile instruction, else a type of this package's families
// (store.go, custom.go, image.go).
type command interface {
	Location() []parser.Range
}

// parseFunc makes the command of a node.
type parseFunc func(node *parser.Node, lex *shell.Lex) (command, error)

// registration is an instruction a manifest may use.
type registration struct {
	name  string // lower case
	parse parseFunc
	once  bool // may appear only once
}

// registry is where an instruction is registered: its name, how it parses
// (with the flags, for one of storepack's own syntax) and whether it may
// repeat; the rest is its family's file. Its order is that of Instructions,
// whose first name wins between two as close to a typo.
var registry = []registration{
	{"account", lexAs[accountCommand]("uid", "gid", "home", "shell"), true},
	{"arg", parseDockerfile, false},
	{"closure", lexAs[closureCommand]("platform", "name"), false},
	{"cmd", parseDockerfile, false},
	{"copy", lexAs[copyCommand]("chmod", "chown"), false},
	{"dir", lexAs[dirCommand]("mode", "owner"), false},
	{"entrypoint", parseDockerfile, false},
	{"env", parseDockerfile, false},
	{"expose", parseDockerfile, false},
	{"from", lexAs[fromCommand]("platform"), false},
	{"run", parseRun, false},
	{"sbom", lexAs[sbomCommand]("metadata"), true},
	{"graph", lexAs[graphCommand]("platform"), false},
	{"label", parseDockerfile, false},
	{"layers", lexAs[layersCommand]("max", "strategy", "previous"), true},
	{"link", lexAs[linkCommand](), false},
	{"stopsignal", parseDockerfile, false},
	{"store", lexAs[storeCommand]("with-db"), true},
	{"user", parseDockerfile, false},
	{"workdir", parseDockerfile, false},
}

// Instructions lists every instruction a manifest may use.
var Instructions = registeredNames()

func registeredNames() []string {
	var names []string
	for _, r := range registry {
		names = append(names, r.name)
	}
	return names
}

// dispatch expands cmd into e by its type: a command of storepack's own
// syntax by its apply method, RUN's and BuildKit's by their case here.
func (e *expansion) dispatch(cmd command) error {
	switch c := cmd.(type) {
	case wordsCommand:
		flags, args, err := c.split(e)
		if err != nil {
			return err
		}
		return c.apply(e, flags, args)
	case runCommand:
		return e.run(c)
	case *instructions.ArgCommand:
		return e.arg(c)
	case *instructions.EnvCommand:
		return e.pairs(c.Env, e.env)
	case *instructions.LabelCommand:
		return e.pairs(c.Labels, e.label)
	case *instructions.EntrypointCommand:
		return e.entrypoint(c)
	case *instructions.CmdCommand:
		e.spec.Image.Cmd = shellForm(c.ShellDependantCmdLine, "/bin/sh")
		return nil
	case *instructions.WorkdirCommand:
		return e.workdir(c)
	case *instructions.UserCommand:
		return e.setWord(&e.spec.Image.User, c.User)
	case *instructions.ExposeCommand:
		return e.expose(c)
	case *instructions.StopSignalCommand:
		return e.setWord(&e.spec.Image.StopSignal, c.Signal)
	}
	return fmt.Errorf("unsupported command %T", cmd)
}
