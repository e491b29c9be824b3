package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// dotStoreDir is the store directory of a graph read from DOT, which names
// nodes by base name only. Only Nix writes this form, and Nix's store is
// /nix/store unless built otherwise.
const dotStoreDir = "/nix/store"

// readDot reads the graph that `nix-store --query --graph` prints:
//
//	digraph G {
//	"<hash>-<name>" [label = "<name>", shape = box, style = filled, fillcolor = "#ff0000"];
//	"<hash>-<dependency>" -> "<hash>-<name>" [color = "black"];
//	}
//
// Nodes are base names in /nix/store (see dotStoreDir) and an edge points from
// a reference to its referrer, the reverse of the other formats. The form has
// no sizes and no self-references (Nix does not draw them).
//
// The reader accepts the part of the DOT language such a graph can use: node
// and edge statements (edge chains too) with attribute lists, default
// attribute statements (graph, node, edge) and graph attributes (ID = ID),
// quoted or bare IDs, and // and /* */ comments. Attributes do not matter to
// a store graph, so an attribute list is skipped up to its closing bracket
// (outside quotes) without further checks. Subgraphs, ports, HTML strings
// and # lines are errors.
func readDot(name string, r *bufio.Reader) ([]Path, []idNode, error) {
	lex := &dotLexer{name: name, r: r, line: 1}
	graph := &dotGraph{}
	if err := graph.read(lex); err != nil {
		return nil, nil, err
	}
	return graph.paths.paths, graph.nodes, nil
}

// dotGraph collects the nodes of a DOT graph. Every path it parses is a
// node, so a node's position is its path's id.
type dotGraph struct {
	paths pathParser
	nodes []idNode
	// The node of the last node statement: Nix writes a node's edges right
	// after it, so most edges end there.
	lastText []byte
	lastID   int
}

func (g *dotGraph) read(lex *dotLexer) error {
	tok, err := lex.next()
	if err != nil {
		return err
	}
	if tok.isKeyword("strict") {
		if tok, err = lex.next(); err != nil {
			return err
		}
	}
	if !tok.isKeyword("digraph") {
		return lex.errorf("unknown graph format: expected nix-store --query --graph output starting with digraph, found %s", tok)
	}
	if tok, err = lex.next(); err != nil {
		return err
	}
	if tok.kind == dotID { // the graph's name
		if tok, err = lex.next(); err != nil {
			return err
		}
	}
	if tok.kind != '{' {
		return lex.errorf("expected {, found %s", tok)
	}
	for {
		tok, err := lex.next()
		if err != nil {
			return err
		}
		switch {
		case tok.kind == '}':
			if tok, err := lex.next(); err != nil || tok.kind != dotEOF {
				if err != nil {
					return err
				}
				return lex.errorf("unexpected %s after the end of the graph", tok)
			}
			return nil
		case tok.kind == ';':
		case tok.kind != dotID:
			return lex.errorf("expected a statement, found %s", tok)
		case tok.isKeyword("graph") || tok.isKeyword("node") || tok.isKeyword("edge"):
			if err := lex.skipAttributes(); err != nil {
				return err
			}
		case tok.isKeyword("subgraph"):
			return lex.errorf("subgraphs are not part of a store graph")
		default:
			if err := g.statement(lex, tok); err != nil {
				return err
			}
		}
	}
}

// statement reads a node statement, an edge statement or a graph attribute
// whose first ID has been read.
func (g *dotGraph) statement(lex *dotLexer, first dotToken) error {
	peek, err := lex.peek()
	if err != nil {
		return err
	}
	if peek.kind == '=' { // a graph attribute, such as rankdir = LR
		lex.next()
		if tok, err := lex.next(); err != nil || tok.kind != dotID {
			if err != nil {
				return err
			}
			return lex.errorf("expected a value after =, found %s", tok)
		}
		return nil
	}
	from, err := g.node(lex, first)
	if err != nil {
		return err
	}
	for edge := false; ; edge = true {
		if peek, err = lex.peek(); err != nil {
			return err
		}
		if peek.kind != dotArrow {
			if !edge { // a node statement
				g.lastText, g.lastID = append(g.lastText[:0], first.text...), from
			}
			return lex.skipAttributes()
		}
		lex.next()
		tok, err := lex.next()
		if err != nil {
			return err
		}
		if tok.kind != dotID {
			return lex.errorf("expected a node after ->, found %s", tok)
		}
		to, err := g.node(lex, tok)
		if err != nil {
			return err
		}
		// Nix draws an edge from each reference to its referrer.
		g.nodes[to].refs = append(g.nodes[to].refs, from)
		from = to
	}
}

// node returns the position of the node named by tok, adding it if new.
func (g *dotGraph) node(lex *dotLexer, tok dotToken) (int, error) {
	if g.lastText != nil && bytes.Equal(tok.text, g.lastText) {
		return g.lastID, nil
	}
	id, err := g.paths.parseBase(dotStoreDir, tok.text)
	if err != nil {
		return 0, lex.errorf("node: %v", err)
	}
	if id == len(g.nodes) {
		g.nodes = append(g.nodes, idNode{path: id})
	}
	return id, nil
}

// dotTokenKind is a punctuation byte ('{', '}', '[', ']', '=', ';', ',') or
// one of the constants below.
type dotTokenKind int

const (
	dotEOF dotTokenKind = -1 - iota
	dotID
	dotArrow
)

type dotToken struct {
	kind dotTokenKind
	// text is an ID's text, valid until the lexer has read two more tokens
	// (see dotLexer.texts).
	text   []byte
	quoted bool // a quoted ID is never a keyword
}

func (t dotToken) isKeyword(keyword string) bool {
	return t.kind == dotID && !t.quoted && strings.EqualFold(string(t.text), keyword)
}

func (t dotToken) String() string {
	switch t.kind {
	case dotEOF:
		return "the end of the file"
	case dotID:
		return quote(string(t.text))
	case dotArrow:
		return "->"
	}
	return fmt.Sprintf("%q", rune(t.kind))
}

// dotLexer splits DOT text into tokens, counting lines for errors.
type dotLexer struct {
	name      string
	r         *bufio.Reader
	line      int
	peeked    dotToken // valid if hasPeeked
	hasPeeked bool
	// The texts of the last two IDs: the current token and the one peeked
	// at may both be IDs, and the lexer reuses the older buffer.
	texts [2][]byte
	text  int // the buffer the next ID goes to
}

func (l *dotLexer) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", l.name, l.line, fmt.Sprintf(format, args...))
}

func (l *dotLexer) peek() (dotToken, error) {
	if !l.hasPeeked {
		tok, err := l.lex()
		if err != nil {
			return dotToken{}, err
		}
		l.peeked, l.hasPeeked = tok, true
	}
	return l.peeked, nil
}

func (l *dotLexer) next() (dotToken, error) {
	tok, err := l.peek()
	l.hasPeeked = false
	return tok, err
}

// skipAttributes skips any attribute lists, [name = value, …], that follow.
// Their content does not matter to a store graph, so it is skipped without
// being split into tokens: only quoted strings (which may hold ']') and the
// closing bracket are recognized.
func (l *dotLexer) skipAttributes() error {
	for {
		tok, err := l.peek()
		if err != nil || tok.kind != '[' {
			return err
		}
		l.next()
		start, skipped := l.line, 0
		for closed := false; !closed; {
			if skipped > maxLineLen {
				return fmt.Errorf("%s:%d: attribute list longer than %d bytes", l.name, start, maxLineLen)
			}
			buf, err := l.buffered()
			if err == io.EOF {
				return fmt.Errorf("%s:%d: unexpected end of file in the attribute list starting on this line", l.name, start)
			}
			if err != nil {
				return l.readError(err)
			}
			n := 0
			for ; n < len(buf) && buf[n] != ']' && buf[n] != '"'; n++ {
				if buf[n] == '\n' {
					l.line++
				}
			}
			l.r.Discard(n)
			skipped += n
			switch {
			case n == len(buf):
			case buf[n] == ']':
				l.r.Discard(1)
				closed = true
			default: // a quoted string
				l.r.Discard(1)
				if _, err := l.quotedID(); err != nil {
					return err
				}
			}
		}
	}
}

// buffered returns the bytes buffered for reading, at least one unless
// the input ends (err io.EOF) or fails.
func (l *dotLexer) buffered() ([]byte, error) {
	if _, err := l.r.Peek(1); err != nil {
		return nil, err
	}
	return l.r.Peek(l.r.Buffered())
}

// lex reads one token.
func (l *dotLexer) lex() (dotToken, error) {
	c, err := l.skipSpaceAndComments()
	if err == io.EOF {
		return dotToken{kind: dotEOF}, nil
	}
	if err != nil {
		return dotToken{}, err
	}
	l.r.Discard(1)
	switch {
	case strings.IndexByte("{}[]=;,", c) >= 0:
		return dotToken{kind: dotTokenKind(c)}, nil
	case c == '-':
		if next, err := l.r.ReadByte(); err == nil && next == '>' {
			return dotToken{kind: dotArrow}, nil
		}
		return dotToken{}, l.errorf("expected -> (undirected edges and negative numbers are not part of a store graph)")
	case c == '"':
		return l.quotedID()
	case isDotIDByte(c):
		text := append(l.textBuffer(), c)
		for {
			buf, err := l.buffered()
			if err == io.EOF {
				break
			}
			if err != nil {
				return dotToken{}, l.readError(err)
			}
			n := 0
			for n < len(buf) && isDotIDByte(buf[n]) {
				n++
			}
			text = append(text, buf[:n]...)
			l.r.Discard(n)
			if len(text) > maxLineLen {
				return dotToken{}, l.errorf("ID longer than %d bytes", maxLineLen)
			}
			if n < len(buf) {
				break
			}
		}
		return l.id(text, false), nil
	}
	return dotToken{}, l.errorf("unexpected %q", c)
}

// textBuffer returns the buffer for the next ID's text, emptied.
func (l *dotLexer) textBuffer() []byte {
	l.text = 1 - l.text
	return l.texts[l.text][:0]
}

// id makes an ID token of text, which is in the current text buffer.
func (l *dotLexer) id(text []byte, quoted bool) dotToken {
	l.texts[l.text] = text
	return dotToken{kind: dotID, text: text, quoted: quoted}
}

func (l *dotLexer) readError(err error) error {
	return fmt.Errorf("%s:%d: %w", l.name, l.line, err)
}

func isDotIDByte(c byte) bool {
	return c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// quotedID reads a quoted ID after its opening quote. In DOT only \" is an
// escape; a backslash before a newline continues the line, and other
// backslashes are kept.
func (l *dotLexer) quotedID() (dotToken, error) {
	text := l.textBuffer()
	start := l.line
	for {
		buf, err := l.buffered()
		if err == io.EOF {
			return dotToken{}, fmt.Errorf("%s:%d: unexpected end of file in the string starting on this line", l.name, start)
		}
		if err != nil {
			return dotToken{}, l.readError(err)
		}
		// The closing quote is usually all there is to find, and
		// IndexByte finds it fast.
		n := bytes.IndexByte(buf, '"')
		if n < 0 {
			n = len(buf)
		}
		if special := bytes.IndexAny(buf[:n], "\\\n"); special >= 0 {
			n = special
		}
		text = append(text, buf[:n]...)
		if len(text) > maxLineLen {
			return dotToken{}, fmt.Errorf("%s:%d: string longer than %d bytes", l.name, start, maxLineLen)
		}
		if n == len(buf) {
			l.r.Discard(n)
			continue
		}
		c := buf[n]
		l.r.Discard(n + 1)
		switch c {
		case '"':
			return l.id(text, true), nil
		case '\n':
			l.line++
			text = append(text, c)
		case '\\':
			next, err := l.r.ReadByte()
			switch {
			case err != nil:
				// The end of the file is reported by the next round.
			case next == '"':
				text = append(text, '"')
			case next == '\n':
				l.line++
			default:
				text = append(text, '\\', next)
			}
		}
	}
}

// skipSpaceAndComments skips white space and comments (// and /* */) and
// returns the next byte, left unread.
func (l *dotLexer) skipSpaceAndComments() (byte, error) {
	for {
		buf, err := l.buffered()
		if err != nil {
			if err == io.EOF {
				return 0, err
			}
			return 0, l.readError(err)
		}
		n := 0
		for ; n < len(buf); n++ {
			if c := buf[n]; c == '\n' {
				l.line++
			} else if c != ' ' && c != '\t' && c != '\r' {
				break
			}
		}
		l.r.Discard(n)
		if n == len(buf) {
			continue
		}
		if buf[n] != '/' {
			return buf[n], nil
		}
		l.r.Discard(1)
		next, err := l.r.ReadByte()
		switch {
		case err == nil && next == '/':
			err = l.skipUntil("\n")
		case err == nil && next == '*':
			err = l.skipUntil("*/")
		default:
			return 0, l.errorf("unexpected '/'")
		}
		if err != nil {
			return 0, err
		}
	}
}

// skipUntil skips past the next occurrence of end, or to the end of the
// file. A comment longer than maxLineLen is an error.
func (l *dotLexer) skipUntil(end string) error {
	matched := 0
	for skipped := 0; matched < len(end); skipped++ {
		if skipped > maxLineLen {
			return l.errorf("comment longer than %d bytes", maxLineLen)
		}
		c, err := l.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return l.readError(err)
		}
		if c == '\n' {
			l.line++
		}
		switch {
		case c == end[matched]:
			matched++
		case c == end[0]:
			matched = 1
		default:
			matched = 0
		}
	}
	return nil
}
