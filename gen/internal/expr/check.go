package expr

import (
	"fmt"
	"strings"
)

// Symbol is a name an expression may read.
type Symbol struct {
	Kind string // "param", "var", "derived" or "guard", for messages
	Type Type
	Go   string // the Go expression that reads it in generated code
	C    string // the C expression that reads it in generated C
}

// Env tells the checker which names exist.
type Env struct {
	// Lookup finds a name.
	Lookup func(name string) (Symbol, bool)
	// Names lists every name, for "did you mean" hints.
	Names []string
	// States maps state names to the Go expression that tests for them; nil
	// where in(state) is not allowed (it is, in invariants only).
	States map[string]string
	// CStates is States for generated C.
	CStates map[string]string
	// Suggest formats a hint for an unknown name.
	Suggest func(name string, candidates []string) string
}

// Funcs are the built-in functions, with their documentation.
var Funcs = map[string]string{
	"min":           "min(a, b, ...): the smallest of two or more ints or durations",
	"max":           "max(a, b, ...): the largest of two or more ints or durations",
	"timer_e_total": "timer_e_total(n, t1, t2): RFC 3261 17.1.2.2 Timer E, the time from the first of n transmissions until the timer after the last one fires (sum of min(t1*2^k, t2), k < n)",
	"in":            "in(state): the machine is in that state (invariants only)",
}

// Check resolves names and computes types, recording every problem. It
// returns the type of n, or Invalid.
func Check(n *Node, env *Env) (Type, []*Error) {
	c := &checker{env: env}
	t := c.check(n)
	return t, c.errs
}

type checker struct {
	env  *Env
	errs []*Error
}

func (c *checker) errorf(off int, format string, args ...any) Type {
	c.errs = append(c.errs, &Error{off, fmt.Sprintf(format, args...)})
	return Invalid
}

func (c *checker) check(n *Node) Type {
	n.Type = c.typeOf(n)
	return n.Type
}

func (c *checker) typeOf(n *Node) Type {
	switch n.Op {
	case "lit":
		return n.Type
	case "name":
		sym, ok := c.env.Lookup(n.Name)
		if !ok {
			hint := ""
			if c.env.Suggest != nil {
				hint = c.env.Suggest(n.Name, c.env.Names)
			}
			if _, isState := c.env.States[n.Name]; isState {
				hint = fmt.Sprintf(" (a state: write in(%s))", n.Name)
			}
			return c.errorf(n.Off, "unknown name %q%s", n.Name, hint)
		}
		return sym.Type
	case "call":
		return c.call(n)
	case "?":
		cond, a, b := c.check(n.Args[0]), c.check(n.Args[1]), c.check(n.Args[2])
		if cond != Invalid && cond != Bool {
			c.errorf(n.Args[0].Off, "condition of ?: is %s, want bool", cond)
		}
		if a == Invalid || b == Invalid {
			return Invalid
		}
		if a != b {
			return c.errorf(n.Off, "branches of ?: differ: %s and %s", a, b)
		}
		return a
	case "u!":
		if t := c.check(n.Args[0]); t != Bool && t != Invalid {
			return c.errorf(n.Off, "operator ! needs bool, got %s", t)
		}
		return Bool
	case "u-":
		t := c.check(n.Args[0])
		if t == Bool {
			return c.errorf(n.Off, "operator - needs int or duration, got bool")
		}
		return t
	}
	l, r := c.check(n.Args[0]), c.check(n.Args[1])
	if l == Invalid || r == Invalid {
		if n.Op == "&&" || n.Op == "||" || strings.ContainsAny(n.Op, "=<>!") && n.Op != "<<" {
			return Bool
		}
		return Invalid
	}
	switch n.Op {
	case "&&", "||":
		if l != Bool || r != Bool {
			return c.errorf(n.Off, "operator %s needs bool operands, got %s and %s", n.Op, l, r)
		}
		return Bool
	case "==", "!=":
		if l != r {
			return c.errorf(n.Off, "cannot compare %s with %s", l, r)
		}
		return Bool
	case "<", "<=", ">", ">=":
		if l != r || l == Bool {
			return c.errorf(n.Off, "operator %s needs two ints or two durations, got %s and %s", n.Op, l, r)
		}
		return Bool
	case "+", "-":
		if l != r || l == Bool {
			return c.errorf(n.Off, "operator %s needs two ints or two durations, got %s and %s", n.Op, l, r)
		}
		return l
	case "*":
		switch {
		case l == Int && r == Int:
			return Int
		case l == Int && r == Duration, l == Duration && r == Int:
			return Duration
		}
		return c.errorf(n.Off, "operator * needs ints, or an int and a duration, got %s and %s", l, r)
	case "<<":
		if l == Bool || r != Int {
			return c.errorf(n.Off, "operator << needs an int or duration shifted by an int, got %s and %s", l, r)
		}
		return l
	}
	return c.errorf(n.Off, "unknown operator %q", n.Op)
}

func (c *checker) call(n *Node) Type {
	switch n.Name {
	case "in":
		if c.env.States == nil {
			return c.errorf(n.Off, "in(state) is allowed in invariants only")
		}
		if len(n.Args) != 1 || n.Args[0].Op != "name" {
			return c.errorf(n.Off, "in needs one state name")
		}
		arg := n.Args[0]
		if _, ok := c.env.States[arg.Name]; !ok {
			names := make([]string, 0, len(c.env.States))
			for s := range c.env.States {
				names = append(names, s)
			}
			hint := ""
			if c.env.Suggest != nil {
				hint = c.env.Suggest(arg.Name, names)
			}
			return c.errorf(arg.Off, "unknown state %q%s", arg.Name, hint)
		}
		return Bool
	case "min", "max":
		if len(n.Args) < 2 {
			return c.errorf(n.Off, "%s needs at least two arguments", n.Name)
		}
		var want Type
		for _, a := range n.Args {
			t := c.check(a)
			switch {
			case t == Invalid:
				return Invalid
			case t == Bool:
				return c.errorf(a.Off, "%s needs ints or durations, got bool", n.Name)
			case want == Invalid:
				want = t
			case t != want:
				return c.errorf(a.Off, "%s mixes %s and %s", n.Name, want, t)
			}
		}
		return want
	case "timer_e_total":
		want := []Type{Int, Duration, Duration}
		if len(n.Args) != len(want) {
			return c.errorf(n.Off, "timer_e_total needs 3 arguments (n, t1, t2), got %d", len(n.Args))
		}
		for i, a := range n.Args {
			if t := c.check(a); t != Invalid && t != want[i] {
				c.errorf(a.Off, "argument %d of timer_e_total is %s, want %s", i+1, t, want[i])
			}
		}
		return Duration
	}
	names := make([]string, 0, len(Funcs))
	for f := range Funcs {
		names = append(names, f)
	}
	hint := ""
	if c.env.Suggest != nil {
		hint = c.env.Suggest(n.Name, names)
	}
	return c.errorf(n.Off, "unknown function %q%s", n.Name, hint)
}
