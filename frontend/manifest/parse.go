// Package manifest parses storepack manifests: Dockerfile-syntax files whose
// first line is "# syntax=storepack". Lexing (continuations, comments, JSON
// and shell forms, --flags, the escape directive) is BuildKit's Dockerfile
// parser, so positions and quirks match what Dockerfile users know. The
// Dockerfile instructions storepack shares (ENTRYPOINT, ENV, …) are parsed
// by BuildKit's instructions package into its commands; storepack's own are
// parsed here, each into a command type of its own.
//
// Parse lexes a manifest once and checks what needs no variables; Expand
// evaluates it with build arguments and one platform's root variables into
// a Spec, as often as there are platforms, without changing the Manifest.
//
// The instructions come in families, one file each: store.go (STORE,
// CLOSURE, GRAPH, LAYERS), custom.go (the customisation layer's LINK, DIR,
// COPY, RUN, ACCOUNT) and image.go (FROM, ARG and the image config's);
// commands.go registers them.
//
// Errors carry the offending line as a parser.LocationError, which the
// frontend turns into a source-mapped error in `docker build` output.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"
)

// Parse parses manifest source. It refuses what no variable can make valid:
// an unknown instruction or flag, a repeated STORE, LAYERS or ACCOUNT, a
// Dockerfile instruction BuildKit refuses, and a manifest without CLOSURE.
func Parse(src []byte) (*Manifest, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	m := &Manifest{escape: res.EscapeToken}
	lex := shell.NewLex(res.EscapeToken)
	seen := map[string]bool{}
	for _, node := range res.AST.Children {
		cmd, err := parseCommand(node, lex, seen)
		if err != nil {
			return nil, parser.WithLocation(err, node.Location())
		}
		m.commands = append(m.commands, cmd)
	}
	if !seen["closure"] {
		return nil, errors.New("manifest has no CLOSURE instruction: name at least one root")
	}
	return m, nil
}

// parseCommand parses one node; seen records the instructions met so far.
func parseCommand(node *parser.Node, lex *shell.Lex, seen map[string]bool) (command, error) {
	name := strings.ToLower(node.Value)
	i := slices.IndexFunc(registry, func(r registration) bool { return r.name == name })
	if i < 0 {
		return nil, suggest.WrapError(fmt.Errorf("unknown instruction: %s", node.Value), name, Instructions, false)
	}
	r := registry[i]
	if r.once && seen[name] {
		return nil, fmt.Errorf("%s may appear only once", strings.ToUpper(name))
	}
	seen[name] = true
	return r.parse(node, lex)
}

// words is an instruction storepack lexes itself, such as CLOSURE: BuildKit's
// parser keeps only its line. The text stays unexpanded until Expand, as a
// variable may give a flag or split into several arguments.
type words struct {
	name   string   // upper case, for messages
	flags  []string // the flags the instruction takes
	text   string   // after the name
	nflags int      // how many of its leading words BuildKit's parser took for --flags
	loc    Location
}

func (w words) Location() []parser.Range { return w.loc }

// wordsCommand is a command of storepack's own syntax: its words, split
// at Expand, and how it applies their flags and arguments.
type wordsCommand interface {
	command
	split(e *expansion) (map[string]string, []string, error)
	apply(e *expansion, flags map[string]string, args []string) error
}

// wordsType is what lexAs makes: a wordsCommand whose type holds its words
// and nothing more.
type wordsType interface {
	~struct{ words }
	wordsCommand
}

// lexAs parses an instruction as a C taking flags. It checks the flags
// where no variable can change them, ended before the text's first '$';
// split checks the others once they are expanded.
func lexAs[C wordsType](flags ...string) parseFunc {
	return func(node *parser.Node, lex *shell.Lex) (command, error) {
		w := words{name: strings.ToUpper(node.Value), flags: flags, text: argumentText(node), nflags: len(node.Flags), loc: Location(node.Location())}
		if static := staticWords(lex, w.text); len(static) >= w.nflags {
			given, _, err := splitFlags(static[:w.nflags], w.nflags)
			if err != nil {
				return nil, err
			}
			if err := w.checkFlags(given); err != nil {
				return nil, err
			}
		}
		return C{w}, nil
	}
}

// split expands the text and splits it into the flags and the arguments.
func (w words) split(e *expansion) (map[string]string, []string, error) {
	all, err := e.lex.ProcessWords(w.text, &e.vars)
	if err != nil {
		return nil, nil, err
	}
	flags, args, err := splitFlags(all, w.nflags)
	if err != nil {
		return nil, nil, err
	}
	return flags, args, w.checkFlags(flags)
}

func (w words) checkFlags(given map[string]string) error {
	for k := range given {
		if !slices.Contains(w.flags, k) {
			return fmt.Errorf("unknown flag for %s: --%s", w.name, k)
		}
	}
	return nil
}

// argumentText is an instruction's text after its name: BuildKit's parser
// keeps only the original line for instructions it does not know.
func argumentText(node *parser.Node) string {
	line := strings.TrimSpace(node.Original)
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		return line[i+1:]
	}
	return ""
}

// staticWords is the leading words of text that no variable's value can
// change: those the lexer has ended before the first '$'.
func staticWords(lex *shell.Lex, text string) []string {
	var none vars
	head, _, dollar := strings.Cut(text, "$")
	ended, err := lex.ProcessWords(head, &none)
	if err != nil || !dollar {
		return ended
	}
	// The last word has ended only if one more character starts a new one;
	// else the variable may continue it.
	if more, err := lex.ProcessWords(head+"x", &none); err != nil || len(more) != len(ended)+1 {
		ended = ended[:max(len(ended)-1, 0)]
	}
	return ended
}

// boolFlags are the flags that may stand without a value, meaning true.
var boolFlags = map[string]bool{"with-db": true}

// splitFlags takes the first n words, those BuildKit's parser counted as
// --flags, as flags and returns them and the arguments after them.
func splitFlags(all []string, n int) (map[string]string, []string, error) {
	if len(all) < n {
		return nil, nil, errors.New("flags expand to nothing")
	}
	flags := map[string]string{}
	for _, w := range all[:n] {
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
	return flags, all[n:], nil
}
