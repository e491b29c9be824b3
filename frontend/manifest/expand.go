package manifest

import (
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Expand evaluates the manifest with opt. It leaves the Manifest as it is
// and shares nothing mutable with it, so each platform gets its own Spec.
func (m *Manifest) Expand(opt Options) (*Spec, error) {
	e := &expansion{
		opt:  opt,
		lex:  shell.NewLex(m.escape),
		spec: &Spec{StoreDir: DefaultStoreDir, Layers: Layers{Max: DefaultMaxLayers}},
	}
	e.defineRoot(RootVariable)
	for _, cmd := range m.commands {
		if err := e.dispatch(cmd); err != nil {
			return nil, parser.WithLocation(err, cmd.Location())
		}
	}
	// ENTRYPOINT and CMD are not expanded in a Dockerfile; here only root
	// references are, so that a command can name a platform's store path.
	img := &e.spec.Image
	img.Entrypoint = e.expandRoots(img.Entrypoint)
	img.Cmd = e.expandRoots(img.Cmd)
	for i := range e.spec.Runs {
		e.spec.Runs[i].Args = e.expandRoots(e.spec.Runs[i].Args)
	}
	if a := e.spec.Account; a != nil && img.User == "" {
		img.User = a.Name // USER, where there is one, names the user to run as
	}
	return e.spec, nil
}

// expansion is the state of one Expand.
type expansion struct {
	opt   Options
	lex   *shell.Lex // not safe for concurrent use, hence one per Expand
	vars  vars
	roots []string // root variables defined so far
	spec  *Spec
}

// defineRoot makes ${name} a root variable: its store path when known,
// else the reference itself, kept for the per-platform expansion.
func (e *expansion) defineRoot(name string) {
	value, ok := e.opt.Roots[name]
	if !ok {
		value = "${" + name + "}"
	}
	e.vars.set(name, value)
	e.roots = append(e.roots, name)
}

// expandRoots replaces the known root references in args, in place.
func (e *expansion) expandRoots(args []string) []string {
	for _, name := range e.roots {
		value, ok := e.opt.Roots[name]
		if !ok {
			continue
		}
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "${"+name+"}", value)
		}
	}
	return args
}

func (e *expansion) word(w string) (string, error) {
	s, _, err := e.lex.ProcessWord(w, &e.vars)
	return s, err
}

// pairs expands the keys and values of ENV or LABEL, all before the first
// is set, as in a Dockerfile, and then sets each.
func (e *expansion) pairs(kvs instructions.KeyValuePairs, set func(key, value string)) error {
	expanded := make(instructions.KeyValuePairs, len(kvs))
	for i, kv := range kvs {
		var err error
		if expanded[i].Key, err = e.word(kv.Key); err != nil {
			return err
		}
		if expanded[i].Value, err = e.word(kv.Value); err != nil {
			return err
		}
	}
	for _, kv := range expanded {
		set(kv.Key, kv.Value)
	}
	return nil
}

// vars is the variables visible to ${...} expansion: ARGs and ENVs declared
// so far.
type vars struct {
	keys   []string
	values map[string]string
}

var _ shell.EnvGetter = (*vars)(nil)

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

// shellForm turns a shell-form command line into its exec form run by sh,
// as a Dockerfile does; the image must then hold sh. The result is a copy,
// which expandRoots may rewrite.
func shellForm(c instructions.ShellDependantCmdLine, sh string) []string {
	if c.PrependShell {
		return []string{sh, "-c", strings.Join(c.CmdLine, " ")}
	}
	return slices.Clone(c.CmdLine)
}
