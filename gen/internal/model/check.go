package model

import (
	"go/token"
	"regexp"
	"slices"
	"strings"

	"github.com/sipfailover/sipfailover/gen/internal/diag"
	"github.com/sipfailover/sipfailover/gen/internal/expr"
)

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9_.]*$`)
	reqRE     = regexp.MustCompile(`^[RI][0-9]+$`)
	invIDRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	testRE    = regexp.MustCompile(`^Test[A-Za-z0-9_]*$`)
	reserved  = []string{"before_", "leave_", "enter_", "after_"}
	builtins  = []string{"true", "false", "in", "min", "max", "timer_e_total"}
	machineFn = []string{"Fire", "Start", "State", "Vars", "Params", "SetParams", "CheckAlways", "Can", "FSM"}
)

// Check validates a parsed model: names, references, types, structure.
func Check(m *Model, errs *diag.List) {
	c := &checker{m: m, errs: errs}
	c.names()
	c.env = c.buildEnv()
	c.requirements(c.m.Implements)
	c.exprs()
	c.states()
	c.transitions()
	c.invariants()
	c.verify()
	if !errs.HasErrors() {
		c.reachable()
		c.timersAndCompleteness()
	}
	c.docs()
}

type checker struct {
	m    *Model
	errs *diag.List
	env  *expr.Env
}

// name checks one name's spelling.
func (c *checker) name(kind string, r Ref) bool {
	switch {
	case r.Name == "":
		c.errs.Errorf(r.Pos, "%s has an empty name", kind)
	case !nameRE.MatchString(r.Name):
		c.errs.Errorf(r.Pos, "%s name %q must match [a-z][a-z0-9_.]*", kind, r.Name)
	case strings.HasSuffix(r.Name, ".") || strings.HasSuffix(r.Name, "_") || strings.Contains(r.Name, ".."):
		c.errs.Errorf(r.Pos, "%s name %q has an empty part", kind, r.Name)
	case token.IsKeyword(r.Name):
		c.errs.Errorf(r.Pos, "%s name %q is a Go keyword", kind, r.Name)
	case slices.ContainsFunc(reserved, func(p string) bool { return strings.HasPrefix(r.Name, p) }) || r.Name == "event" || r.Name == "state":
		c.errs.Errorf(r.Pos, "%s name %q is reserved for looplab/fsm callbacks (before_, leave_, enter_, after_, event, state)", kind, r.Name)
	default:
		return true
	}
	return false
}

// names checks every name and that no two map to one Go identifier in one
// Go scope.
func (c *checker) names() {
	m := c.m
	c.name("machine", m.Name)
	type entry struct {
		kind string
		ref  Ref
	}
	scopes := map[string][]entry{}
	add := func(scope, kind string, r Ref) {
		if c.name(kind, r) {
			scopes[scope] = append(scopes[scope], entry{kind, r})
		}
	}
	for _, p := range m.Params {
		add("expr", "param", p.Ref)
	}
	for _, v := range m.Vars {
		add("expr", "var", v.Ref)
	}
	for _, d := range m.Derived {
		add("expr", "derived", d.Ref)
		if slices.Contains(machineFn, GoName(d.Name)) {
			c.errs.Errorf(d.Pos, "derived %q would clash with the generated machine method %s", d.Name, GoName(d.Name))
		}
		if CFunctions[CName(d.Name)] {
			c.errs.Errorf(d.Pos, "derived %q would clash with the generated C function %s_%s", d.Name, CName(m.Name.Name), CName(d.Name))
		}
	}
	for _, g := range m.Guards {
		add("expr", "guard", g.Ref)
		add("method", "guard", g.Ref)
	}
	for _, a := range m.Actions {
		add("method", "action", a.Ref)
	}
	for _, e := range m.Events {
		if e.Timer == nil {
			if strings.HasPrefix(e.Name, "timer.") {
				c.errs.Errorf(e.Pos, "event %q: timer.* events come from timers; declare timer %q instead", e.Name, strings.TrimPrefix(e.Name, "timer."))
				continue
			}
			add("event", "event", e.Ref)
		} else {
			scopes["event"] = append(scopes["event"], entry{"event", e.Ref})
		}
	}
	for _, t := range m.Timers {
		add("timer", "timer", t.Ref)
	}
	for _, s := range m.States {
		add("state", "state", s.Ref)
		for _, t := range s.Tags {
			c.name("tag", t)
		}
	}
	for _, t := range m.Transitions {
		add("transition", "transition id", t.ID)
	}
	for _, inv := range m.Invariants {
		if !invIDRE.MatchString(inv.ID.Name) {
			c.errs.Errorf(inv.ID.Pos, "invariant id %q must be a word such as I1", inv.ID.Name)
		}
		scopes["invariant"] = append(scopes["invariant"], entry{"invariant", inv.ID})
	}
	for _, scope := range []string{"expr", "method", "event", "timer", "state", "transition", "invariant"} {
		seen := map[string]entry{}
		for _, e := range scopes[scope] {
			key := GoName(e.ref.Name)
			if scope == "transition" || scope == "invariant" {
				key = e.ref.Name
			}
			if scope == "expr" && slices.Contains(builtins, e.ref.Name) {
				c.errs.Errorf(e.ref.Pos, "%s name %q is a built-in of the expression language", e.kind, e.ref.Name)
			}
			if prev, dup := seen[key]; dup {
				if prev.ref.Name == e.ref.Name {
					c.errs.Errorf(e.ref.Pos, "%s %q is already declared as a %s at %d:%d", e.kind, e.ref.Name, prev.kind, prev.ref.Pos.Line, prev.ref.Pos.Col)
				} else {
					c.errs.Errorf(e.ref.Pos, "%s %q and %s %q at %d:%d both become the Go name %s", e.kind, e.ref.Name, prev.kind, prev.ref.Name, prev.ref.Pos.Line, prev.ref.Pos.Col, key)
				}
				continue
			}
			seen[key] = e
		}
	}
}

func (c *checker) buildEnv() *expr.Env {
	m := c.m
	syms := map[string]expr.Symbol{}
	var names []string
	for _, p := range m.Params {
		syms[p.Name] = expr.Symbol{Kind: "param", Type: p.Type, Go: "m.params." + GoName(p.Name), C: "m->params." + CName(p.Name)}
		names = append(names, p.Name)
	}
	for _, v := range m.Vars {
		syms[v.Name] = expr.Symbol{Kind: "var", Type: v.Type, Go: "v." + GoName(v.Name), C: "v->" + CName(v.Name)}
		names = append(names, v.Name)
	}
	for _, g := range m.Guards {
		syms[g.Name] = expr.Symbol{Kind: "guard", Type: expr.Bool, Go: "m.guards." + GoName(g.Name) + "()",
			C: "m->guards." + CName(g.Name) + "(m->guards.ctx)"}
		names = append(names, g.Name)
	}
	for _, d := range m.Derived {
		syms[d.Name] = expr.Symbol{Kind: "derived", Type: expr.Invalid, Go: "m.derived" + GoName(d.Name) + "(v)",
			C: CName(m.Name.Name) + "_derived_" + CName(d.Name) + "(m, v)"}
		names = append(names, d.Name)
	}
	env := &expr.Env{
		Lookup:  func(n string) (expr.Symbol, bool) { s, ok := syms[n]; return s, ok },
		Names:   names,
		Suggest: diag.Suggest,
	}
	// Derived values are typed in dependency order; a cycle is an error.
	progress := map[string]int{} // 0 unseen, 1 in progress, 2 done
	var visit func(d *Derived)
	visit = func(d *Derived) {
		switch progress[d.Name] {
		case 1:
			c.errs.Errorf(d.Pos, "derived %q depends on itself", d.Name)
			return
		case 2:
			return
		}
		progress[d.Name] = 1
		if d.Expr != nil && d.Expr.Node != nil {
			d.Expr.Node.Names(func(n *expr.Node) {
				for _, dep := range m.Derived {
					if n.Op == "name" && n.Name == dep.Name {
						visit(dep)
					}
				}
			})
			s := syms[d.Name]
			s.Type = c.checkExpr(d.Expr, env)
			syms[d.Name] = s
		}
		progress[d.Name] = 2
	}
	for _, d := range m.Derived {
		visit(d)
	}
	return env
}

// StateEnv returns env extended with in(state), for invariants.
func StateEnv(m *Model, env *expr.Env) *expr.Env {
	withStates := *env
	withStates.States = map[string]string{}
	withStates.CStates = map[string]string{}
	for _, s := range m.States {
		withStates.States[s.Name] = "m.state == " + GoName(m.Name.Name) + "State" + GoName(s.Name)
		withStates.CStates[s.Name] = "m->state == " + CConst(m.Name.Name, "state", s.Name)
	}
	return &withStates
}

// checkExpr types e, reporting problems at their column inside e.
func (c *checker) checkExpr(e *Expr, env *expr.Env) expr.Type {
	if e == nil || e.Node == nil {
		return expr.Invalid
	}
	t, errs := expr.Check(e.Node, env)
	for _, err := range errs {
		c.errs.Errorf(e.Pos.Shift(err.Off), "%s", err.Msg)
	}
	return t
}

func (c *checker) want(e *Expr, env *expr.Env, want expr.Type, what string) {
	if t := c.checkExpr(e, env); t != expr.Invalid && t != want {
		c.errs.Errorf(e.Pos, "%s is %s, want %s", what, t, want)
	}
}

// exprs checks timer durations and conditions.
func (c *checker) exprs() {
	for _, t := range c.m.Timers {
		if t.Duration != nil {
			c.want(t.Duration, c.env, expr.Duration, "duration of timer "+t.Name)
		}
		if t.Enabled != nil {
			c.want(t.Enabled, c.env, expr.Bool, "enabled of timer "+t.Name)
		}
		if t.Jitter != nil {
			c.want(t.Jitter, c.env, expr.Int, "jitter of timer "+t.Name)
		}
		c.requirements(t.Implements)
	}
}

// lookup finds name among candidates, reporting an unknown one with a hint.
func lookup[T any](c *checker, kind string, r Ref, items []T, nameOf func(T) string) (T, bool) {
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = nameOf(it)
		if names[i] == r.Name {
			return it, true
		}
	}
	c.errs.Errorf(r.Pos, "unknown %s %q%s", kind, r.Name, diag.Suggest(r.Name, names))
	var zero T
	return zero, false
}

func (c *checker) state(r Ref) (*State, bool) {
	return lookup(c, "state", r, c.m.States, func(s *State) string { return s.Name })
}

func (c *checker) event(r Ref) (*Event, bool) {
	return lookup(c, "event", r, c.m.Events, func(e *Event) string { return e.Name })
}

func (c *checker) timer(r Ref) (*Timer, bool) {
	return lookup(c, "timer", r, c.m.Timers, func(t *Timer) string { return t.Name })
}

func (c *checker) steps(steps []*Step) {
	for _, s := range steps {
		switch s.Kind {
		case StepAction:
			lookup(c, "action", s.Name, c.m.Actions, func(a *Action) string { return a.Name })
		case StepArm, StepCancel:
			c.timer(s.Name)
		case StepSet:
			v, ok := lookup(c, "var", s.Name, c.m.Vars, func(v *Var) string { return v.Name })
			if ok && s.Value != nil {
				c.want(s.Value, c.env, v.Type, "value for "+v.Name)
			}
		}
	}
}

func (c *checker) requirements(ids []Ref) {
	for _, r := range ids {
		if !reqRE.MatchString(r.Name) {
			c.errs.Errorf(r.Pos, "%q is not a requirement or invariant id of docs/requirements.md (R3, I1 ...)", r.Name)
		}
	}
}

func (c *checker) states() {
	var initial []*State
	for _, s := range c.m.States {
		if s.Initial {
			initial = append(initial, s)
		}
		if s.Initial && s.Final {
			c.errs.Errorf(s.Pos, "state %s is both initial and final", s.Name)
		}
		for _, t := range s.After {
			c.timer(t)
		}
		ignored := map[string]bool{}
		for _, e := range s.Ignore {
			if _, ok := c.event(e); ok && ignored[e.Name] {
				c.errs.Errorf(e.Pos, "state %s ignores %s twice", s.Name, e.Name)
			}
			ignored[e.Name] = true
		}
		if s.Final && (len(s.After) > 0 || len(s.Ignore) > 0) {
			c.errs.Errorf(s.Pos, "final state %s takes no after or ignore: it handles no events", s.Name)
		}
		c.steps(s.Entry)
		c.steps(s.Exit)
	}
	switch {
	case len(c.m.States) == 0:
		c.errs.Errorf(c.m.Name.Pos, "model %s has no states", c.m.Name.Name)
	case len(initial) == 0:
		c.errs.Errorf(c.m.States[0].Pos, "no initial state: mark one with initial: true")
	case len(initial) > 1:
		for _, s := range initial[1:] {
			c.errs.Errorf(s.Pos, "second initial state %s (%s at %d:%d is initial already)", s.Name, initial[0].Name, initial[0].Pos.Line, initial[0].Pos.Col)
		}
	}
}

func (c *checker) transitions() {
	type handler struct {
		t   *Transition
		pos diag.Pos
	}
	handled := map[[2]string]handler{}
	for _, t := range c.m.Transitions {
		c.requirements(t.Implements)
		var from []*State
		for _, r := range t.From {
			if s, ok := c.state(r); ok {
				from = append(from, s)
				if s.Final {
					c.errs.Errorf(r.Pos, "transition %s leaves final state %s", t.ID.Name, s.Name)
				}
			}
		}
		for _, r := range t.On {
			if _, ok := c.event(r); !ok {
				continue
			}
			for _, s := range from {
				key := [2]string{s.Name, r.Name}
				if prev, dup := handled[key]; dup {
					c.errs.Errorf(r.Pos, "state %s already handles %s in transition %s at %d:%d: merge them into one transition with ordered branches", s.Name, r.Name, prev.t.ID.Name, prev.pos.Line, prev.pos.Col)
					continue
				}
				handled[key] = handler{t, r.Pos}
				if slices.ContainsFunc(s.Ignore, func(i Ref) bool { return i.Name == r.Name }) {
					c.errs.Errorf(r.Pos, "state %s both ignores and handles %s", s.Name, r.Name)
				}
			}
		}
		for i, b := range t.Branches {
			if b.To != nil {
				c.state(*b.To)
			}
			if b.If != nil {
				c.want(b.If, c.env, expr.Bool, "condition")
			}
			c.steps(b.Do)
			last := i == len(t.Branches)-1
			always := b.If != nil && b.If.Node != nil && b.If.Node.Op == "lit" && b.If.Node.Val == 1
			switch {
			case !last && (b.If == nil || always):
				next := t.Branches[i+1]
				why := "has no if"
				if always {
					why = "is always true"
				}
				c.errs.Errorf(next.Pos, "branch of transition %s can never fire: the branch at %d:%d before it %s", t.ID.Name, b.Pos.Line, b.Pos.Col, why)
			case last && b.If != nil && len(t.Branches) > 1:
				c.errs.Errorf(b.Pos, "last branch of transition %s has an if: the last branch is the fallback, taken when no if above holds", t.ID.Name)
			}
		}
		if t.Reenter && !slices.ContainsFunc(t.Branches, func(b *Branch) bool {
			return slices.ContainsFunc(from, func(s *State) bool { return b.Target(s.Name) == s.Name })
		}) {
			c.errs.Errorf(t.ID.Pos, "transition %s has reenter but never stays in its state", t.ID.Name)
		}
	}
}

func (c *checker) invariants() {
	env := StateEnv(c.m, c.env)
	for _, inv := range c.m.Invariants {
		c.requirements(inv.Implements)
		if inv.Test != "" && !testRE.MatchString(inv.Test) {
			c.errs.Errorf(inv.ID.Pos, "invariant %s: test %q is not the name of a Go test (TestXxx)", inv.ID.Name, inv.Test)
		}
		if inv.Always != nil {
			c.want(inv.Always, env, expr.Bool, "invariant "+inv.ID.Name)
		}
		if lt := inv.LeadsTo; lt != nil {
			for _, r := range append(slices.Clone(lt.From), lt.To...) {
				c.state(r)
			}
			if lt.Within != nil {
				c.want(lt.Within, c.env, expr.Duration, "within of invariant "+inv.ID.Name)
			}
			if lt.When != nil {
				c.want(lt.When, c.env, expr.Bool, "when of invariant "+inv.ID.Name)
			}
		}
	}
}

// reachable reports states that no path from the initial state reaches, and
// non-final states with no transition out.
func (c *checker) reachable() {
	init := c.m.Initial()
	if init == nil {
		return
	}
	seen := map[string]bool{init.Name: true}
	queue := []string{init.Name}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, t := range c.m.Transitions {
			if !slices.ContainsFunc(t.From, func(r Ref) bool { return r.Name == s }) {
				continue
			}
			for _, b := range t.Branches {
				if to := b.Target(s); !seen[to] {
					seen[to] = true
					queue = append(queue, to)
				}
			}
		}
	}
	for _, s := range c.m.States {
		if !seen[s.Name] {
			c.errs.Errorf(s.Pos, "state %s is unreachable from the initial state %s", s.Name, init.Name)
		}
		if s.Final {
			continue
		}
		out := slices.ContainsFunc(c.m.Transitions, func(t *Transition) bool {
			return t.TakenIn(s.Name) &&
				slices.ContainsFunc(t.Branches, func(b *Branch) bool { return b.Target(s.Name) != s.Name })
		})
		if !out {
			c.errs.Errorf(s.Pos, "state %s has no way out: add a transition to another state, or mark it final", s.Name)
		}
	}
}

// Running computes, for each state, the timers that may be running while the
// machine is in it (a may-analysis over every path from the initial state).
func Running(m *Model) map[string]map[string]bool {
	run := map[string]map[string]bool{}
	for _, s := range m.States {
		run[s.Name] = map[string]bool{}
	}
	apply := func(set map[string]bool, steps []*Step) {
		for _, st := range steps {
			switch st.Kind {
			case StepArm:
				set[st.Name.Name] = true
			case StepCancel:
				delete(set, st.Name.Name)
			}
		}
	}
	enter := func(set map[string]bool, s *State) {
		apply(set, s.Entry)
		for _, t := range s.After {
			set[t.Name] = true
		}
	}
	merge := func(into, from map[string]bool) bool {
		grew := false
		for t := range from {
			if !into[t] {
				into[t], grew = true, true
			}
		}
		return grew
	}
	if init := m.Initial(); init != nil {
		enter(run[init.Name], init)
	}
	for changed := true; changed; {
		changed = false
		for _, t := range m.Transitions {
			for _, fr := range t.From {
				src := m.State(fr.Name)
				if src == nil {
					continue
				}
				for _, on := range t.On {
					for _, b := range t.Branches {
						set := map[string]bool{}
						merge(set, run[src.Name])
						if ev := m.Event(on.Name); ev != nil && ev.Timer != nil {
							delete(set, ev.Timer.Name)
						}
						dst := m.State(b.Target(src.Name))
						if dst == nil {
							continue
						}
						external := t.External(b, src.Name)
						if external {
							apply(set, src.Exit)
							for _, a := range src.After {
								delete(set, a.Name)
							}
						}
						apply(set, b.Do)
						if external {
							enter(set, dst)
						}
						changed = merge(run[dst.Name], set) || changed
					}
				}
			}
		}
	}
	return run
}

// timersAndCompleteness checks that every state handles or ignores every
// event that can happen in it, and handles no timer that cannot be running.
func (c *checker) timersAndCompleteness() {
	run := Running(c.m)
	handled := map[[2]string]Ref{}
	for _, t := range c.m.Transitions {
		for _, on := range t.On {
			for _, fr := range t.From {
				handled[[2]string{fr.Name, on.Name}] = on
			}
			// A transition shared by several states may name a timer that runs
			// in only some of them; it is wrong when the timer runs in none.
			ev := c.m.Event(on.Name)
			if ev == nil || ev.Timer == nil {
				continue
			}
			if !slices.ContainsFunc(t.From, func(fr Ref) bool { return run[fr.Name][ev.Timer.Name] }) {
				c.errs.Errorf(on.Pos, "%s is handled in %s, but timer %s is never armed on any way into %s", on.Name, strings.Join(Names(t.From), ", "), ev.Timer.Name, strings.Join(Names(t.From), " or "))
			}
		}
	}
	for _, s := range c.m.States {
		if s.Final {
			continue
		}
		ignored := map[string]bool{}
		for _, r := range s.Ignore {
			ignored[r.Name] = true
		}
		var missing []string
		for _, e := range c.m.Events {
			_, isHandled := handled[[2]string{s.Name, e.Name}]
			if e.Timer != nil && !run[s.Name][e.Timer.Name] {
				continue
			}
			if !isHandled && !ignored[e.Name] {
				missing = append(missing, e.Name)
			}
		}
		if len(missing) > 0 {
			c.errs.Errorf(s.Pos, "state %s neither handles nor ignores %s", s.Name, strings.Join(missing, ", "))
		}
	}
}

// docs warns about elements without a description.
func (c *checker) docs() {
	m := c.m
	warn := func(kind string, r Ref, doc string) {
		if doc == "" {
			c.errs.Warnf(r.Pos, "%s %s has no doc", kind, r.Name)
		}
	}
	warn("machine", m.Name, m.Doc)
	for _, p := range m.Params {
		warn("param", p.Ref, p.Doc)
	}
	for _, v := range m.Vars {
		warn("var", v.Ref, v.Doc)
	}
	for _, d := range m.Derived {
		warn("derived", d.Ref, d.Doc)
	}
	for _, g := range m.Guards {
		warn("guard", g.Ref, g.Doc)
	}
	for _, e := range m.Events {
		if e.Timer == nil {
			warn("event", e.Ref, e.Doc)
		}
	}
	for _, t := range m.Timers {
		warn("timer", t.Ref, t.Doc)
	}
	for _, a := range m.Actions {
		warn("action", a.Ref, a.Doc)
	}
	for _, s := range m.States {
		warn("state", s.Ref, s.Doc)
	}
	for _, t := range m.Transitions {
		warn("transition", t.ID, t.Doc)
	}
	for _, inv := range m.Invariants {
		warn("invariant", inv.ID, inv.Doc)
	}
}

// Env returns the expression environment of a checked model.
func Env(m *Model) *expr.Env {
	c := &checker{m: m, errs: &diag.List{}}
	return c.buildEnv()
}

// Names returns the names of refs.
func Names(refs []Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}
