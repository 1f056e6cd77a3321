package emit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sipfailover/sipfailover/gen/internal/expr"
	"github.com/sipfailover/sipfailover/gen/internal/model"
)

// Promela returns the machine as a Promela program for the SPIN model
// checker (verify/<machine>.pml), with its environment:
//
//   - Time is abstracted away: a timer is armed or not, and an armed timer
//     may fire after any number of other events. Every order of expiries
//     is explored, the real ones among them, so a safety property that
//     holds here holds for any durations; one that fails may need durations
//     to rule the run out (the trail says which timers fired).
//   - Params that only durations read are dropped; the others take every
//     value of their domain (verify.domains), chosen at the start and, for
//     those the runtime changes (verify.varies), again after the actions
//     that change them or before any event.
//   - Guards, the facts only the runtime knows, are chosen anew at every
//     event.
//   - The environment sends any event at any time, except that an answer
//     (verify.answers) comes only while a request it answers is
//     unanswered, and a timer's event only while the timer is armed.
//
// Without a PROP_<id> macro the program checks safety: every always
// invariant, every only invariant, a single request in flight where
// verify.answers says so, every variable within its bounds and every event
// handled, as assertions after each event. With -DPROP_<id> it checks the
// leads-to invariant <id> as LTL under weak fairness (pan -a -f), the
// environment restricted to the events the invariant's env lists: each
// armed timer fires eventually and each request is answered eventually
// (each by a process of its own, so that weak fairness reaches it), and the
// other events listed come a finite number of times.
func Promela(m *model.Model) ([]byte, error) {
	g := &pmlGen{m: m, used: map[string]bool{}}
	if err := g.collect(); err != nil {
		return nil, fmt.Errorf("%s: %w", m.Path, err)
	}
	g.program()
	if g.err != nil {
		return nil, fmt.Errorf("%s: %w", m.Path, g.err)
	}
	return []byte(g.b.String()), nil
}

type pmlGen struct {
	m     *model.Model
	b     strings.Builder
	err   error
	used  map[string]bool   // params and derived that a non-duration expression reads
	subst map[string]string // names read as these Promela expressions instead
}

func (g *pmlGen) p(format string, args ...any) { fmt.Fprintf(&g.b, format+"\n", args...) }

func pmlName(prefix, name string) string {
	return prefix + strings.NewReplacer(".", "_").Replace(name)
}

func (g *pmlGen) state(name string) string { return pmlName("S_", name) }
func (g *pmlGen) event(name string) string { return pmlName("E_", name) }
func (g *pmlGen) timer(name string) string { return pmlName("t_", name) }

// collect finds the params, vars and derived values that conditions and
// invariants read, and what the sets of those vars read in turn: only
// those are tracked. A var only timer durations read (the back-off's
// failure count) is left out with its sets, since time is abstract here.
func (g *pmlGen) collect() error {
	var walk func(n *expr.Node)
	walk = func(n *expr.Node) {
		if n == nil {
			return
		}
		if n.Op == "name" && !g.used[n.Name] {
			g.used[n.Name] = true
			for _, d := range g.m.Derived {
				if d.Name == n.Name {
					walk(d.Expr.Node)
				}
			}
		}
		for _, a := range n.Args {
			walk(a)
		}
	}
	use := func(e *model.Expr) {
		if e != nil && e.Node != nil {
			walk(e.Node)
		}
	}
	var sets []*model.Step
	steps := func(ss []*model.Step) {
		for _, s := range ss {
			switch s.Kind {
			case model.StepSet:
				sets = append(sets, s)
			case model.StepArm:
				use(g.m.Timer(s.Name.Name).Enabled)
			}
		}
	}
	for _, s := range g.m.States {
		steps(s.Entry)
		steps(s.Exit)
		for _, t := range s.After {
			use(g.m.Timer(t.Name).Enabled)
		}
	}
	for _, t := range g.m.Transitions {
		for _, b := range t.Branches {
			use(b.If)
			steps(b.Do)
		}
	}
	for _, inv := range g.m.Invariants {
		use(inv.Always)
		if inv.LeadsTo != nil {
			use(inv.LeadsTo.When)
		}
	}
	for name := range g.m.Verify.Varies {
		g.used[name] = true
	}
	use(g.m.Verify.Requires)
	for grew := true; grew; {
		grew = false
		for _, s := range sets {
			if g.used[s.Name.Name] && !g.usedSet(s) {
				g.used["set:"+s.Src] = true
				use(s.Value)
				grew = true
			}
		}
	}
	return nil
}

// usedSet says whether the set step's value has been walked.
func (g *pmlGen) usedSet(s *model.Step) bool { return g.used["set:"+s.Src] }

// expr is n in Promela; a duration cannot be tracked and is an error.
func (g *pmlGen) expr(n *expr.Node) string {
	if n.Type == expr.Duration && g.err == nil {
		g.err = fmt.Errorf("the model checker tracks no durations; %q is one (offset %d)", n.Name+n.Lit, n.Off)
	}
	switch n.Op {
	case "lit":
		if n.Type == expr.Bool {
			return n.Lit
		}
		return fmt.Sprint(n.Val)
	case "name":
		if x, ok := g.subst[n.Name]; ok {
			return x
		}
		switch g.kind(n.Name) {
		case "param":
			return pmlName("p_", n.Name)
		case "var":
			return pmlName("v_", n.Name)
		case "guard":
			return pmlName("g_", n.Name)
		}
		return pmlName("d_", n.Name)
	case "call":
		switch n.Name {
		case "in":
			return "(state == " + g.state(n.Args[0].Name) + ")"
		case "min", "max":
			op := map[string]string{"min": "<", "max": ">"}[n.Name]
			acc := g.expr(n.Args[0])
			for _, a := range n.Args[1:] {
				x := g.expr(a)
				acc = fmt.Sprintf("((%s %s %s) -> (%s) : (%s))", acc, op, x, acc, x)
			}
			return acc
		}
		if g.err == nil {
			g.err = fmt.Errorf("the model checker has no %s()", n.Name)
		}
		return "0"
	case "?":
		return fmt.Sprintf("((%s) -> (%s) : (%s))", g.expr(n.Args[0]), g.expr(n.Args[1]), g.expr(n.Args[2]))
	case "u!":
		return "!" + g.expr(n.Args[0])
	case "u-":
		return "-" + g.expr(n.Args[0])
	}
	return "(" + g.expr(n.Args[0]) + " " + n.Op + " " + g.expr(n.Args[1]) + ")"
}

func (g *pmlGen) kind(name string) string {
	switch {
	case slices.ContainsFunc(g.m.Params, func(p *model.Param) bool { return p.Name == name }):
		return "param"
	case slices.ContainsFunc(g.m.Vars, func(v *model.Var) bool { return v.Name == name }):
		return "var"
	case slices.ContainsFunc(g.m.Guards, func(x *model.Guard) bool { return x.Name == name }):
		return "guard"
	}
	return "derived"
}

// domain is the values param p takes in the check.
func (g *pmlGen) domain(p *model.Param) []int64 {
	if d, ok := g.m.Verify.Domains[p.Name]; ok {
		return d
	}
	if p.Type == expr.Bool {
		return []int64{0, 1}
	}
	lo, hi := int64(0), int64(2)
	if p.Min != nil {
		lo, hi = *p.Min, *p.Min+2
	}
	if p.Max != nil {
		hi = min(hi, *p.Max)
	}
	var out []int64
	for x := lo; x <= hi; x++ {
		out = append(out, x)
	}
	return out
}

func intType(lo, hi int64) string {
	switch {
	case lo >= 0 && hi <= 255:
		return "byte"
	case lo >= -32768 && hi <= 32767:
		return "short"
	}
	return "int"
}

// tracked are the params the check tracks, in model order.
func (g *pmlGen) tracked() []*model.Param {
	var out []*model.Param
	for _, p := range g.m.Params {
		if g.used[p.Name] && p.Type != expr.Duration {
			out = append(out, p)
		}
	}
	return out
}

func (g *pmlGen) program() {
	m := g.m
	g.p("/* Code generated by %s from %s; DO NOT EDIT. */", Tool, m.Path)
	g.p("")
	g.p("/* The %s machine for the SPIN model checker: `sipfailover verify` runs it.", m.Name.Name)
	g.p("   Time is abstract: an armed timer fires after any number of other events.")
	g.p("   Without PROP_<id>: safety (assertions). With -DPROP_<id>: the leads-to")
	g.p("   invariant <id> as LTL, for pan -a -f (weak fairness). */")
	g.p("")
	first := true
	for _, inv := range m.Invariants {
		if inv.LeadsTo == nil || len(inv.LeadsTo.Fix) == 0 {
			continue
		}
		if first {
			g.p("#if defined(PROP_%s)", inv.ID.Name)
		} else {
			g.p("#elif defined(PROP_%s)", inv.ID.Name)
		}
		first = false
		for _, name := range sortedMapKeys(inv.LeadsTo.Fix) {
			g.p("#define FIX_%s %d", name, inv.LeadsTo.Fix[name])
		}
	}
	if !first {
		g.p("#endif")
		g.p("")
	}
	for i, s := range m.States {
		g.p("#define %s %d /* %s */", g.state(s.Name), i, s.Name)
	}
	for i, e := range m.Events {
		g.p("#define %s %d /* %s */", g.event(e.Name), i+1, e.Name)
	}
	g.p("")
	g.p("byte state = %s;", g.state(m.Initial().Name))
	g.p("byte ev; /* the event being delivered */")
	g.p("byte prev; /* the state before it */")
	for _, p := range g.tracked() {
		d := g.domain(p)
		typ := "bool"
		if p.Type == expr.Int {
			typ = intType(slices.Min(d), slices.Max(d))
		}
		g.p("%s %s;", typ, pmlName("p_", p.Name))
	}
	for _, v := range m.Vars {
		if !g.used[v.Name] {
			g.p("/* var %s: only timer durations read it */", v.Name)
			continue
		}
		typ := "bool"
		if v.Type == expr.Int {
			typ = intType(v.Min, v.Max)
		}
		g.p("%s %s = %d;", typ, pmlName("v_", v.Name), v.Init)
	}
	for _, x := range m.Guards {
		if g.used[x.Name] {
			g.p("bool %s;", pmlName("g_", x.Name))
		}
	}
	for _, t := range m.Timers {
		g.p("bool %s; /* armed */", g.timer(t.Name))
	}
	for _, a := range m.Verify.Answers {
		g.p("bool %s; /* a request of %s unanswered */", pmlName("pend_", a.Name), a.Name)
	}
	g.p("")
	for _, d := range m.Derived {
		if g.used[d.Name] && d.Expr.Node.Type != expr.Duration {
			g.p("#define %s (%s)", pmlName("d_", d.Name), g.expr(d.Expr.Node))
		}
	}
	g.p("#define final (%s)", g.finalExpr())
	g.p("")
	// Choosing params and guards: at the start any value of the domain (then
	// verify.requires is checked of them all), and a param chosen anew
	// keeps verify.requires with the others as they are.
	for _, p := range g.tracked() {
		for _, again := range []bool{false, true} {
			name := pmlName("start_", p.Name)
			if again {
				if len(m.Verify.Varies[p.Name]) == 0 {
					continue
				}
				name = pmlName("choose_", p.Name)
			}
			g.p("inline %s() {", name)
			g.p("#ifdef FIX_%s", p.Name)
			g.p("  %s = FIX_%s", pmlName("p_", p.Name), p.Name)
			g.p("#else")
			g.p("  if")
			for _, x := range g.domain(p) {
				val := fmt.Sprint(x)
				if p.Type == expr.Bool {
					val = map[int64]string{0: "false", 1: "true"}[x]
				}
				cond := "true"
				if r := m.Verify.Requires; r != nil && again {
					g.subst = map[string]string{p.Name: val}
					cond = g.expr(r.Node)
					g.subst = nil
				}
				g.p("  :: %s -> %s = %s", cond, pmlName("p_", p.Name), val)
			}
			g.p("  fi")
			if again {
				g.p("  ; printf(\"PARAM %s %%d\\n\", %s)", p.Name, pmlName("p_", p.Name))
			}
			g.p("#endif")
			g.p("}")
		}
	}
	g.p("inline choose_guards() {")
	g.p("  skip")
	for _, x := range m.Guards {
		if g.used[x.Name] {
			g.p("  ; if :: %[1]s = true :: %[1]s = false fi", pmlName("g_", x.Name))
		}
	}
	g.p("}")
	g.p("inline vary_before_event() {")
	g.p("  skip")
	for _, name := range sortedMapKeys(m.Verify.Varies) {
		if slices.ContainsFunc(m.Verify.Varies[name], func(r model.Ref) bool { return r.Name == "event" }) {
			g.p("  ; %s()", pmlName("choose_", name))
		}
	}
	g.p("}")
	g.p("")
	// Actions: what the environment learns from them.
	for _, a := range m.Actions {
		g.p("inline %s() {", pmlName("do_", a.Name))
		g.p("  skip")
		for _, ans := range m.Verify.Answers {
			if slices.ContainsFunc(ans.After, func(r model.Ref) bool { return r.Name == a.Name }) {
				if ans.Single {
					g.violation("  ", fmt.Sprintf("pend_%s", ans.Name), fmt.Sprintf("%s: a second request of %s while one is unanswered", a.Name, ans.Name))
				}
				g.p("  ; %s = true", pmlName("pend_", ans.Name))
			}
			if slices.ContainsFunc(ans.Ends, func(r model.Ref) bool { return r.Name == a.Name }) {
				g.p("  ; %s = false", pmlName("pend_", ans.Name))
			}
		}
		for _, name := range sortedMapKeys(m.Verify.Varies) {
			if slices.ContainsFunc(m.Verify.Varies[name], func(r model.Ref) bool { return r.Name == a.Name }) {
				// Marked: the runtime changes it after the step, not before.
				g.p("  ; printf(\"AFTER %s\\n\"); %s()", a.Name, pmlName("choose_", name))
			}
		}
		g.p("}")
	}
	g.p("")
	for _, s := range m.States {
		g.p("inline %s() {", pmlName("enter_", s.Name))
		g.p("  skip")
		g.steps("  ", s.Entry)
		for _, t := range s.After {
			g.arm("  ", t.Name)
		}
		g.p("}")
		g.p("inline %s() {", pmlName("exit_", s.Name))
		g.p("  skip")
		g.steps("  ", s.Exit)
		for _, t := range s.After {
			g.p("  ; %s = false", g.timer(t.Name))
		}
		g.p("}")
	}
	g.p("")
	g.fire()
	g.check()
	g.env()
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (g *pmlGen) finalExpr() string {
	var fs []string
	for _, s := range g.m.States {
		if s.Final {
			fs = append(fs, "state == "+g.state(s.Name))
		}
	}
	if len(fs) == 0 {
		return "false"
	}
	return strings.Join(fs, " || ")
}

// violation writes: if cond holds, print what is violated and fail.
func (g *pmlGen) violation(indent, cond, what string) {
	g.p("%s; if :: (%s) -> printf(\"VIOLATION %s\\n\"); assert(false) :: else -> skip fi", indent, cond, strings.ReplaceAll(what, `"`, `'`))
}

func (g *pmlGen) arm(indent, name string) {
	t := g.m.Timer(name)
	if t.Enabled != nil {
		g.p("%s; if :: (%s) -> %s = true :: else -> skip fi", indent, g.expr(t.Enabled.Node), g.timer(name))
		return
	}
	g.p("%s; %s = true", indent, g.timer(name))
}

func (g *pmlGen) steps(indent string, steps []*model.Step) {
	for _, s := range steps {
		switch s.Kind {
		case model.StepAction:
			g.p("%s; %s()", indent, pmlName("do_", s.Name.Name))
		case model.StepArm:
			g.arm(indent, s.Name.Name)
		case model.StepCancel:
			g.p("%s; %s = false", indent, g.timer(s.Name.Name))
		case model.StepSet:
			var v *model.Var
			for _, x := range g.m.Vars {
				if x.Name == s.Name.Name {
					v = x
				}
			}
			if !g.used[v.Name] {
				continue
			}
			val := g.expr(s.Value.Node)
			lit := s.Value.Node.Op == "lit" && s.Value.Node.Val >= v.Min && s.Value.Node.Val <= v.Max
			if v.Type == expr.Int && !lit {
				g.violation(indent, fmt.Sprintf("%s < %d || %s > %d", val, v.Min, val, v.Max), fmt.Sprintf("var %s out of [%d, %d] by: %s", v.Name, v.Min, v.Max, s.Src))
			}
			g.p("%s; %s = %s", indent, pmlName("v_", v.Name), val)
		}
	}
}

// fire writes the inline that delivers ev in the current state.
func (g *pmlGen) fire() {
	m := g.m
	g.p("inline fire() {")
	g.p("  prev = state;")
	g.p("  choose_guards();")
	g.p("  if")
	for _, s := range m.States {
		if s.Final {
			continue
		}
		g.p("  :: state == %s ->", g.state(s.Name))
		g.p("    if")
		for _, t := range m.Transitions {
			if !t.TakenIn(s.Name) {
				continue
			}
			var on []string
			for _, r := range t.On {
				on = append(on, "ev == "+g.event(r.Name))
			}
			g.p("    :: %s -> /* %s */", strings.Join(on, " || "), t.ID.Name)
			g.branches("      ", s, t, 0)
		}
		if len(s.Ignore) > 0 {
			var ign []string
			for _, r := range s.Ignore {
				ign = append(ign, "ev == "+g.event(r.Name))
			}
			g.p("    :: %s -> skip /* ignored */", strings.Join(ign, " || "))
		}
		g.p("    :: else -> printf(\"VIOLATION unhandled event %%d in %s\\n\", ev); assert(false)", s.Name)
		g.p("    fi")
	}
	g.p("  :: else -> printf(\"VIOLATION an event in the final state %%d\\n\", state); assert(false)")
	g.p("  fi;")
	g.p("  printf(\"STEP %%d %%d %%d\\n\", prev, ev, state) /* for the trail: from, event, to */")
	var names, vals []string
	for _, v := range m.Vars {
		if g.used[v.Name] {
			names = append(names, v.Name+"=%d")
			vals = append(vals, pmlName("v_", v.Name))
		}
	}
	if len(names) > 0 {
		g.p("  ; printf(\"VARS %s\\n\", %s)", strings.Join(names, " "), strings.Join(vals, ", "))
	} else {
		g.p("  ; printf(\"VARS\\n\")")
	}
	g.p("}")
	g.p("")
}

// branches writes branch k and those after it of t from s: the first whose
// condition holds is taken.
func (g *pmlGen) branches(indent string, s *model.State, t *model.Transition, k int) {
	b := t.Branches[k]
	body := func(in string) {
		to := b.Target(s.Name)
		g.p("%sskip", in)
		if t.External(b, s.Name) {
			g.p("%s; %s()", in, pmlName("exit_", s.Name))
		}
		g.steps(in, b.Do)
		if t.External(b, s.Name) {
			g.p("%s; state = %s", in, g.state(to))
			g.p("%s; %s()", in, pmlName("enter_", to))
		}
	}
	if b.If == nil {
		body(indent)
		return
	}
	g.p("%sif", indent)
	g.p("%s:: (%s) ->", indent, g.expr(b.If.Node))
	body(indent + "   ")
	g.p("%s:: else ->", indent)
	if k+1 < len(t.Branches) {
		g.branches(indent+"   ", s, t, k+1)
	} else {
		g.p("%s   skip", indent)
	}
	g.p("%sfi", indent)
}

// check writes the assertions run after every event.
func (g *pmlGen) check() {
	g.p("inline check() {")
	g.p("  skip")
	for _, inv := range g.m.Invariants {
		switch {
		case inv.Always != nil:
			g.violation("  ", "!("+g.expr(inv.Always.Node)+")", inv.ID.Name+": "+inv.Always.Src)
		case inv.Only != nil:
			o := inv.Only
			var from, to, on []string
			for _, r := range o.From {
				from = append(from, "prev == "+g.state(r.Name))
			}
			for _, r := range o.To {
				to = append(to, "state == "+g.state(r.Name))
			}
			for _, r := range o.On {
				on = append(on, "ev == "+g.event(r.Name))
			}
			g.violation("  ", fmt.Sprintf("(%s) && (%s) && !(%s)", strings.Join(from, " || "), strings.Join(to, " || "), strings.Join(on, " || ")),
				fmt.Sprintf("%s: %s to %s only on %s", inv.ID.Name, strings.Join(model.Names(o.From), "|"), strings.Join(model.Names(o.To), "|"), strings.Join(model.Names(o.On), "|")))
		}
	}
	// A search for the shortest way to a given configuration (the start of
	// a counterexample's cycle, to replay it): spin -DREACH=<condition>.
	g.p("#if defined(REACH)")
	g.violation("  ", "REACH", "reached")
	g.p("#endif")
	g.p("}")
	g.p("")
}

// option is one way the environment may send an event: when cond holds,
// choose sets ev (and clears what the sending uses up).
type option struct {
	cond   string
	choose func(indent string)
}

// deliver writes one step of an environment process: the first option
// whose condition holds (any, when several do) sets ev and hands it to the
// machine process, which takes it in the same step (a rendezvous into an
// atomic sequence). An environment process is enabled whenever its
// condition holds, which weak fairness needs; one fire() in the program
// keeps pan small.
func (g *pmlGen) deliver(indent, phase string, opts []option) {
	var conds []string
	for _, o := range opts {
		conds = append(conds, o.cond)
	}
	// The guard is one expression: an atomic step blocked half-way would
	// lose its atomicity and go on later, in another state.
	g.p("%s:: atomic {", indent)
	g.p("%s     %s!final && (%s) ->", indent, phase, strings.Join(conds, " || "))
	g.p("%s     if", indent)
	for _, o := range opts {
		g.p("%s     :: %s ->", indent, o.cond)
		o.choose(indent + "        ")
	}
	g.p("%s     fi;", indent)
	g.p("%s     deliveries ! ev }", indent)
}

// machine writes the process that takes each event the environment sends.
func (g *pmlGen) machine() {
	g.p("chan deliveries = [0] of { byte }; /* the environment hands each event to the machine */")
	g.p("proctype machine() {")
	g.p("end: do")
	g.p("  :: atomic { deliveries ? ev -> vary_before_event(); fire(); check(); ev = 0; prev = 0 /* not part of the state between events */ }")
	g.p("  od")
	g.p("}")
}

// hasSpontaneous says whether lt's assumption lets events come that are
// neither answers nor timers nor recurring: they come a finite number of
// times.
func (g *pmlGen) hasSpontaneous(lt *model.LeadsTo, spontaneous []string) bool {
	for _, e := range spontaneous {
		if (lt.Env == nil || slices.ContainsFunc(lt.Env, func(r model.Ref) bool { return r.Name == e })) &&
			!slices.ContainsFunc(lt.Recurring, func(r model.Ref) bool { return r.Name == e }) {
			return true
		}
	}
	return false
}

func (g *pmlGen) eventOption(name string) option {
	return option{"true", func(in string) { g.p("%sev = %s", in, g.event(name)) }}
}

func (g *pmlGen) timerOption(t *model.Timer) option {
	return option{g.timer(t.Name), func(in string) { g.p("%s%s = false; ev = %s", in, g.timer(t.Name), g.event(t.Event.Name)) }}
}

// answerOption answers a request of a with one of events.
func (g *pmlGen) answerOption(a *model.Answers, events []string) option {
	return option{pmlName("pend_", a.Name), func(in string) {
		g.p("%s%s = false;", in, pmlName("pend_", a.Name))
		g.p("%sif", in)
		for _, n := range events {
			g.p("%s:: ev = %s", in, g.event(n))
		}
		g.p("%sfi", in)
	}}
}

// env writes the environment: one process that sends anything for safety,
// and for each leads-to invariant the fair processes of its assumption.
func (g *pmlGen) env() {
	m := g.m
	answerOf := map[string]*model.Answers{}
	for _, a := range m.Verify.Answers {
		for _, r := range a.Events {
			answerOf[r.Name] = a
		}
	}
	var spontaneous []string
	for _, e := range m.Events {
		if e.Timer == nil && answerOf[e.Name] == nil {
			spontaneous = append(spontaneous, e.Name)
		}
	}
	start := func(procs []string) {
		g.p("init {")
		g.p("  atomic {")
		for _, p := range g.tracked() {
			g.p("    %s();", pmlName("start_", p.Name))
		}
		if r := m.Verify.Requires; r != nil {
			g.p("    end_params: %s; /* other values are not explored */", g.expr(r.Node))
		}
		for _, p := range g.tracked() {
			g.p("    printf(\"PARAM %s %%d\\n\", %s);", p.Name, pmlName("p_", p.Name))
		}
		g.p("    printf(\"START\\n\");")
		g.p("    %s();", pmlName("enter_", m.Initial().Name))
		g.p("    check();")
		g.p("    run machine();")
		for _, p := range procs {
			g.p("    run %s();", p)
		}
		g.p("  }")
		g.p("}")
	}

	g.machine()
	var anything []option // the safety environment's: any event, answers to requests only
	for _, e := range spontaneous {
		anything = append(anything, g.eventOption(e))
	}
	for _, a := range m.Verify.Answers {
		anything = append(anything, g.answerOption(a, model.Names(a.Events)))
	}
	for _, t := range m.Timers {
		anything = append(anything, g.timerOption(t))
	}

	var props []*model.Invariant
	for _, inv := range m.Invariants {
		if inv.LeadsTo != nil {
			props = append(props, inv)
		}
	}
	for i, inv := range props {
		lt := inv.LeadsTo
		if i == 0 {
			g.p("#if defined(PROP_%s)", inv.ID.Name)
		} else {
			g.p("#elif defined(PROP_%s)", inv.ID.Name)
		}
		allowed := func(name string) bool {
			return lt.Env == nil || slices.ContainsFunc(lt.Env, func(r model.Ref) bool { return r.Name == name })
		}
		// First anything may happen (a finite number of steps: the LTL
		// below assumes the switch comes), then only what the invariant
		// assumes.
		g.p("bool good; /* the environment behaves as the invariant assumes, from now on */")
		g.p("bool calm; /* and the events that come a finite number of times have stopped */")
		g.p("proctype chaos() {")
		g.p("end: do")
		g.deliver("  ", "!good && ", anything)
		calmToo := ""
		if !g.hasSpontaneous(lt, spontaneous) {
			calmToo = " calm = true;"
		}
		g.p("  :: atomic { !good -> good = true;%s printf(\"ASSUME from here on\\n\") }", calmToo)
		g.p("  od")
		g.p("}")
		procs := []string{"chaos"}
		for _, t := range m.Timers {
			if !allowed(t.Event.Name) {
				continue
			}
			name := pmlName("timer_", t.Name)
			procs = append(procs, name)
			g.p("proctype %s() {", name)
			g.p("end: do")
			opt := g.timerOption(t)
			for _, a := range m.Verify.Answers {
				if a.Timer != nil && a.Timer.Name == t.Name {
					opt.cond += " && !" + pmlName("pend_", a.Name) // answers come first
				}
			}
			g.deliver("  ", "good && ", []option{opt})
			g.p("  od")
			g.p("}")
		}
		for _, a := range m.Verify.Answers {
			var evs []string
			for _, r := range a.Events {
				if allowed(r.Name) {
					evs = append(evs, r.Name)
				}
			}
			if len(evs) == 0 {
				continue
			}
			name := pmlName("answer_", a.Name)
			procs = append(procs, name)
			g.p("proctype %s() {", name)
			g.p("end: do")
			g.deliver("  ", "good && ", []option{g.answerOption(a, evs)})
			g.p("  od")
			g.p("}")
		}
		for _, r := range lt.Recurring {
			name := pmlName("again_", r.Name)
			procs = append(procs, name)
			g.p("proctype %s() { /* keeps coming */", name)
			g.p("end: do")
			g.deliver("  ", "good && ", []option{g.eventOption(r.Name)})
			g.p("  od")
			g.p("}")
		}
		var spont []string
		for _, e := range spontaneous {
			if allowed(e) && !slices.ContainsFunc(lt.Recurring, func(r model.Ref) bool { return r.Name == e }) {
				spont = append(spont, e)
			}
		}
		if len(spont) > 0 {
			procs = append(procs, "events")
			g.p("proctype events() { /* a finite number of them: it may stop */")
			g.p("end: do")
			var opts []option
			for _, e := range spont {
				opts = append(opts, g.eventOption(e))
			}
			g.deliver("  ", "good && ", opts)
			g.p("  :: good -> calm = true; break")
			g.p("  od")
			g.p("}")
		}
		start(procs)
		var from, to []string
		for _, r := range lt.From {
			from = append(from, "state == "+g.state(r.Name))
		}
		for _, r := range lt.To {
			to = append(to, "state == "+g.state(r.Name))
		}
		when := "true"
		if lt.When != nil {
			when = g.expr(lt.When.Node)
		}
		g.p("ltl %s { (<> calm) -> [] ((good && (%s) && (%s)) -> <> (%s)) }", inv.ID.Name, strings.Join(from, " || "), when, strings.Join(to, " || "))
	}
	if len(props) > 0 {
		g.p("#else")
	}
	g.p("proctype env() { /* any event at any time, answers to requests only */")
	g.p("end: do")
	g.deliver("  ", "", anything)
	g.p("  od")
	g.p("}")
	start([]string{"env"})
	if len(props) > 0 {
		g.p("#endif")
	}
}
