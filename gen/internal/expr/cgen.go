package expr

import (
	"fmt"
	"strings"
)

// C returns the C99 source of a checked expression, computing as the Go
// code does: ints and durations are int64_t and wrap around on overflow
// (sf_add, sf_sub, sf_mul and sf_neg compute in uint64_t, where C defines
// it), << saturates as Go's shl, and a ?: evaluates like pick. The
// helpers are the sf_ functions of the generated sipfailover_fsm.h.
func C(n *Node, env *Env) string {
	switch n.Op {
	case "lit":
		if n.Type == Bool {
			return n.Lit
		}
		return fmt.Sprintf("INT64_C(%d)", n.Val)
	case "name":
		sym, _ := env.Lookup(n.Name)
		return sym.C
	case "call":
		switch n.Name {
		case "in":
			return "(" + env.CStates[n.Args[0].Name] + ")"
		case "timer_e_total":
			return fmt.Sprintf("sf_timer_e_total(%s, %s, %s)", C(n.Args[0], env), C(n.Args[1], env), C(n.Args[2], env))
		}
		// min and max of two or more: nested, left to right.
		s := C(n.Args[0], env)
		for _, a := range n.Args[1:] {
			s = fmt.Sprintf("sf_%s(%s, %s)", n.Name, s, C(a, env))
		}
		return s
	case "?":
		return fmt.Sprintf("(%s ? %s : %s)", C(n.Args[0], env), C(n.Args[1], env), C(n.Args[2], env))
	case "u!":
		return "!" + C(n.Args[0], env)
	case "u-":
		return "sf_neg(" + C(n.Args[0], env) + ")"
	}
	l, r := C(n.Args[0], env), C(n.Args[1], env)
	switch n.Op {
	case "<<":
		return fmt.Sprintf("sf_shl(%s, %s)", l, r)
	case "+":
		return fmt.Sprintf("sf_add(%s, %s)", l, r)
	case "-":
		return fmt.Sprintf("sf_sub(%s, %s)", l, r)
	case "*":
		return fmt.Sprintf("sf_mul(%s, %s)", l, r)
	}
	if strings.ContainsAny(n.Op, "=<>!&|") {
		return "(" + l + " " + n.Op + " " + r + ")"
	}
	panic("expr.C: unknown operator " + n.Op)
}
