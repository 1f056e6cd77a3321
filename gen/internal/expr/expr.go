// Package expr is the model's small expression language: guards, timer
// durations, variable updates and invariants are written in it, checked
// against the model's names and types, and compiled to Go.
//
// Grammar, loosest binding first:
//
//	expr    = or [ "?" expr ":" expr ]
//	or      = and { "||" and }
//	and     = cmp { "&&" cmp }
//	cmp     = sum [ ("=="|"!="|"<"|"<="|">"|">=") sum ]
//	sum     = prod { ("+"|"-") prod }
//	prod    = unary { ("*"|"<<") unary }
//	unary   = ("!"|"-") unary | primary
//	primary = int | duration | "true" | "false" | name | name "(" args ")" | "(" expr ")"
//
// Names are [a-z][a-z0-9_.]*; durations are Go duration literals such as 500ms.
package expr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Type is the type of an expression.
type Type int

const (
	// Invalid marks an expression that failed to check.
	Invalid Type = iota
	// Bool is true or false.
	Bool
	// Int is a whole number.
	Int
	// Duration is a span of time (nanoseconds in generated code).
	Duration
)

func (t Type) String() string {
	switch t {
	case Bool:
		return "bool"
	case Int:
		return "int"
	case Duration:
		return "duration"
	}
	return "invalid"
}

// ParseType reads a type name as written in a model.
func ParseType(s string) (Type, bool) {
	switch s {
	case "bool":
		return Bool, true
	case "int":
		return Int, true
	case "duration":
		return Duration, true
	}
	return Invalid, false
}

// Error is a problem at a byte offset inside the expression text.
type Error struct {
	Off int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("offset %d: %s", e.Off, e.Msg) }

// Node is a parsed expression.
type Node struct {
	Op   string // "lit", "name", "call", "?", or an operator
	Off  int    // byte offset of the node in the source
	Name string // for "name" and "call"
	Lit  string // literal text for "lit"
	Val  int64  // literal value: 0/1 for bools, nanoseconds for durations
	Args []*Node
	Type Type // set by Check
}

type token struct {
	kind string // "int", "dur", "name", "op", "eof"
	text string
	off  int
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.' || src[j] >= 'a' && src[j] <= 'z' || src[j] == 'µ') {
				j++
			}
			text := src[i:j]
			if strings.IndexFunc(text, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
				toks = append(toks, token{"int", text, i})
			} else {
				toks = append(toks, token{"dur", text, i})
			}
			i = j
		case c >= 'a' && c <= 'z' || c == '_' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(src) && (src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9' || src[j] == '_' || src[j] == '.') {
				j++
			}
			toks = append(toks, token{"name", src[i:j], i})
			i = j
		default:
			op := ""
			for _, cand := range []string{"||", "&&", "==", "!=", "<=", ">=", "<<", "<", ">", "+", "-", "*", "!", "(", ")", ",", "?", ":"} {
				if strings.HasPrefix(src[i:], cand) {
					op = cand
					break
				}
			}
			if op == "" {
				return nil, &Error{i, fmt.Sprintf("unexpected character %q", c)}
			}
			toks = append(toks, token{"op", op, i})
			i += len(op)
		}
	}
	return append(toks, token{"eof", "", len(src)}), nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token { t := p.toks[p.pos]; p.pos++; return t }

func (p *parser) isOp(ops ...string) bool {
	t := p.peek()
	if t.kind != "op" {
		return false
	}
	for _, o := range ops {
		if t.text == o {
			return true
		}
	}
	return false
}

func (p *parser) expect(op string) error {
	t := p.peek()
	if t.kind != "op" || t.text != op {
		return &Error{t.off, fmt.Sprintf("expected %q, found %s", op, describe(t))}
	}
	p.pos++
	return nil
}

func describe(t token) string {
	if t.kind == "eof" {
		return "end of expression"
	}
	return strconv.Quote(t.text)
}

// Parse reads an expression. It does not check names or types.
func Parse(src string) (*Node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == "eof" {
		return nil, &Error{0, "empty expression"}
	}
	n, err := p.ternary()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "eof" {
		return nil, &Error{t.off, fmt.Sprintf("unexpected %s after expression", describe(t))}
	}
	return n, nil
}

func (p *parser) ternary() (*Node, error) {
	cond, err := p.binary(0)
	if err != nil {
		return nil, err
	}
	if !p.isOp("?") {
		return cond, nil
	}
	q := p.next()
	a, err := p.ternary()
	if err != nil {
		return nil, err
	}
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	b, err := p.ternary()
	if err != nil {
		return nil, err
	}
	return &Node{Op: "?", Off: q.off, Args: []*Node{cond, a, b}}, nil
}

var levels = [][]string{
	{"||"},
	{"&&"},
	{"==", "!=", "<", "<=", ">", ">="},
	{"+", "-"},
	{"*", "<<"},
}

func (p *parser) binary(level int) (*Node, error) {
	if level == len(levels) {
		return p.unary()
	}
	left, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for p.isOp(levels[level]...) {
		op := p.next()
		right, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		left = &Node{Op: op.text, Off: op.off, Args: []*Node{left, right}}
		if level == 2 && p.isOp(levels[level]...) {
			t := p.peek()
			return nil, &Error{t.off, fmt.Sprintf("comparison %q cannot be chained; use && or parentheses", t.text)}
		}
	}
	return left, nil
}

func (p *parser) unary() (*Node, error) {
	if p.isOp("!", "-") {
		op := p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &Node{Op: "u" + op.text, Off: op.off, Args: []*Node{x}}, nil
	}
	return p.primary()
}

func (p *parser) primary() (*Node, error) {
	t := p.next()
	switch t.kind {
	case "int":
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, &Error{t.off, fmt.Sprintf("integer %s out of range", t.text)}
		}
		return &Node{Op: "lit", Off: t.off, Lit: t.text, Val: v, Type: Int}, nil
	case "dur":
		d, err := time.ParseDuration(t.text)
		if err != nil {
			return nil, &Error{t.off, fmt.Sprintf("bad duration %q (write it like 500ms, 32s or 30m)", t.text)}
		}
		return &Node{Op: "lit", Off: t.off, Lit: t.text, Val: int64(d), Type: Duration}, nil
	case "name":
		switch t.text {
		case "true":
			return &Node{Op: "lit", Off: t.off, Lit: t.text, Val: 1, Type: Bool}, nil
		case "false":
			return &Node{Op: "lit", Off: t.off, Lit: t.text, Val: 0, Type: Bool}, nil
		}
		if !p.isOp("(") {
			return &Node{Op: "name", Off: t.off, Name: t.text}, nil
		}
		p.next()
		call := &Node{Op: "call", Off: t.off, Name: t.text}
		for !p.isOp(")") {
			a, err := p.ternary()
			if err != nil {
				return nil, err
			}
			call.Args = append(call.Args, a)
			if !p.isOp(",") {
				break
			}
			p.next()
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return call, nil
	case "op":
		if t.text == "(" {
			n, err := p.ternary()
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			return n, nil
		}
	}
	return nil, &Error{t.off, fmt.Sprintf("expected a value, found %s", describe(t))}
}

// Names calls fn for every name and call in n, in source order.
func (n *Node) Names(fn func(*Node)) {
	if n == nil {
		return
	}
	if n.Op == "name" || n.Op == "call" {
		fn(n)
	}
	for _, a := range n.Args {
		a.Names(fn)
	}
}
