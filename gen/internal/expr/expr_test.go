package expr

import (
	"strings"
	"testing"
)

func testEnv() *Env {
	syms := map[string]Symbol{
		"n":    {Kind: "var", Type: Int, Go: "v.N"},
		"on":   {Kind: "param", Type: Bool, Go: "m.params.On"},
		"t1":   {Kind: "param", Type: Duration, Go: "m.params.T1"},
		"t2":   {Kind: "param", Type: Duration, Go: "m.params.T2"},
		"held": {Kind: "guard", Type: Bool, Go: "m.guards.Held()"},
	}
	return &Env{
		Lookup: func(name string) (Symbol, bool) { s, ok := syms[name]; return s, ok },
		Names:  []string{"n", "on", "t1", "t2", "held"},
		States: map[string]string{"idle": "m.state == XStateIdle"},
	}
}

func TestCheckAndGo(t *testing.T) {
	tests := []struct {
		src  string
		typ  Type
		goes string
	}{
		{"n < 3 && !held", Bool, "((v.N < 3) && !m.guards.Held())"},
		{"64 * t1", Duration, "(Duration(64) * m.params.T1)"},
		{"t1 * 2", Duration, "(m.params.T1 * Duration(2))"},
		{"on ? t1 : 500ms", Duration, "pick(m.params.On, m.params.T1, Duration(500000000))"},
		{"min(t2, t1 << n)", Duration, "min(m.params.T2, shl(m.params.T1, v.N))"},
		{"timer_e_total(n, t1, t2)", Duration, "timerETotal(v.N, m.params.T1, m.params.T2)"},
		{"in(idle) || n == -1", Bool, "((m.state == XStateIdle) || (v.N == -1))"},
		{"a.b.c_d + 1", Invalid, ""},
		{"1 + 2 * 3", Int, "(1 + (2 * 3))"},
		{"(1 + 2) * 3", Int, "((1 + 2) * 3)"},
		{"on == true", Bool, "(m.params.On == true)"},
	}
	for _, tt := range tests {
		n, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		typ, errs := Check(n, testEnv())
		if typ != tt.typ {
			t.Errorf("Check(%q) = %s (%v), want %s", tt.src, typ, errs, tt.typ)
			continue
		}
		if typ == Invalid {
			if len(errs) == 0 {
				t.Errorf("Check(%q) is invalid without an error", tt.src)
			}
			continue
		}
		if len(errs) > 0 {
			t.Errorf("Check(%q): %v", tt.src, errs[0])
		}
		if got := Go(n, testEnv()); got != tt.goes {
			t.Errorf("Go(%q) = %s, want %s", tt.src, got, tt.goes)
		}
	}
}

func TestErrorsPointInsideTheExpression(t *testing.T) {
	tests := []struct {
		src string
		off int
		msg string
	}{
		{"n < ", 4, `expected a value, found end of expression`},
		{"n < 3 )", 6, `unexpected ")" after expression`},
		{"n @ 3", 2, `unexpected character '@'`},
		{"1 < n < 3", 6, `cannot be chained`},
		{"min(t1)", 0, "at least two arguments"},
		{"n < t1", 2, "two ints or two durations"},
		{"held && nn", 8, `unknown name "nn"`},
		{"in(idel)", 3, `unknown state "idel"`},
		{"t1 << t2", 3, "shifted by an int"},
		{"3xs + 1", 0, "bad duration"},
		{"on ? 1 : t1", 3, "branches of ?: differ"},
		{"frob(1)", 0, `unknown function "frob"`},
		{"-on", 0, "needs int or duration"},
		{"", 0, "empty expression"},
	}
	for _, tt := range tests {
		n, err := Parse(tt.src)
		var e *Error
		if err != nil {
			e = err.(*Error)
		} else {
			_, errs := Check(n, testEnv())
			if len(errs) == 0 {
				t.Errorf("%q: no error, want %q", tt.src, tt.msg)
				continue
			}
			e = errs[0]
		}
		if e.Off != tt.off || !contains(e.Msg, tt.msg) {
			t.Errorf("%q: error at %d %q, want at %d %q", tt.src, e.Off, e.Msg, tt.off, tt.msg)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestInIsForInvariantsOnly(t *testing.T) {
	env := testEnv()
	env.States = nil
	n, _ := Parse("in(idle)")
	if _, errs := Check(n, env); len(errs) == 0 || !contains(errs[0].Msg, "invariants only") {
		t.Fatalf("in() outside invariants: %v", errs)
	}
}
