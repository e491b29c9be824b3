package manifest

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// The customisation instructions, which make the layer above the store
// paths.
type (
	// linkCommand is LINK PATH -> TARGET.
	linkCommand struct{ words }
	// dirCommand is DIR [--mode=MODE] [--owner=UID:GID] PATH...
	dirCommand struct{ words }
	// copyCommand is COPY [--chmod=MODE] [--chown=USER[:GROUP]] SRC... DEST.
	copyCommand struct{ words }
	// accountCommand is ACCOUNT [--uid=N] [--gid=N] [--home=DIR] [--shell=PATH] NAME.
	accountCommand struct{ words }
	// runCommand is RUN [--shell=PATH] COMMAND: BuildKit's RUN, and the
	// flag a Dockerfile's RUN lacks.
	runCommand struct {
		*instructions.RunCommand
		shell string // unexpanded; "": /bin/sh
	}
)

func (c linkCommand) apply(e *expansion, _ map[string]string, args []string) error {
	if len(args) != 3 || args[1] != "->" {
		return errors.New("LINK takes PATH -> TARGET")
	}
	if err := checkImagePath("LINK", args[0]); err != nil {
		return err
	}
	if args[2] == "" {
		return errors.New("LINK target is empty")
	}
	e.spec.Links = append(e.spec.Links, Link{Path: args[0], Target: args[2], Location: c.loc})
	return nil
}

func (c dirCommand) apply(e *expansion, flags map[string]string, args []string) error {
	if len(args) == 0 {
		return errors.New("DIR needs at least one path")
	}
	mode := uint64(0o755)
	if v, ok := flags["mode"]; ok {
		var err error
		if mode, err = strconv.ParseUint(v, 8, 32); err != nil || mode > 0o7777 {
			return fmt.Errorf("DIR --mode=%s: want an octal mode such as 1777", v)
		}
	}
	var owner *Owner
	if v, ok := flags["owner"]; ok {
		o, err := parseOwner(v)
		if err != nil {
			return fmt.Errorf("DIR --owner=%s: %w", v, err)
		}
		if mode&^0o777 != 0 {
			return fmt.Errorf("DIR --owner with --mode=%o: an owned directory takes no setuid, setgid or sticky bit", mode)
		}
		owner = &o
	}
	for _, a := range args {
		if err := checkImagePath("DIR", a); err != nil {
			return err
		}
		e.spec.Dirs = append(e.spec.Dirs, Dir{Path: a, Mode: uint32(mode), Owner: owner, Location: c.loc})
	}
	return nil
}

// apply reads COPY: its sources relative to the context's root.
func (c copyCommand) apply(e *expansion, flags map[string]string, args []string) error {
	if len(args) < 2 {
		return errors.New("COPY takes one or more sources in the build context and a destination: COPY SRC... DEST")
	}
	cp := Copy{Dest: args[len(args)-1], Location: c.loc}
	if dest := strings.TrimSuffix(cp.Dest, "/"); !path.IsAbs(cp.Dest) || path.Clean(dest) != dest && dest != "" {
		return fmt.Errorf("COPY destination %q: want an absolute, clean path", cp.Dest)
	}
	if len(args) > 2 && !strings.HasSuffix(cp.Dest, "/") {
		return fmt.Errorf("COPY of several sources: the destination %q must be a directory, ending with /", cp.Dest)
	}
	for _, src := range args[:len(args)-1] {
		if slices.Contains(strings.Split(src, "/"), "..") {
			return fmt.Errorf("COPY %s: a source outside the build context", src)
		}
		rel := strings.TrimPrefix(path.Clean("/"+src), "/")
		if rel == "" {
			rel = "."
		}
		cp.Sources = append(cp.Sources, rel)
	}
	if v, ok := flags["chmod"]; ok {
		mode, err := strconv.ParseUint(v, 8, 32)
		if err != nil || mode > 0o7777 {
			return fmt.Errorf("COPY --chmod=%s: want an octal mode such as 0644", v)
		}
		m := uint32(mode)
		cp.Mode = &m
	}
	if v, ok := flags["chown"]; ok {
		user, group, hasGroup := strings.Cut(v, ":")
		if !isUserOrGroup(user) || hasGroup && !isUserOrGroup(group) {
			return fmt.Errorf("COPY --chown=%s: want USER[:GROUP], each a number or a name", v)
		}
		cp.Chown = &Chown{User: user, Group: group}
	}
	e.spec.Copies = append(e.spec.Copies, cp)
	return nil
}

// apply reads ACCOUNT, whose defaults are useradd's.
func (c accountCommand) apply(e *expansion, flags map[string]string, args []string) error {
	if len(args) != 1 {
		return errors.New("ACCOUNT takes exactly one argument: the user's name, such as app")
	}
	a := &Account{Name: args[0], Owner: Owner{DefaultAccountID, DefaultAccountID}, Shell: DefaultAccountShell, Location: c.loc}
	if !isAccountName(a.Name) || a.Name == "root" || a.Name == "nobody" {
		return fmt.Errorf("ACCOUNT %q: want a user name other than root and nobody: a lower-case letter or _, then letters, digits, _ or -, at most 32", a.Name)
	}
	for _, f := range []struct {
		flag string
		id   *int
	}{{"uid", &a.Owner.UID}, {"gid", &a.Owner.GID}} {
		flag, id := f.flag, f.id
		v, ok := flags[flag]
		if !ok {
			continue
		}
		n, err := parseID(v)
		if err != nil || n == 0 || n == nobodyID {
			return fmt.Errorf("ACCOUNT --%s=%s: want a number from 1 to %d other than %d (nobody)", flag, v, maxID, nobodyID)
		}
		*id = n
	}
	if _, ok := flags["gid"]; !ok {
		a.Owner.GID = a.Owner.UID // a group of its own, as useradd makes
	}
	a.Home = "/home/" + a.Name
	if v, ok := flags["home"]; ok {
		if err := checkImagePath("ACCOUNT --home", v); err != nil {
			return err
		}
		a.Home = v
	}
	if v, ok := flags["shell"]; ok {
		if !path.IsAbs(v) || strings.ContainsAny(v, ":\n") {
			return fmt.Errorf("ACCOUNT --shell=%s: want an absolute path", v)
		}
		a.Shell = v
	}
	e.spec.Account = a
	return nil
}

// parseRun parses RUN [--shell=PATH] COMMAND, shell or exec form, with
// BuildKit's parser once the flag, which a Dockerfile's RUN lacks, is off.
func parseRun(node *parser.Node, _ *shell.Lex) (command, error) {
	var sh string
	for _, f := range node.Flags {
		v, ok := strings.CutPrefix(f, "--shell=")
		if !ok || sh != "" {
			name, _, _ := strings.Cut(f, "=")
			return nil, fmt.Errorf("unknown flag for RUN: %s (RUN takes --shell=PATH once)", name)
		}
		sh = v
	}
	plain := *node
	plain.Flags = nil
	cmd, err := parseDockerfile(&plain, nil)
	if err != nil {
		return nil, err
	}
	run, ok := cmd.(*instructions.RunCommand)
	if !ok || len(run.CmdLine) == 0 {
		return nil, errors.New("RUN needs a command")
	}
	return runCommand{RunCommand: run, shell: sh}, nil
}

// run expands the shell (build arguments and root references, such as
// --shell=${BASH}/bin/bash) and, as in ENTRYPOINT, only root references in
// the command, which Expand does last: the rest is the shell's.
func (e *expansion) run(c runCommand) error {
	sh := "/bin/sh"
	if c.shell != "" {
		if !c.PrependShell {
			return errors.New("RUN --shell applies to the shell form, not to a JSON command")
		}
		var err error
		if sh, err = e.word(c.shell); err != nil {
			return err
		}
		if !path.IsAbs(sh) {
			return fmt.Errorf("RUN --shell=%s: want an absolute path", sh)
		}
	}
	e.spec.Runs = append(e.spec.Runs, Run{Args: shellForm(c.ShellDependantCmdLine, sh), Location: Location(c.Location())})
	return nil
}

func isAccountName(s string) bool {
	for i, c := range s {
		lower := c == '_' || c >= 'a' && c <= 'z'
		if !lower && (i == 0 || c != '-' && (c < '0' || c > '9')) {
			return false
		}
	}
	return s != "" && len(s) <= 32
}

// User and group IDs: nobody's, and the largest Linux takes (2^31 - 1, as
// shadow-utils allows).
const (
	nobodyID = 65534
	maxID    = 1<<31 - 1
)

func parseID(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	return int(n), err
}

// isUserOrGroup reports whether s is a number or a name that /etc/passwd
// or /etc/group may hold.
func isUserOrGroup(s string) bool {
	_, err := parseID(s)
	return err == nil || isAccountName(s)
}

// parseOwner reads UID:GID, both numbers.
func parseOwner(s string) (Owner, error) {
	u, g, ok := strings.Cut(s, ":")
	uid, uerr := parseID(u)
	gid, gerr := parseID(g)
	if !ok || uerr != nil || gerr != nil {
		return Owner{}, errors.New("want UID:GID, two numbers")
	}
	return Owner{uid, gid}, nil
}

// checkImagePath accepts absolute paths inside the image other than "/".
func checkImagePath(instr, s string) error {
	if !path.IsAbs(s) || path.Clean(s) != s || s == "/" {
		return fmt.Errorf("%s %q: want an absolute, clean path below /", instr, s)
	}
	return nil
}
