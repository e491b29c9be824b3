package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonReader reads a JSON document from a stream one token at a time, for
// the path-info reader. It is several times faster than encoding/json, which
// scans every value twice and decodes through reflection, and as strict: it
// accepts only what encoding/json accepts (invalid UTF-8 in strings aside,
// which it passes through instead of replacing; a store path never contains
// any).
type jsonReader struct {
	r       *bufio.Reader
	offset  int64  // of the next byte, for errors
	scratch []byte // holds the last string read
}

// maxJSONDepth bounds the nesting of skipped values, as encoding/json does.
const maxJSONDepth = 10000

func newJSONReader(r io.Reader) *jsonReader {
	return &jsonReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// errorf returns an error located at the current offset.
func (j *jsonReader) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", j.offset, fmt.Sprintf(format, args...))
}

// readErr turns a failure to read into an error: the end of the input is
// always unexpected, since the caller wanted more.
func (j *jsonReader) readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("unexpected end of JSON input")
	}
	return err
}

// peek skips white space and returns the next byte, left unread. At the end
// of the input it returns 0 and io.EOF.
func (j *jsonReader) peek() (byte, error) {
	for {
		buf, err := j.r.Peek(1)
		if err != nil {
			return 0, err
		}
		switch buf[0] {
		case ' ', '\t', '\n', '\r':
			j.r.Discard(1)
			j.offset++
		default:
			return buf[0], nil
		}
	}
}

// describe names the token that starts with c, for errors.
func describe(c byte) string {
	switch {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	}
	return fmt.Sprintf("%q", c)
}

// consume reads the byte c, after white space.
func (j *jsonReader) consume(c byte) error {
	next, err := j.peek()
	if err != nil {
		return j.readErr(err)
	}
	if next != c {
		return j.errorf("expected %q, found %s", c, describe(next))
	}
	j.r.Discard(1)
	j.offset++
	return nil
}

// more reads what follows an element of an array or object: a comma (more
// elements follow) or the closing bracket or brace end (none do).
func (j *jsonReader) more(end byte) (bool, error) {
	c, err := j.peek()
	if err != nil {
		return false, j.readErr(err)
	}
	switch c {
	case ',':
		j.r.Discard(1)
		j.offset++
		return true, nil
	case end:
		j.r.Discard(1)
		j.offset++
		return false, nil
	}
	return false, j.errorf("expected ',' or %q, found %s", end, describe(c))
}

// open reads the opening bracket or brace open of an array or object that
// ends with end, and reports whether an element follows.
func (j *jsonReader) open(open, end byte) (bool, error) {
	if err := j.consume(open); err != nil {
		return false, err
	}
	c, err := j.peek()
	if err != nil {
		return false, j.readErr(err)
	}
	if c == end {
		j.r.Discard(1)
		j.offset++
		return false, nil
	}
	return true, nil
}

// key reads an object key and its colon. The key is valid until the next
// string is read.
func (j *jsonReader) key() ([]byte, error) {
	key, err := j.str()
	if err != nil {
		return nil, err
	}
	return key, j.consume(':')
}

// isNull reads null if it comes next.
func (j *jsonReader) isNull() (bool, error) {
	c, err := j.peek()
	if err != nil {
		return false, j.readErr(err)
	}
	if c != 'n' {
		return false, nil
	}
	return true, j.literal("null")
}

// str reads a string, valid until the next string is read.
func (j *jsonReader) str() ([]byte, error) {
	if err := j.consume('"'); err != nil {
		return nil, err
	}
	j.scratch = j.scratch[:0]
	for {
		// Copy the plain bytes in the buffer in one go.
		buf, err := j.r.Peek(1)
		if err != nil {
			return nil, j.readErr(err)
		}
		buf, _ = j.r.Peek(j.r.Buffered())
		n := 0
		for n < len(buf) && buf[n] != '"' && buf[n] != '\\' && buf[n] >= 0x20 {
			n++
		}
		j.scratch = append(j.scratch, buf[:n]...)
		j.r.Discard(n)
		j.offset += int64(n)
		if n == len(buf) {
			continue
		}
		switch c := buf[n]; {
		case c == '"':
			j.r.Discard(1)
			j.offset++
			return j.scratch, nil
		case c == '\\':
			if err := j.escape(); err != nil {
				return nil, err
			}
		default:
			return nil, j.errorf("control character %q in a string", c)
		}
	}
}

// simpleEscapes maps the byte after a backslash to the byte it stands for,
// or to 0 where it is not an escape of one byte.
var simpleEscapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// escape decodes the escape sequence that comes next.
func (j *jsonReader) escape() error {
	seq, err := j.r.Peek(2)
	if err != nil {
		return j.readErr(err)
	}
	if c := simpleEscapes[seq[1]]; c != 0 {
		j.scratch = append(j.scratch, c)
		j.r.Discard(2)
		j.offset += 2
		return nil
	}
	r, ok := j.peekHex4()
	if !ok {
		seq, err := j.r.Peek(6)
		if len(seq) < 6 && err != nil && seq[1] == 'u' {
			return j.readErr(err)
		}
		return j.errorf("invalid escape %q in a string", seq)
	}
	j.r.Discard(6)
	j.offset += 6
	if utf16.IsSurrogate(r) {
		// Two \u escapes in a row may encode a character beyond U+FFFF;
		// otherwise a surrogate becomes U+FFFD and the next escape stands
		// on its own, as in encoding/json.
		r2, ok := j.peekHex4()
		if pair := utf16.DecodeRune(r, r2); ok && pair != utf8.RuneError {
			j.r.Discard(6)
			j.offset += 6
			r = pair
		} else {
			r = utf8.RuneError
		}
	}
	j.scratch = utf8.AppendRune(j.scratch, r)
	return nil
}

// peekHex4 decodes the \uXXXX escape that comes next, without reading it.
func (j *jsonReader) peekHex4() (rune, bool) {
	seq, err := j.r.Peek(6)
	if err != nil || seq[0] != '\\' || seq[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range seq[2:] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// literal reads the literal word (true, false or null).
func (j *jsonReader) literal(word string) error {
	buf, err := j.r.Peek(len(word))
	if err != nil && len(buf) < len(word) && string(buf) == word[:len(buf)] {
		return j.readErr(err)
	}
	if string(buf) != word {
		return j.errorf("invalid literal, expected %s", word)
	}
	j.r.Discard(len(word))
	j.offset += int64(len(word))
	return nil
}

// boolean reads true or false.
func (j *jsonReader) boolean() (bool, error) {
	c, err := j.peek()
	if err != nil {
		return false, j.readErr(err)
	}
	switch c {
	case 't':
		return true, j.literal("true")
	case 'f':
		return false, j.literal("false")
	}
	return false, j.errorf("expected a boolean, found %s", describe(c))
}

// number reads a number and returns its text, valid until the next read.
func (j *jsonReader) number() ([]byte, error) {
	c, err := j.peek()
	if err != nil {
		return nil, j.readErr(err)
	}
	if c != '-' && (c < '0' || c > '9') {
		return nil, j.errorf("expected a number, found %s", describe(c))
	}
	j.scratch = j.scratch[:0]
	for {
		c, err := j.r.ReadByte()
		if err == io.EOF {
			break // the number ends with the input
		}
		if err != nil {
			return nil, err
		}
		if !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			j.r.UnreadByte()
			break
		}
		j.scratch = append(j.scratch, c)
		j.offset++
	}
	if !isJSONNumber(j.scratch) {
		return nil, j.errorf("invalid number %q", j.scratch)
	}
	return j.scratch, nil
}

// isJSONNumber checks JSON's number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s []byte) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// skip reads a value of any type and forgets it.
func (j *jsonReader) skip() error {
	return j.skipNested(0)
}

func (j *jsonReader) skipNested(depth int) error {
	if depth > maxJSONDepth {
		return j.errorf("exceeded max depth %d", maxJSONDepth)
	}
	c, err := j.peek()
	if err != nil {
		return j.readErr(err)
	}
	switch {
	case c == '"':
		_, err = j.str()
		return err
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		more, err := j.open(c, end)
		for err == nil && more {
			if c == '{' {
				if _, err = j.key(); err != nil {
					return err
				}
			}
			if err = j.skipNested(depth + 1); err != nil {
				return err
			}
			more, err = j.more(end)
		}
		return err
	case c == 't' || c == 'f':
		_, err = j.boolean()
		return err
	case c == 'n':
		return j.literal("null")
	default:
		_, err = j.number()
		return err
	}
}

// end checks that nothing but white space is left.
func (j *jsonReader) end() error {
	c, err := j.peek()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	return j.errorf("found %s after the JSON value", describe(c))
}
