package expr

import (
	"fmt"
	"strconv"
)

// Go returns the Go source of a checked expression. Names are read through
// env; the helpers pick, shl and timerETotal are emitted once per package
// by the code generator.
func Go(n *Node, env *Env) string {
	switch n.Op {
	case "lit":
		switch n.Type {
		case Bool:
			return n.Lit
		case Duration:
			return fmt.Sprintf("Duration(%d)", n.Val)
		}
		return strconv.FormatInt(n.Val, 10)
	case "name":
		sym, _ := env.Lookup(n.Name)
		return sym.Go
	case "call":
		switch n.Name {
		case "in":
			return "(" + env.States[n.Args[0].Name] + ")"
		case "timer_e_total":
			return fmt.Sprintf("timerETotal(%s, %s, %s)", Go(n.Args[0], env), Go(n.Args[1], env), Go(n.Args[2], env))
		}
		s := n.Name + "("
		for i, a := range n.Args {
			if i > 0 {
				s += ", "
			}
			s += Go(a, env)
		}
		return s + ")"
	case "?":
		return fmt.Sprintf("pick(%s, %s, %s)", Go(n.Args[0], env), Go(n.Args[1], env), Go(n.Args[2], env))
	case "u!":
		return "!" + Go(n.Args[0], env)
	case "u-":
		return "-" + Go(n.Args[0], env)
	}
	l, r := Go(n.Args[0], env), Go(n.Args[1], env)
	switch n.Op {
	case "<<":
		return fmt.Sprintf("shl(%s, %s)", l, r)
	case "*":
		if n.Args[0].Type == Int && n.Args[1].Type == Duration {
			l = "Duration(" + l + ")"
		}
		if n.Args[0].Type == Duration && n.Args[1].Type == Int {
			r = "Duration(" + r + ")"
		}
	}
	return "(" + l + " " + n.Op + " " + r + ")"
}
