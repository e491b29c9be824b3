// Package manifest parses storepack manifests: Dockerfile-syntax files whose
// first line is "# syntax=storepack". Lexing (continuations, comments, JSON
// and shell forms, --flags, the escape directive) is BuildKit's Dockerfile
// parser, so positions and quirks match what Dockerfile users know. The
// Dockerfile instructions storepack shares (ENTRYPOINT, ENV, …) are parsed
// by BuildKit's instructions package; the store instructions are parsed here.
//
// Parse lexes a manifest once and checks what needs no variables; Expand
// evaluates it with build arguments and one platform's root variables into
// a Spec, as often as there are platforms, without changing the Manifest.
//
// Errors carry the offending line as a parser.LocationError, which the
// frontend turns into a source-mapped error in `docker build` output.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"
)

// step is one instruction and the lines it came from.
type step struct {
	instr instruction
	loc   Location
}

// instruction is one parsed instruction, not yet expanded.
type instruction interface {
	// expand evaluates the instruction into e; loc is its lines.
	expand(e *expansion, loc Location) error
}

// Instructions lists every instruction a manifest may use.
var Instructions = []string{
	"account", "arg", "closure", "cmd", "copy", "dir", "entrypoint", "env", "expose", "from", "run",
	"graph", "label", "layers", "link", "stopsignal", "store", "user",
	"workdir",
}

// storeFlags are the store instructions and the flags each one takes.
var storeFlags = map[string][]string{
	"store":   {"with-db"},
	"from":    {"platform"},
	"closure": {"platform", "name"},
	"graph":   {"platform"},
	"layers":  {"max", "strategy", "previous"},
	"link":    nil,
	"dir":     {"mode", "owner"},
	"account": {"uid", "gid", "home", "shell"},
	"copy":    {"chmod", "chown"},
}

// boolFlags are the flags that may stand without a value, meaning true.
var boolFlags = map[string]bool{"with-db": true}

// Parse parses manifest source. It refuses what no variable can make valid:
// an unknown instruction or flag, a repeated STORE or LAYERS, a Dockerfile
// instruction BuildKit refuses, and a manifest without CLOSURE.
func Parse(src []byte) (*Manifest, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	m := &Manifest{escape: res.EscapeToken}
	lex := shell.NewLex(res.EscapeToken)
	seen := map[string]bool{}
	for _, node := range res.AST.Children {
		instr, err := parseInstruction(node, lex, seen)
		if err != nil {
			return nil, parser.WithLocation(err, node.Location())
		}
		m.steps = append(m.steps, step{instr: instr, loc: Location(node.Location())})
	}
	if !seen["closure"] {
		return nil, errors.New("manifest has no CLOSURE instruction: name at least one root")
	}
	return m, nil
}

// parseInstruction parses one node; seen records the store instructions
// met so far.
func parseInstruction(node *parser.Node, lex *shell.Lex, seen map[string]bool) (instruction, error) {
	name := strings.ToLower(node.Value)
	if _, ok := storeFlags[name]; ok {
		if seen[name] && (name == "store" || name == "layers" || name == "account") {
			return nil, fmt.Errorf("%s may appear only once", strings.ToUpper(name))
		}
		seen[name] = true
		s := storeInstruction{name: name, text: argumentText(node), nflags: len(node.Flags)}
		if err := s.checkStaticFlags(lex); err != nil {
			return nil, err
		}
		return s, nil
	}
	switch name {
	case "run":
		return parseRun(node)
	case "arg", "cmd", "entrypoint", "env", "expose", "label", "stopsignal", "user", "workdir":
		cmd, err := instructions.ParseInstruction(node)
		if err != nil {
			return nil, err
		}
		return imageInstruction(cmd)
	}
	return nil, suggest.WrapError(fmt.Errorf("unknown instruction: %s", node.Value), name, Instructions, false)
}

// parseRun parses RUN [--shell=PATH] COMMAND, shell or exec form, with
// BuildKit's parser once the flag, which a Dockerfile's RUN lacks, is off.
func parseRun(node *parser.Node) (instruction, error) {
	var r runInstruction
	for _, f := range node.Flags {
		v, ok := strings.CutPrefix(f, "--shell=")
		if !ok || r.shell != "" {
			name, _, _ := strings.Cut(f, "=")
			return nil, fmt.Errorf("unknown flag for RUN: %s (RUN takes --shell=PATH once)", name)
		}
		r.shell = v
	}
	plain := *node
	plain.Flags = nil
	cmd, err := instructions.ParseInstruction(&plain)
	if err != nil {
		return nil, err
	}
	run, ok := cmd.(*instructions.RunCommand)
	if !ok || len(run.CmdLine) == 0 {
		return nil, errors.New("RUN needs a command")
	}
	r.cmd = run.ShellDependantCmdLine
	return r, nil
}

type runInstruction struct {
	shell string // unexpanded; "": /bin/sh
	cmd   instructions.ShellDependantCmdLine
}

// expand expands the shell (build arguments and root references, such as
// --shell=${BASH}/bin/bash) and, as in ENTRYPOINT, only root references in
// the command: the rest is the shell's.
func (i runInstruction) expand(e *expansion, loc Location) error {
	args := slices.Clone(i.cmd.CmdLine)
	if i.cmd.PrependShell {
		shell := "/bin/sh"
		if i.shell != "" {
			var err error
			if shell, err = e.word(i.shell); err != nil {
				return err
			}
			if !path.IsAbs(shell) {
				return fmt.Errorf("RUN --shell=%s: want an absolute path", shell)
			}
		}
		args = []string{shell, "-c", strings.Join(args, " ")}
	} else if i.shell != "" {
		return errors.New("RUN --shell applies to the shell form, not to a JSON command")
	}
	e.spec.Runs = append(e.spec.Runs, Run{Args: args, Location: loc})
	return nil
}

// argumentText is a store instruction's text after its name: BuildKit's
// parser keeps only the original line for instructions it does not know.
func argumentText(node *parser.Node) string {
	line := strings.TrimSpace(node.Original)
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[i+1:]
	}
	return ""
}

// imageInstruction keeps what Expand needs of a BuildKit command.
func imageInstruction(cmd any) (instruction, error) {
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		return argInstruction{args: c.Args}, nil
	case *instructions.EnvCommand:
		return envInstruction{env: c.Env}, nil
	case *instructions.EntrypointCommand:
		return entrypointInstruction{cmd: c.ShellDependantCmdLine}, nil
	case *instructions.CmdCommand:
		return cmdInstruction{cmd: c.ShellDependantCmdLine}, nil
	case *instructions.WorkdirCommand:
		return workdirInstruction{path: c.Path}, nil
	case *instructions.UserCommand:
		return userInstruction{user: c.User}, nil
	case *instructions.LabelCommand:
		return labelInstruction{labels: c.Labels}, nil
	case *instructions.ExposeCommand:
		return exposeInstruction{ports: c.Ports}, nil
	case *instructions.StopSignalCommand:
		return stopSignalInstruction{signal: c.Signal}, nil
	}
	return nil, fmt.Errorf("unsupported instruction %T", cmd)
}

// storeInstruction is STORE, CLOSURE, GRAPH, LAYERS, LINK or DIR.
type storeInstruction struct {
	name   string // lower case
	text   string // after the name, unexpanded
	nflags int    // how many of its leading words BuildKit took for --flags
}

// checkStaticFlags checks the flags when no variable can change them: when
// the lexer has ended them before the text's first '$'. Expand checks the
// others once they are expanded.
func (s storeInstruction) checkStaticFlags(lex *shell.Lex) error {
	words := staticWords(lex, s.text)
	if len(words) < s.nflags {
		return nil
	}
	flags, _, err := splitFlags(words[:s.nflags], s.nflags)
	if err != nil {
		return err
	}
	return checkFlags(s.name, flags)
}

// staticWords is the leading words of text that no variable's value can
// change: those the lexer has ended before the first '$'.
func staticWords(lex *shell.Lex, text string) []string {
	var none vars
	head, _, dollar := strings.Cut(text, "$")
	words, err := lex.ProcessWords(head, &none)
	if err != nil || !dollar {
		return words
	}
	// The last word has ended only if one more character starts a new one;
	// else the variable may continue it.
	if more, err := lex.ProcessWords(head+"x", &none); err != nil || len(more) != len(words)+1 {
		words = words[:max(len(words)-1, 0)]
	}
	return words
}

// splitFlags takes the first n words, those BuildKit's parser counted as
// --flags, as flags and returns them and the arguments after them.
func splitFlags(words []string, n int) (map[string]string, []string, error) {
	if len(words) < n {
		return nil, nil, errors.New("flags expand to nothing")
	}
	flags := map[string]string{}
	for _, w := range words[:n] {
		k, v, ok := strings.Cut(strings.TrimPrefix(w, "--"), "=")
		if !ok && boolFlags[k] {
			v, ok = "true", true
		}
		if !ok {
			return nil, nil, fmt.Errorf("flag %s needs a value (--%s=VALUE)", w, k)
		}
		if _, dup := flags[k]; dup {
			return nil, nil, fmt.Errorf("flag --%s given twice", k)
		}
		flags[k] = v
	}
	return flags, words[n:], nil
}

func checkFlags(instr string, flags map[string]string) error {
	for k := range flags {
		if !slices.Contains(storeFlags[instr], k) {
			return fmt.Errorf("unknown flag for %s: --%s", strings.ToUpper(instr), k)
		}
	}
	return nil
}

func (s storeInstruction) expand(e *expansion, loc Location) error {
	words, err := e.lex.ProcessWords(s.text, &e.vars)
	if err != nil {
		return err
	}
	flags, args, err := splitFlags(words, s.nflags)
	if err != nil {
		return err
	}
	if err := checkFlags(s.name, flags); err != nil {
		return err
	}
	spec := e.spec
	switch s.name {
	case "store":
		if len(args) != 1 {
			return errors.New("STORE takes exactly one argument: the store directory, such as /nix/store")
		}
		if v, ok := flags["with-db"]; ok {
			db, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("STORE --with-db=%s: want true or false", v)
			}
			spec.StoreDB = db
		}
		dir := args[0]
		if !path.IsAbs(dir) || path.Clean(dir) != dir || dir == "/" {
			return fmt.Errorf("STORE %q: the store directory must be an absolute, clean path below /", dir)
		}
		spec.StoreDir = dir
	case "from":
		if len(args) != 1 {
			return errors.New("FROM takes exactly one argument: the base image, such as busybox:1.36")
		}
		if _, err := reference.ParseNormalizedNamed(args[0]); err != nil {
			return fmt.Errorf("FROM %s: not an image reference: %w", args[0], err)
		}
		b := Base{Platform: flags["platform"], Image: args[0], Location: loc}
		if b.Platform != "" {
			p, err := platforms.Parse(b.Platform)
			if err != nil {
				return fmt.Errorf("FROM --platform=%s: %w", b.Platform, err)
			}
			b.Platform = platforms.Format(platforms.Normalize(p))
		}
		for _, other := range spec.Bases {
			if other.Platform == b.Platform {
				what := "every platform"
				if b.Platform != "" {
					what = b.Platform
				}
				return fmt.Errorf("FROM: a second base image for %s (the first is at line %d)", what, other.Location[0].Start.Line)
			}
		}
		spec.Bases = append(spec.Bases, b)
	case "closure":
		if len(args) == 0 {
			return errors.New("CLOSURE needs at least one root: a store path or a symlink into the store such as ./result")
		}
		c := RootSet{Platform: flags["platform"], Name: flags["name"], Roots: args, Location: loc}
		if c.Name != "" {
			if !isVariableName(c.Name) || c.Name == RootVariable {
				return fmt.Errorf("CLOSURE --name=%s: want a variable name other than %s (letters, digits, _)", c.Name, RootVariable)
			}
			e.defineRoot(c.Name)
		}
		spec.Closures = append(spec.Closures, c)
	case "graph":
		if len(args) != 1 {
			return errors.New("GRAPH takes exactly one argument: a reference graph file in the build context")
		}
		spec.Graphs = append(spec.Graphs, Graph{Platform: flags["platform"], File: args[0], Location: loc})
	case "layers":
		if len(args) != 0 {
			return errors.New("LAYERS takes only flags: LAYERS [--max=N] [--strategy=NAME] [--previous=IMAGE]")
		}
		l := Layers{Max: DefaultMaxLayers, Strategy: flags["strategy"], Previous: flags["previous"], Location: loc}
		if v, ok := flags["max"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("LAYERS --max=%s: want a whole number of at least 1", v)
			}
			l.Max = n
		}
		spec.Layers = l
	case "link":
		if len(args) != 3 || args[1] != "->" {
			return errors.New("LINK takes PATH -> TARGET")
		}
		if err := checkImagePath("LINK", args[0]); err != nil {
			return err
		}
		if args[2] == "" {
			return errors.New("LINK target is empty")
		}
		spec.Links = append(spec.Links, Link{Path: args[0], Target: args[2], Location: loc})
	case "dir":
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
			spec.Dirs = append(spec.Dirs, Dir{Path: a, Mode: uint32(mode), Owner: owner, Location: loc})
		}
	case "copy":
		cp, err := copyInstruction(flags, args, loc)
		if err != nil {
			return err
		}
		spec.Copies = append(spec.Copies, cp)
	case "account":
		a, err := account(flags, args, loc)
		if err != nil {
			return err
		}
		spec.Account = a
	}
	return nil
}

// copyInstruction reads COPY [--chmod=MODE] [--chown=USER[:GROUP]] SRC... DEST.
func copyInstruction(flags map[string]string, args []string, loc Location) (Copy, error) {
	if len(args) < 2 {
		return Copy{}, errors.New("COPY takes one or more sources in the build context and a destination: COPY SRC... DEST")
	}
	cp := Copy{Dest: args[len(args)-1], Location: loc}
	if dest := strings.TrimSuffix(cp.Dest, "/"); !path.IsAbs(cp.Dest) || path.Clean(dest) != dest && dest != "" {
		return Copy{}, fmt.Errorf("COPY destination %q: want an absolute, clean path", cp.Dest)
	}
	if len(args) > 2 && !strings.HasSuffix(cp.Dest, "/") {
		return Copy{}, fmt.Errorf("COPY of several sources: the destination %q must be a directory, ending with /", cp.Dest)
	}
	for _, src := range args[:len(args)-1] {
		if slices.Contains(strings.Split(src, "/"), "..") {
			return Copy{}, fmt.Errorf("COPY %s: a source outside the build context", src)
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
			return Copy{}, fmt.Errorf("COPY --chmod=%s: want an octal mode such as 0644", v)
		}
		m := uint32(mode)
		cp.Mode = &m
	}
	if v, ok := flags["chown"]; ok {
		user, group, hasGroup := strings.Cut(v, ":")
		if !isUserOrGroup(user) || hasGroup && !isUserOrGroup(group) {
			return Copy{}, fmt.Errorf("COPY --chown=%s: want USER[:GROUP], each a number or a name", v)
		}
		cp.Chown = &Chown{User: user, Group: group}
	}
	return cp, nil
}

// account reads ACCOUNT [--uid=N] [--gid=N] [--home=DIR] [--shell=PATH] NAME.
func account(flags map[string]string, args []string, loc Location) (*Account, error) {
	if len(args) != 1 {
		return nil, errors.New("ACCOUNT takes exactly one argument: the user's name, such as app")
	}
	a := &Account{Name: args[0], Owner: Owner{DefaultAccountID, DefaultAccountID}, Shell: DefaultAccountShell, Location: loc}
	if !isAccountName(a.Name) || a.Name == "root" || a.Name == "nobody" {
		return nil, fmt.Errorf("ACCOUNT %q: want a user name other than root and nobody: a lower-case letter or _, then letters, digits, _ or -, at most 32", a.Name)
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
			return nil, fmt.Errorf("ACCOUNT --%s=%s: want a number from 1 to %d other than %d (nobody)", flag, v, maxID, nobodyID)
		}
		*id = n
	}
	if _, ok := flags["gid"]; !ok {
		a.Owner.GID = a.Owner.UID // a group of its own, as useradd makes
	}
	a.Home = "/home/" + a.Name
	if v, ok := flags["home"]; ok {
		if err := checkImagePath("ACCOUNT --home", v); err != nil {
			return nil, err
		}
		a.Home = v
	}
	if v, ok := flags["shell"]; ok {
		if !path.IsAbs(v) || strings.ContainsAny(v, ":\n") {
			return nil, fmt.Errorf("ACCOUNT --shell=%s: want an absolute path", v)
		}
		a.Shell = v
	}
	return a, nil
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

func isVariableName(s string) bool {
	for i, c := range s {
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// checkImagePath accepts absolute paths inside the image other than "/".
func checkImagePath(instr, s string) error {
	if !path.IsAbs(s) || path.Clean(s) != s || s == "/" {
		return fmt.Errorf("%s %q: want an absolute, clean path below /", instr, s)
	}
	return nil
}

// The Dockerfile instructions, holding BuildKit's parse of them, which
// expand only reads.
type (
	argInstruction struct {
		args []instructions.KeyValuePairOptional
	}
	envInstruction struct {
		env instructions.KeyValuePairs
	}
	entrypointInstruction struct {
		cmd instructions.ShellDependantCmdLine
	}
	cmdInstruction struct {
		cmd instructions.ShellDependantCmdLine
	}
	workdirInstruction struct {
		path string
	}
	userInstruction struct {
		user string
	}
	labelInstruction struct {
		labels instructions.KeyValuePairs
	}
	exposeInstruction struct {
		ports []string
	}
	stopSignalInstruction struct {
		signal string
	}
)

var (
	_ instruction = storeInstruction{}
	_ instruction = argInstruction{}
	_ instruction = envInstruction{}
	_ instruction = entrypointInstruction{}
	_ instruction = cmdInstruction{}
	_ instruction = workdirInstruction{}
	_ instruction = userInstruction{}
	_ instruction = labelInstruction{}
	_ instruction = exposeInstruction{}
	_ instruction = stopSignalInstruction{}
)

func (i argInstruction) expand(e *expansion, _ Location) error {
	// As in a Dockerfile, every name and default of the line is expanded
	// before any of them is defined.
	args := make([]instructions.KeyValuePairOptional, len(i.args))
	for j, a := range i.args {
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

func (i envInstruction) expand(e *expansion, _ Location) error {
	env, err := e.pairs(i.env)
	if err != nil {
		return err
	}
	img := &e.spec.Image
	for _, kv := range env {
		e.vars.set(kv.Key, kv.Value)
		img.Env = setEnv(img.Env, kv.Key, kv.Value)
	}
	return nil
}

func (i entrypointInstruction) expand(e *expansion, _ Location) error {
	e.spec.Image.Entrypoint = shellForm(i.cmd)
	// As in a Dockerfile, a new ENTRYPOINT resets a CMD given before it.
	e.spec.Image.Cmd = nil
	return nil
}

func (i cmdInstruction) expand(e *expansion, _ Location) error {
	e.spec.Image.Cmd = shellForm(i.cmd)
	return nil
}

func (i workdirInstruction) expand(e *expansion, _ Location) error {
	dir, err := e.word(i.path)
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

func (i userInstruction) expand(e *expansion, _ Location) error {
	user, err := e.word(i.user)
	if err != nil {
		return err
	}
	e.spec.Image.User = user
	return nil
}

func (i labelInstruction) expand(e *expansion, _ Location) error {
	labels, err := e.pairs(i.labels)
	if err != nil {
		return err
	}
	img := &e.spec.Image
	if img.Labels == nil {
		img.Labels = map[string]string{}
	}
	for _, kv := range labels {
		img.Labels[kv.Key] = kv.Value
	}
	return nil
}

func (i exposeInstruction) expand(e *expansion, _ Location) error {
	img := &e.spec.Image
	for _, word := range i.ports {
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

func (i stopSignalInstruction) expand(e *expansion, _ Location) error {
	signal, err := e.word(i.signal)
	if err != nil {
		return err
	}
	e.spec.Image.StopSignal = signal
	return nil
}

// shellForm turns a shell-form command line into its exec form, as a
// Dockerfile does; the image must then hold /bin/sh. The result is a copy,
// which expandRoots may rewrite.
func shellForm(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return []string{"/bin/sh", "-c", strings.Join(c.CmdLine, " ")}
	}
	return slices.Clone(c.CmdLine)
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
