// Package manifest parses storepack manifests: Dockerfile-syntax files whose
// first line is "# syntax=storepack". Lexing (continuations, comments, JSON
// and shell forms, --flags, the escape directive) is BuildKit's Dockerfile
// parser, so positions and quirks match what Dockerfile users know. The
// Dockerfile instructions storepack shares (ENTRYPOINT, ENV, …) are parsed
// by BuildKit's instructions package; the store instructions are parsed here.
//
// Errors carry the offending line as a parser.LocationError, which the
// frontend turns into a source-mapped error in `docker build` output.
package manifest

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// DefaultStoreDir is the store directory when the manifest has no STORE.
const DefaultStoreDir = "/nix/store"

// DefaultMaxLayers is the layer budget when the manifest has no LAYERS --max.
const DefaultMaxLayers = 100

// Manifest is a parsed manifest with build arguments and variables expanded.
type Manifest struct {
	StoreDir string
	Closures []Closure
	Graphs   []Graph
	Layers   Layers
	Links    []Link
	Dirs     []Dir
	// Image is the config set by ENTRYPOINT, CMD, ENV, WORKDIR, USER, LABEL,
	// EXPOSE and STOPSIGNAL, as in a Dockerfile.
	Image dockerspec.DockerOCIImageConfig
}

// Location is the manifest lines an instruction came from.
type Location []parser.Range

// Closure is one CLOSURE instruction: roots given as store paths or as
// context paths of symlinks into the store (such as ./result).
type Closure struct {
	Platform string // empty: every target platform its binaries run on
	Name     string // --name: ${Name} is the first root's store path
	Roots    []string
	Location Location
}

// RootVariable is the variable holding the store path of the first root of
// the platform being built.
const RootVariable = "ROOT"

// Options are the inputs of Parse besides the source.
type Options struct {
	// BuildArgs are the --build-arg values; only those declared with ARG
	// are visible, as in a Dockerfile.
	BuildArgs map[string]string
	// Roots are the store paths of the root variables for one platform:
	// RootVariable and every CLOSURE --name. A manifest is parsed once
	// without them, to find its roots, and then once per platform with
	// them; without them a reference stays as written.
	Roots map[string]string
}

// Graph is one GRAPH instruction: a reference graph file in the context.
type Graph struct {
	Platform string
	File     string
	Location Location
}

// Layers is the LAYERS instruction.
type Layers struct {
	Max      int    // budget counting every layer of the image
	Strategy string // empty: the default strategy
	// Previous names an image whose recorded layer plan the new plan keeps
	// where that ships fewer bytes; empty: none.
	Previous string
	Location Location
}

// Link is a symlink in the customisation layer. A relative Target resolves
// inside the first root, like `guix pack -S /bin=bin`.
type Link struct {
	Path     string
	Target   string
	Location Location
}

// Dir is an extra directory in the customisation layer.
type Dir struct {
	Path     string
	Mode     uint32
	Location Location
}

// Instructions lists every instruction a manifest may use.
var Instructions = []string{
	"arg", "closure", "cmd", "dir", "entrypoint", "env", "expose", "graph",
	"label", "layers", "link", "stopsignal", "store", "user", "workdir",
}

// Parse parses manifest source.
func Parse(src []byte, opt Options) (*Manifest, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	p := &parse{
		m:    &Manifest{StoreDir: DefaultStoreDir, Layers: Layers{Max: DefaultMaxLayers}},
		lex:  shell.NewLex(res.EscapeToken),
		opt:  opt,
		seen: map[string]bool{},
	}
	p.defineRoot(RootVariable)
	for _, node := range res.AST.Children {
		if err := p.instruction(node); err != nil {
			return nil, parser.WithLocation(err, node.Location())
		}
	}
	if len(p.m.Closures) == 0 {
		return nil, errors.New("manifest has no CLOSURE instruction: name at least one root")
	}
	// ENTRYPOINT and CMD are not expanded in a Dockerfile; here only root
	// references are, so that a command can name a platform's store path.
	p.m.Image.Entrypoint = p.expandRoots(p.m.Image.Entrypoint)
	p.m.Image.Cmd = p.expandRoots(p.m.Image.Cmd)
	return p.m, nil
}

type parse struct {
	m     *Manifest
	lex   *shell.Lex
	opt   Options
	vars  vars
	roots []string        // root variables defined so far
	seen  map[string]bool // instructions allowed only once
}

// defineRoot makes ${name} a root variable: its store path when known,
// else the reference itself, kept for the per-platform parse.
func (p *parse) defineRoot(name string) {
	value, ok := p.opt.Roots[name]
	if !ok {
		value = "${" + name + "}"
	}
	p.vars.set(name, value)
	p.roots = append(p.roots, name)
}

func (p *parse) expandRoots(args []string) []string {
	for _, name := range p.roots {
		value, ok := p.opt.Roots[name]
		if !ok {
			continue
		}
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "${"+name+"}", value)
		}
	}
	return args
}

func (p *parse) instruction(node *parser.Node) error {
	name := strings.ToLower(node.Value)
	switch name {
	case "store", "closure", "graph", "layers", "link", "dir":
		if name == "store" || name == "layers" {
			if p.seen[name] {
				return errors.Errorf("%s may appear only once", strings.ToUpper(name))
			}
			p.seen[name] = true
		}
		flags, args, err := p.words(node)
		if err != nil {
			return err
		}
		return p.storeInstruction(name, flags, args, Location(node.Location()))
	case "arg", "cmd", "entrypoint", "env", "expose", "label", "stopsignal", "user", "workdir":
		cmd, err := instructions.ParseInstruction(node)
		if err != nil {
			return err
		}
		return p.imageInstruction(cmd)
	}
	return suggest.WrapError(errors.Errorf("unknown instruction: %s", node.Value), name, Instructions, false)
}

// words splits a store instruction's text after the instruction name into
// its --flags and arguments, with variables expanded. BuildKit's parser
// keeps only the original line for instructions it does not know.
func (p *parse) words(node *parser.Node) (map[string]string, []string, error) {
	line := strings.TrimSpace(node.Original)
	rest := ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		rest = line[i+1:]
	}
	words, err := p.lex.ProcessWords(rest, &p.vars)
	if err != nil {
		return nil, nil, err
	}
	if len(words) < len(node.Flags) {
		return nil, nil, errors.New("flags expand to nothing")
	}
	flags := map[string]string{}
	for _, w := range words[:len(node.Flags)] {
		k, v, ok := strings.Cut(strings.TrimPrefix(w, "--"), "=")
		if !ok {
			return nil, nil, errors.Errorf("flag %s needs a value (--%s=VALUE)", w, k)
		}
		if _, dup := flags[k]; dup {
			return nil, nil, errors.Errorf("flag --%s given twice", k)
		}
		flags[k] = v
	}
	return flags, words[len(node.Flags):], nil
}

func checkFlags(instr string, flags map[string]string, allowed ...string) error {
	for k := range flags {
		if !slices.Contains(allowed, k) {
			return errors.Errorf("unknown flag for %s: --%s", strings.ToUpper(instr), k)
		}
	}
	return nil
}

func (p *parse) storeInstruction(name string, flags map[string]string, args []string, loc Location) error {
	switch name {
	case "store":
		if err := checkFlags(name, flags); err != nil {
			return err
		}
		if len(args) != 1 {
			return errors.New("STORE takes exactly one argument: the store directory, such as /nix/store")
		}
		dir := args[0]
		if !path.IsAbs(dir) || path.Clean(dir) != dir || dir == "/" {
			return errors.Errorf("STORE %q: the store directory must be an absolute, clean path below /", dir)
		}
		p.m.StoreDir = dir
	case "closure":
		if err := checkFlags(name, flags, "platform", "name"); err != nil {
			return err
		}
		if len(args) == 0 {
			return errors.New("CLOSURE needs at least one root: a store path or a symlink into the store such as ./result")
		}
		c := Closure{Platform: flags["platform"], Name: flags["name"], Roots: args, Location: loc}
		if c.Name != "" {
			if !isVariableName(c.Name) || c.Name == RootVariable {
				return errors.Errorf("CLOSURE --name=%s: want a variable name other than %s (letters, digits, _)", c.Name, RootVariable)
			}
			p.defineRoot(c.Name)
		}
		p.m.Closures = append(p.m.Closures, c)
	case "graph":
		if err := checkFlags(name, flags, "platform"); err != nil {
			return err
		}
		if len(args) != 1 {
			return errors.New("GRAPH takes exactly one argument: a reference graph file in the build context")
		}
		p.m.Graphs = append(p.m.Graphs, Graph{Platform: flags["platform"], File: args[0], Location: loc})
	case "layers":
		if err := checkFlags(name, flags, "max", "strategy", "previous"); err != nil {
			return err
		}
		if len(args) != 0 {
			return errors.New("LAYERS takes only flags: LAYERS [--max=N] [--strategy=NAME] [--previous=IMAGE]")
		}
		l := Layers{Max: DefaultMaxLayers, Strategy: flags["strategy"], Previous: flags["previous"], Location: loc}
		if v, ok := flags["max"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return errors.Errorf("LAYERS --max=%s: want a whole number of at least 1", v)
			}
			l.Max = n
		}
		p.m.Layers = l
	case "link":
		if err := checkFlags(name, flags); err != nil {
			return err
		}
		if len(args) != 3 || args[1] != "->" {
			return errors.New("LINK takes PATH -> TARGET")
		}
		if err := checkImagePath("LINK", args[0]); err != nil {
			return err
		}
		if args[2] == "" {
			return errors.New("LINK target is empty")
		}
		p.m.Links = append(p.m.Links, Link{Path: args[0], Target: args[2], Location: loc})
	case "dir":
		if err := checkFlags(name, flags, "mode"); err != nil {
			return err
		}
		if len(args) == 0 {
			return errors.New("DIR needs at least one path")
		}
		mode := uint64(0o755)
		if v, ok := flags["mode"]; ok {
			var err error
			if mode, err = strconv.ParseUint(v, 8, 32); err != nil || mode > 0o7777 {
				return errors.Errorf("DIR --mode=%s: want an octal mode such as 1777", v)
			}
		}
		for _, a := range args {
			if err := checkImagePath("DIR", a); err != nil {
				return err
			}
			p.m.Dirs = append(p.m.Dirs, Dir{Path: a, Mode: uint32(mode), Location: loc})
		}
	}
	return nil
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
		return errors.Errorf("%s %q: want an absolute, clean path below /", instr, s)
	}
	return nil
}

func (p *parse) imageInstruction(cmd any) error {
	if c, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		err := c.Expand(func(word string) (string, error) {
			s, _, err := p.lex.ProcessWord(word, &p.vars)
			return s, err
		})
		if err != nil {
			return err
		}
	}
	img := &p.m.Image
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		for _, a := range c.Args {
			v, given := p.opt.BuildArgs[a.Key]
			if !given && a.Value != nil {
				v, given = *a.Value, true
			}
			if given {
				p.vars.set(a.Key, v)
			}
		}
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			p.vars.set(kv.Key, kv.Value)
			img.Env = setEnv(img.Env, kv.Key, kv.Value)
		}
	case *instructions.EntrypointCommand:
		img.Entrypoint = shellForm(c.ShellDependantCmdLine)
		// As in a Dockerfile, a new ENTRYPOINT resets a CMD given before it.
		img.Cmd = nil
	case *instructions.CmdCommand:
		img.Cmd = shellForm(c.ShellDependantCmdLine)
	case *instructions.WorkdirCommand:
		dir := c.Path
		if !path.IsAbs(dir) {
			dir = path.Join("/", img.WorkingDir, dir)
		}
		img.WorkingDir = path.Clean(dir)
	case *instructions.UserCommand:
		img.User = c.User
	case *instructions.LabelCommand:
		if img.Labels == nil {
			img.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			img.Labels[kv.Key] = kv.Value
		}
	case *instructions.ExposeCommand:
		for _, port := range c.Ports {
			ports, err := exposedPorts(p.lex, &p.vars, port)
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
	case *instructions.StopSignalCommand:
		img.StopSignal = c.Signal
	default:
		return errors.Errorf("unsupported instruction %T", cmd)
	}
	return nil
}

// shellForm turns a shell-form command line into its exec form, as a
// Dockerfile does; the image must then hold /bin/sh.
func shellForm(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return []string{"/bin/sh", "-c", strings.Join(c.CmdLine, " ")}
	}
	return c.CmdLine
}

// exposedPorts expands one EXPOSE word such as "8080", "53/udp" or
// "8000-8002/tcp" into "port/proto" entries.
func exposedPorts(lex *shell.Lex, env shell.EnvGetter, word string) ([]string, error) {
	word, _, err := lex.ProcessWord(word, env)
	if err != nil {
		return nil, err
	}
	spec, proto, _ := strings.Cut(word, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, errors.Errorf("EXPOSE %s: protocol must be tcp, udp or sctp", word)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return nil, errors.Errorf("EXPOSE %s: want a port or a range of ports such as 8000-8002", word)
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

// vars is the variables visible to ${...} expansion: ARGs and ENVs declared
// so far. It implements shell.EnvGetter.
type vars struct {
	keys   []string
	values map[string]string
}

func (v *vars) set(k, val string) {
	if v.values == nil {
		v.values = map[string]string{}
	}
	if _, ok := v.values[k]; !ok {
		v.keys = append(v.keys, k)
	}
	v.values[k] = val
}

func (v *vars) Get(k string) (string, bool) {
	val, ok := v.values[k]
	return val, ok
}

func (v *vars) Keys() []string { return v.keys }

// StoreLayerBudget is how many layers the store paths may use: the budget
// of LAYERS --max counts every layer of the image, and the customisation
// layer (any LINK or DIR) takes one. It is an error, located at LAYERS,
// when none is left.
func (m *Manifest) StoreLayerBudget() (int, error) {
	budget := m.Layers.Max
	if len(m.Links) > 0 || len(m.Dirs) > 0 {
		budget--
	}
	if budget < 1 {
		return 0, parser.WithLocation(errors.Errorf("LAYERS --max=%d leaves no layer for the store paths after the customisation layer (LINK, DIR)", m.Layers.Max), m.Layers.Location)
	}
	return budget, nil
}

// WithFileLine prefixes a located error with the manifest file and its
// first line, as compilers do: "app.storepack:3: unknown instruction".
func WithFileLine(file string, err error) error {
	var le *parser.LocationError
	if err == nil || !errors.As(err, &le) || len(le.Locations) == 0 || len(le.Locations[0]) == 0 {
		return err
	}
	return errors.Wrapf(err, "%s:%d", file, le.Locations[0][0].Start.Line)
}
