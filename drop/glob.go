package drop

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A Pattern is a compiled glob over clean relative paths ("usr/share/doc/x",
// no leading slash). The syntax, element by element ("/" separates
// elements and is never matched by a wildcard):
//
//	**      a whole element: any number of path elements, none included
//	        ("a/**/b" matches "a/b" and "a/x/y/b"; "**/x" matches "x").
//	        As the last element it means "everything below": at least one
//	        element ("usr/share/doc/**" matches "usr/share/doc/x/y" but not
//	        "usr/share/doc" itself).
//	*       any run of characters within one element, the empty one and
//	        a leading dot included ("*.pyc", "lib*"); "**" inside a longer
//	        element ("a**b") is just "*"
//	?       any one character (not "/")
//	[abc]   one character from the class; ranges "[a-z]", negation
//	        "[!a-z]" or "[^a-z]"; a "]" right after "[" or "[!" is literal
//	\c      the character c, literally ("\*", "\[")
//
// Matching is case-sensitive. A leading "/" is dropped, so "/tmp/**" is
// "tmp/**"; empty and "." elements are ignored and a trailing "/" too (a
// pattern names paths, not "directories only": use "dir/**" for what is
// in a directory). ".." elements are an error, as are an empty pattern, an
// unterminated class and a trailing backslash.
type Pattern struct {
	src   string
	elems []elem
	// lit is a literal element of a pattern that starts with "**", which
	// any matching path must contain: a cheap test that rejects most paths.
	// (A pattern that starts with a literal element rejects them on its
	// first element.)
	lit string
	// suffix is set when the pattern is "**" followed by elements without
	// another "**": they match the path's last elements, or nothing.
	suffix bool
}

type elemKind uint8

const (
	elemLiteral    elemKind = iota // the element equals lit
	elemAny                        // any one element ("*")
	elemGlob                       // the element matches toks
	elemDoubleStar                 // any number of elements
)

type elem struct {
	kind elemKind
	lit  string
	toks []token
}

type tokenKind uint8

const (
	tokLiteral tokenKind = iota
	tokStar
	tokAnyChar
	tokClass
)

type token struct {
	kind   tokenKind
	lit    string      // tokLiteral
	ranges []runeRange // tokClass
	negate bool        // tokClass
}

type runeRange struct{ lo, hi rune }

// Glob compiles pattern (see Pattern for the syntax).
func Glob(pattern string) (*Pattern, error) {
	p := &Pattern{src: pattern}
	var parts []string
	for _, s := range strings.Split(strings.TrimLeft(pattern, "/"), "/") {
		switch s {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("glob %q: %q elements are not allowed", pattern, "..")
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("glob %q: matches nothing", pattern)
	}
	for i, s := range parts {
		if s == "**" {
			if i == len(parts)-1 {
				// "everything below": one element, then any number more.
				p.elems = append(p.elems, elem{kind: elemAny})
			}
			if n := len(p.elems); n > 0 && p.elems[n-1].kind == elemDoubleStar {
				continue // "**/**" is "**"
			}
			p.elems = append(p.elems, elem{kind: elemDoubleStar})
			continue
		}
		e, err := compileElem(s)
		if err != nil {
			return nil, fmt.Errorf("glob %q: %w", pattern, err)
		}
		p.elems = append(p.elems, e)
		if e.kind == elemLiteral && len(e.lit) > len(p.lit) && p.elems[0].kind == elemDoubleStar {
			p.lit = e.lit
		}
	}
	p.suffix = p.elems[0].kind == elemDoubleStar
	for _, e := range p.elems[1:] {
		if e.kind == elemDoubleStar {
			p.suffix = false
		}
	}
	return p, nil
}

// mustGlob is Glob for the built-in patterns, which the tests prove valid.
func mustGlob(pattern string) *Pattern {
	p, err := Glob(pattern)
	if err != nil {
		panic(err)
	}
	return p
}

// firstLiteral returns the pattern's first element if it is a literal:
// only paths that start with that element can match.
func (p *Pattern) firstLiteral() (string, bool) {
	if p.elems[0].kind == elemLiteral {
		return p.elems[0].lit, true
	}
	return "", false
}

// String returns the pattern as it was given.
func (p *Pattern) String() string { return p.src }

// Match reports whether path, a clean relative path, matches p. A leading
// or trailing "/" on path is ignored.
func (p *Pattern) Match(path string) bool {
	path = strings.Trim(path, "/")
	var buf [48]string
	return p.matchElems(path, splitPath(path, buf[:0]))
}

// matchElems matches the elements of path, split by splitPath.
func (p *Pattern) matchElems(path string, elems []string) bool {
	if p.suffix {
		tail := p.elems[1:]
		if len(elems) < len(tail) {
			return false
		}
		elems = elems[len(elems)-len(tail):]
		for i := range tail {
			if !tail[i].match(elems[i]) {
				return false
			}
		}
		return true
	}
	if p.lit != "" && !strings.Contains(path, p.lit) {
		return false
	}
	// The element-level twin of the classic wildcard matcher: "**" is the
	// star, every other element matches exactly one path element, so
	// backtracking to the last "**" is enough.
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(elems) {
		if pi < len(p.elems) {
			e := &p.elems[pi]
			if e.kind == elemDoubleStar {
				starP, starS = pi, si
				pi++
				continue
			}
			if e.match(elems[si]) {
				pi++
				si++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(p.elems) && p.elems[pi].kind == elemDoubleStar {
		pi++
	}
	return pi == len(p.elems)
}

// splitPath appends the elements of path to buf, skipping empty ones.
func splitPath(path string, buf []string) []string {
	for path != "" {
		i := strings.IndexByte(path, '/')
		if i < 0 {
			return append(buf, path)
		}
		if i > 0 {
			buf = append(buf, path[:i])
		}
		path = path[i+1:]
	}
	return buf
}

func (e *elem) match(s string) bool {
	switch e.kind {
	case elemLiteral:
		return s == e.lit
	case elemAny:
		return true
	case elemGlob:
		return matchTokens(e.toks, s)
	}
	return false
}

// matchTokens matches one element. Every token but the star matches a
// string of one definite length at a given position, so the greedy
// algorithm with one backtrack point (the last star) is exact.
func matchTokens(toks []token, s string) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	for si < len(s) {
		if ti < len(toks) {
			t := &toks[ti]
			if t.kind == tokStar {
				starT, starS = ti, si
				ti++
				continue
			}
			if n := t.match(s[si:]); n > 0 {
				ti++
				si += n
				continue
			}
		}
		if starT < 0 {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starS:])
		starS += w
		ti, si = starT+1, starS
	}
	for ti < len(toks) && toks[ti].kind == tokStar {
		ti++
	}
	return ti == len(toks)
}

// match returns how many bytes at the start of s the token matches, or 0.
func (t *token) match(s string) int {
	switch t.kind {
	case tokLiteral:
		if strings.HasPrefix(s, t.lit) {
			return len(t.lit)
		}
	case tokAnyChar:
		_, w := utf8.DecodeRuneInString(s)
		return w
	case tokClass:
		r, w := utf8.DecodeRuneInString(s)
		in := false
		for _, rr := range t.ranges {
			if rr.lo <= r && r <= rr.hi {
				in = true
				break
			}
		}
		if in != t.negate {
			return w
		}
	}
	return 0
}

var errTrailingBackslash = errors.New("trailing backslash")

// compileElem compiles one element that is not "**".
func compileElem(s string) (elem, error) {
	if s == "*" {
		return elem{kind: elemAny}, nil
	}
	var toks []token
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, token{kind: tokLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return elem{}, errTrailingBackslash
			}
			_, w := utf8.DecodeRuneInString(s[i+1:])
			lit.WriteString(s[i+1 : i+1+w])
			i += 1 + w
		case '*':
			flush()
			if len(toks) == 0 || toks[len(toks)-1].kind != tokStar {
				toks = append(toks, token{kind: tokStar})
			}
			i++
		case '?':
			flush()
			toks = append(toks, token{kind: tokAnyChar})
			i++
		case '[':
			flush()
			t, n, err := compileClass(s[i:])
			if err != nil {
				return elem{}, err
			}
			toks = append(toks, t)
			i += n
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	if len(toks) == 1 && toks[0].kind == tokLiteral {
		return elem{kind: elemLiteral, lit: toks[0].lit}, nil
	}
	if len(toks) == 1 && toks[0].kind == tokStar {
		return elem{kind: elemAny}, nil
	}
	return elem{kind: elemGlob, toks: toks}, nil
}

// compileClass compiles the class at the start of s ("[...]") and returns
// the number of bytes it takes.
func compileClass(s string) (token, int, error) {
	t := token{kind: tokClass}
	i := 1
	if i < len(s) && (s[i] == '!' || s[i] == '^') {
		t.negate = true
		i++
	}
	first := true
	for {
		if i >= len(s) {
			return token{}, 0, fmt.Errorf("unterminated character class in %q", s)
		}
		if s[i] == ']' && !first {
			return t, i + 1, nil
		}
		first = false
		lo, n, err := classRune(s[i:])
		if err != nil {
			return token{}, 0, err
		}
		i += n
		hi := lo
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			hi, n, err = classRune(s[i+1:])
			if err != nil {
				return token{}, 0, err
			}
			if hi < lo {
				return token{}, 0, fmt.Errorf("bad range %c-%c in character class", lo, hi)
			}
			i += 1 + n
		}
		t.ranges = append(t.ranges, runeRange{lo, hi})
	}
}

// classRune reads one (possibly escaped) character of a class.
func classRune(s string) (rune, int, error) {
	n := 0
	if s[0] == '\\' {
		if len(s) == 1 {
			return 0, 0, errTrailingBackslash
		}
		s, n = s[1:], 1
	}
	r, w := utf8.DecodeRuneInString(s)
	return r, n + w, nil
}
